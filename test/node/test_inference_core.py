"""The node's engine lifecycle without ROS: gate all first, refuse before allocating, roll back."""

from dataclasses import replace

import numpy as np
import onnx
from onnx import helper, TensorProto
import pytest
from sealed_models import make_onnx, make_sealed_onnx

from gps_denied_inference.artifacts.sealing import manifest_from_onnx, seal_artifact
from gps_denied_inference.errors import (
    ConfigError,
    EngineGateError,
    EngineLoadError,
    OutOfMemoryError,
)
from gps_denied_inference.node.inference_core import InferenceCore
from gps_denied_inference.node.parameters import node_config_from_values, NodeConfig
from gps_denied_inference.resources.thermal import ThermalConfig
from gps_denied_inference.runtimes.protocol import build_inference_runtime
from gps_denied_inference.runtimes.settings import RuntimeConfig


def config_for(paths, **budgets):
    values = {'models': list(paths)}
    for name, path in paths.items():
        values.update({f'{name}.engine_path': str(path), f'{name}.input_topic': f'/{name}',
                       f'{name}.runtime': 'onnxruntime'})
    values.update(budgets)
    return node_config_from_values(values)


class RecordingFactory:
    """The real factory, recording which strategies were created and when."""

    def __init__(self, fail_load_of=None):
        self.created = []
        self.fail_load_of = fail_load_of

    def __call__(self, label, **kwargs):
        runtime = build_inference_runtime(label, **kwargs)
        self.created.append(runtime)
        if self.fail_load_of is not None:
            original = runtime.deserialize_engine

            def deserialize(name, path, expected):
                if name == self.fail_load_of:
                    raise EngineLoadError(f'injected load failure for {name}')
                return original(name, path, expected)
            runtime.deserialize_engine = deserialize
        return runtime


def test_configure_activate_cleanup_returns_the_budget_to_zero(tmp_path):
    core = InferenceCore(config_for({'a': make_sealed_onnx(tmp_path, 'a.onnx')}))
    models = core.configure()
    assert [m.config.name for m in models] == ['a']
    weights = core.budget.host.resident_bytes
    core.activate()
    assert core.budget.host.resident_bytes > weights and models[0].prepared
    core.activate()
    core.cleanup()
    core.cleanup()
    assert core.budget.is_empty() and core.models == []


def test_activate_reserves_the_inputs_and_results_in_flight_and_cleanup_releases_them(tmp_path):
    core = InferenceCore(config_for({'a': make_sealed_onnx(tmp_path, 'a.onnx')}))
    [model] = core.configure()
    assert 'a:in_flight' not in core.budget.host.reservations()
    core.activate()
    assert core.budget.host.reservations()['a:in_flight'] == 2 * (
        model.manifest.inputs[0].max_nbytes + model.manifest.outputs[0].max_nbytes)
    core.cleanup()
    assert core.budget.is_empty()


def test_a_failed_prepare_releases_the_results_reservation(tmp_path):
    core = InferenceCore(config_for({'a': make_sealed_onnx(tmp_path, 'a.onnx')}))
    [model] = core.configure()

    def refuse(handle):
        raise EngineLoadError('injected prepare failure')
    model.runtime.prepare_execution = refuse
    with pytest.raises(EngineLoadError):
        core.activate()
    assert set(core.budget.host.reservations()) == {'a:weights'}
    assert not model.prepared
    core.cleanup()
    assert core.budget.is_empty()


def test_every_gate_passes_before_any_strategy_is_created(tmp_path):
    good = make_sealed_onnx(tmp_path, 'good.onnx')
    bad = make_sealed_onnx(tmp_path, 'bad.onnx')
    bad.write_bytes(bad.read_bytes() + b'x')
    factory = RecordingFactory()
    core = InferenceCore(config_for({'good': good, 'bad': bad}), runtime_factory=factory)
    with pytest.raises(EngineGateError, match='bad.onnx'):
        core.configure()
    assert factory.created == [] and core.budget.is_empty()


def test_a_load_failure_releases_what_was_already_loaded(tmp_path):
    paths = {'a': make_sealed_onnx(tmp_path, 'a.onnx'), 'b': make_sealed_onnx(tmp_path, 'b.onnx')}
    core = InferenceCore(config_for(paths), runtime_factory=RecordingFactory(fail_load_of='b'))
    with pytest.raises(EngineLoadError):
        core.configure()
    assert core.models == [] and core.budget.is_empty()


def test_weights_over_budget_are_refused_before_loading(tmp_path):
    factory = RecordingFactory()
    core = InferenceCore(config_for({'a': make_sealed_onnx(tmp_path, 'a.onnx')},
                                    host_memory_budget_bytes=1), runtime_factory=factory)
    with pytest.raises(OutOfMemoryError) as info:
        core.configure()
    assert info.value.budget == 1 and info.value.resident == 0
    assert core.budget.is_empty()
    assert all(not getattr(r, '_handles', None) for r in factory.created)


def test_execution_over_budget_is_refused_before_allocating(tmp_path):
    paths = {'a': make_sealed_onnx(tmp_path, 'a.onnx'), 'b': make_sealed_onnx(tmp_path, 'b.onnx')}
    probe = InferenceCore(config_for(paths))
    probe.configure()
    weights = probe.budget.host.resident_bytes
    probe.activate()
    need = probe.budget.host.resident_bytes
    probe.cleanup()
    core = InferenceCore(config_for(paths, host_memory_budget_bytes=need - 1))
    core.configure()
    with pytest.raises(OutOfMemoryError) as info:
        core.activate()
    assert info.value.requested == need - weights
    assert core.budget.host.resident_bytes == weights
    assert not any(m.prepared for m in core.models)
    core.cleanup()
    assert core.budget.is_empty()


def test_an_output_that_cannot_be_published_is_refused_at_configure(tmp_path):
    path = tmp_path / 'int64.onnx'
    graph = helper.make_graph(
        [helper.make_node('Cast', ['image'], ['ids'], to=TensorProto.INT64)], 'ids',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info('ids', TensorProto.INT64, [1, 1, 8, 8])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    seal_artifact(path, manifest_from_onnx(path))
    factory = RecordingFactory()
    core = InferenceCore(config_for({'ids': path}), runtime_factory=factory)
    with pytest.raises(ConfigError, match='ids'):
        core.configure()
    assert factory.created == [] and core.budget.is_empty()


def _sealed_with(tmp_path, **manifest_changes):
    """The tiny mono [1, 1, 16, 16] model sealed under a manifest with `manifest_changes`."""
    path = make_onnx(tmp_path / 'odd.onnx')
    manifest = manifest_from_onnx(path)
    seal_artifact(path, replace(manifest, **{
        name: change(manifest) for name, change in manifest_changes.items()}))
    return path


@pytest.mark.parametrize('overrides, message', [
    ({'a.input_width': 32}, r"model a: input 'image' of .*odd\.onnx: the preprocessing makes "
                            r'float32 tensors of shape \(1, 1, 16, 32\) .* takes float32 '
                            r'\(1, 1, 16, 16\); set a\.input_width to fit it'),
    ({'a.color': 'rgb'}, r'shape \(1, 3, 16, 16\) \(3 channel\(s\) for color rgb.*set a\.color'),
    ({'a.mean': [0.5, 0.5]}, r'a\.mean = \(0\.5, 0\.5\) is invalid: must be a tuple of 1 '),
])
def test_overrides_the_model_input_cannot_take_are_refused_by_parameter(tmp_path, overrides,
                                                                         message):
    """Accepted, each would configure and then fail every frame."""
    factory = RecordingFactory()
    values = {'models': ['a'], 'a.engine_path': str(_sealed_with(tmp_path)),
              'a.input_topic': '/a', 'a.runtime': 'onnxruntime', **overrides}
    core = InferenceCore(node_config_from_values(values), runtime_factory=factory)
    with pytest.raises(ConfigError, match=message):
        core.configure()
    assert factory.created == [] and core.budget.is_empty()


def test_a_manifest_contract_its_own_input_cannot_take_is_refused(tmp_path):
    path = _sealed_with(tmp_path, preprocess=lambda m: replace(m.preprocess, color='rgb'))
    core = InferenceCore(config_for({'a': path}))
    with pytest.raises(ConfigError, match='its manifest contradicts its own input: seal it '
                                          'again'):
        core.configure()
    assert core.budget.is_empty()


def test_a_model_with_two_inputs_is_refused_at_configure(tmp_path):
    path = _sealed_with(tmp_path, tensors=lambda m: (
        *m.tensors, replace(m.inputs[0], name='depth')))
    core = InferenceCore(config_for({'a': path}))
    with pytest.raises(ConfigError, match=r'has 2 inputs \(image, depth\); the node feeds one '
                                          'image input'):
        core.configure()
    assert core.budget.is_empty()


def test_nodeconfig_defaults_are_valid():
    config = config_for({'a': '/x.onnx'})
    assert isinstance(config, NodeConfig)
    assert config.runtime == RuntimeConfig() and config.thermal == ThermalConfig()
    assert np.isfinite(config.diagnostics_period_s)
