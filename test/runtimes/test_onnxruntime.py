"""The ONNX Runtime strategy: gate first, validated named arrays, wrapped faults, clean release."""

from dataclasses import replace
import threading

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
import onnxruntime
import pytest
from sealed_models import make_onnx, make_sealed_onnx, make_sealed_plan

from gps_denied_inference.artifacts.gate import EngineGate, GateExpectation
from gps_denied_inference.artifacts.manifest import TensorSpec
from gps_denied_inference.artifacts.sealing import manifest_from_onnx, seal_artifact
from gps_denied_inference.errors import (
    ConfigError,
    EngineBuildError,
    EngineGateError,
    EngineLoadError,
    InferenceError,
)
from gps_denied_inference.runtimes.onnxruntime import OnnxRuntimeHandle, OnnxRuntimeRuntime
from gps_denied_inference.runtimes.protocol import build_inference_runtime
from gps_denied_inference.runtimes.settings import RuntimeConfig

ORT = GateExpectation('onnxruntime')


def make_runtime(**options):
    return OnnxRuntimeRuntime(config=RuntimeConfig(), **options)


def image(value=1.0, size=16):
    return np.full((1, 1, size, size), value, dtype=np.float32)


@pytest.fixture
def loaded(tmp_path):
    runtime = make_runtime()
    handle = runtime.deserialize_engine('tiny', str(make_sealed_onnx(tmp_path)), ORT)
    yield runtime, handle
    runtime.release_engine(handle)


def test_the_factory_builds_the_strategy_with_its_providers():
    runtime = build_inference_runtime('onnxruntime', providers=('CPUExecutionProvider',))
    assert isinstance(runtime, OnnxRuntimeRuntime)
    assert runtime.current_runtime_label() == 'onnxruntime/CPUExecutionProvider'


def test_providers_keep_the_configured_order_among_those_available():
    runtime = make_runtime(providers=['TensorrtExecutionProvider', 'CUDAExecutionProvider',
                                      'CPUExecutionProvider'])
    expected = tuple(p for p in ('TensorrtExecutionProvider', 'CUDAExecutionProvider',
                                 'CPUExecutionProvider')
                     if p in onnxruntime.get_available_providers())
    assert runtime.providers == expected


def test_no_available_configured_provider_is_a_refusal_not_a_cpu_fallback():
    configured = ['NoSuchExecutionProvider', 'OtherMissingExecutionProvider']
    with pytest.raises(ConfigError) as info:
        make_runtime(providers=configured)
    assert str(configured) in str(info.value)
    assert 'CPUExecutionProvider' in str(info.value)


@pytest.mark.parametrize('options, match', [
    ({'providers': []}, 'providers'), ({'providers': 'CPUExecutionProvider'}, 'providers'),
    ({'providers': ['']}, 'providers'), ({'intra_op_threads': 0}, 'intra_op_threads'),
    ({'intra_op_threads': True}, 'intra_op_threads'),
    ({'provider_options': ['x']}, 'provider_options'), ({'batch': 4}, 'batch'),
])
def test_invalid_options_are_refused_by_name(options, match):
    with pytest.raises(ConfigError, match=match):
        make_runtime(**options)


def test_a_loaded_handle_reports_its_model_and_provider(loaded, tmp_path):
    runtime, handle = loaded
    assert (handle.name, handle.provider, handle.is_released) == (
        'tiny', 'CPUExecutionProvider', False)
    assert handle.path == str(tmp_path / 'tiny.onnx')
    assert handle.manifest.artifact_sha256 == EngineGate().validate(handle.path,
                                                                    ORT).artifact_sha256
    assert runtime.current_runtime_label() == 'onnxruntime/CPUExecutionProvider'


def test_the_session_never_spins_and_uses_the_configured_threads(tmp_path):
    runtime = make_runtime(intra_op_threads=2)
    handle = runtime.deserialize_engine('tiny', str(make_sealed_onnx(tmp_path)), ORT)
    options = handle.session.get_session_options()
    assert options.get_session_config_entry('session.intra_op.allow_spinning') == '0'
    assert options.intra_op_num_threads == 2


def test_infer_returns_named_arrays(loaded):
    runtime, handle = loaded
    runtime.prepare_execution(handle)
    runtime.prepare_execution(handle)
    outputs = runtime.infer(handle, {'image': image(1.5)})
    assert list(outputs) == ['doubled']
    assert outputs['doubled'].dtype == np.float32
    assert np.array_equal(outputs['doubled'], image(3.0))


@pytest.mark.parametrize('inputs, match', [
    ({}, r"missing \['image'\]"),
    ({'image': image(), 'extra': image()}, r"unexpected \['extra'\]"),
    ({'img': image()}, r"missing \['image'\].*unexpected \['img'\]"),
    ({'image': image().astype(np.float64)}, "'image' has dtype float64, expected float32"),
    ({'image': image(size=8)}, r"'image' has shape \(1, 1, 8, 8\), expected"),
    ({'image': image()[0]}, "'image' has rank 3"),
    ({'image': [[1.0]]}, 'must be a numpy array'),
])
def test_inputs_are_checked_against_the_manifest(loaded, inputs, match):
    runtime, handle = loaded
    with pytest.raises(InferenceError, match=match):
        runtime.infer(handle, inputs)


def test_a_failed_gate_loads_nothing(tmp_path):
    path = make_sealed_onnx(tmp_path)
    path.write_bytes(path.read_bytes() + b'\0')
    runtime = make_runtime()
    with pytest.raises(EngineGateError, match='digest'):
        runtime.deserialize_engine('tiny', str(path), ORT)
    assert runtime.current_runtime_label() == 'onnxruntime/CPUExecutionProvider'
    assert_name_is_free(runtime, path)


def assert_name_is_free(runtime, path):
    """Nothing stayed registered: rewritten and resealed, the same name loads and runs."""
    seal_artifact(make_onnx(path), manifest_from_onnx(path))
    handle = runtime.deserialize_engine('tiny', str(path), ORT)
    assert runtime.infer(handle, {'image': image()})['doubled'].shape == (1, 1, 16, 16)
    runtime.release_engine(handle)


class AlteringGate(EngineGate):
    """A real gate, after which the file is altered: the load must not read it again."""

    def admit(self, path, expected):
        admitted = super().admit(path, expected)
        with open(path, 'ab') as stream:
            stream.write(b'\0')
        return admitted


def test_the_session_is_created_from_the_bytes_the_gate_hashed(tmp_path):
    path = make_sealed_onnx(tmp_path)
    sealed = path.read_bytes()
    runtime = OnnxRuntimeRuntime(config=RuntimeConfig(), gate=AlteringGate())
    handle = runtime.deserialize_engine('tiny', str(path), ORT)
    assert path.read_bytes() != sealed
    runtime.prepare_execution(handle)
    image = np.full((1, 1, 16, 16), 0.25, dtype=np.float32)
    assert np.allclose(runtime.infer(handle, {'image': image})['doubled'], 0.5)
    runtime.release_engine(handle)


def test_a_tensorrt_expectation_is_refused_before_the_gate(tmp_path):
    with pytest.raises(ConfigError, match="cannot load a 'tensorrt' artifact"):
        make_runtime().deserialize_engine('m', str(make_sealed_plan(tmp_path)),
                                          GateExpectation('tensorrt', None, '10.3.0', '8.7'))


def test_a_second_engine_with_the_same_name_is_refused(loaded):
    runtime, handle = loaded
    with pytest.raises(ConfigError, match='already loaded'):
        runtime.deserialize_engine('tiny', handle.path, ORT)


def test_release_is_idempotent_and_refuses_later_use(loaded):
    runtime, handle = loaded
    runtime.release_engine(handle)
    runtime.release_engine(handle)
    assert handle.is_released
    with pytest.raises(InferenceError, match='released'):
        runtime.infer(handle, {'image': image()})
    with pytest.raises(InferenceError, match='released'):
        runtime.prepare_execution(handle)
    again = runtime.deserialize_engine('tiny', handle.path, ORT)
    assert np.array_equal(runtime.infer(again, {'image': image()})['doubled'], image(2.0))
    runtime.release_engine(again)


def test_a_foreign_handle_is_refused(loaded, tmp_path):
    _, handle = loaded
    other = make_runtime()
    for call in (lambda: other.infer(handle, {'image': image()}),
                 lambda: other.prepare_execution(handle),
                 lambda: other.release_engine(handle),
                 lambda: other.infer(object(), {'image': image()}),
                 lambda: other.release_engine('tiny')):
        with pytest.raises(InferenceError, match='belong to this runtime|not an ONNX Runtime'):
            call()
    assert not handle.is_released


def _gather_model(path):
    graph = helper.make_graph(
        [helper.make_node('Gather', ['table', 'index'], ['picked'], axis=0),
         helper.make_node('Identity', ['image'], ['echo'])], 'gather',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 1, 4, 4]),
         helper.make_tensor_value_info('index', TensorProto.INT64, [1])],
        [helper.make_tensor_value_info('picked', TensorProto.FLOAT, [1]),
         helper.make_tensor_value_info('echo', TensorProto.FLOAT, [1, 1, 4, 4])],
        [numpy_helper.from_array(np.arange(4, dtype=np.float32), 'table')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_runtime_failure_is_an_inference_error_with_the_cause_kept(tmp_path):
    path = _gather_model(tmp_path / 'gather.onnx')
    seal_artifact(path, manifest_from_onnx(path))
    runtime = make_runtime()
    handle = runtime.deserialize_engine('gather', str(path), ORT)
    good = runtime.infer(handle, {'image': image(size=4), 'index': np.array([2])})
    assert good['picked'].tolist() == [2.0]
    with pytest.raises(InferenceError, match='ONNX Runtime run failed') as info:
        runtime.infer(handle, {'image': image(size=4), 'index': np.array([10])})
    assert info.value.__cause__ is not None
    assert runtime.infer(handle, {'image': image(size=4), 'index': np.array([1])})[
        'picked'].tolist() == [1.0]


def test_an_output_that_disagrees_with_the_manifest_is_refused(tmp_path):
    path = make_sealed_onnx(tmp_path)
    manifest = manifest_from_onnx(path)
    wrong = replace(manifest, tensors=(manifest.tensors[0],
                                       TensorSpec('doubled', 'output', 'float32', (1, 16, 16))))
    seal_artifact(path, wrong)
    runtime = make_runtime()
    handle = runtime.deserialize_engine('tiny', str(path), ORT)
    with pytest.raises(InferenceError, match="output 'doubled' has rank 4"):
        runtime.prepare_execution(handle)
    with pytest.raises(InferenceError, match="output 'doubled'"):
        runtime.infer(handle, {'image': image()})


def _dynamic_model(tmp_path):
    path = tmp_path / 'dynamic.onnx'
    graph = helper.make_graph(
        [helper.make_node('Relu', ['image'], ['out'])], 'dynamic',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 1, 'h', 'w'])],
        [helper.make_tensor_value_info('out', TensorProto.FLOAT, [1, 1, 'h', 'w'])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    profile = ((1, 1, 8, 8), (1, 1, 16, 16), (1, 1, 32, 32))
    static = manifest_from_onnx(make_onnx(tmp_path / 'twin.onnx'))
    tensors = (TensorSpec('image', 'input', 'float32', (1, 1, -1, -1), profile),
               TensorSpec('out', 'output', 'float32', (1, 1, -1, -1), profile))
    seal_artifact(path, replace(static, tensors=tensors))
    return path


def test_dynamic_dimensions_are_accepted_only_within_the_profile(tmp_path):
    runtime = make_runtime()
    handle = runtime.deserialize_engine('dyn', str(_dynamic_model(tmp_path)), ORT)
    runtime.prepare_execution(handle)
    for size in (8, 20, 32):
        assert runtime.infer(handle, {'image': image(-1.0, size)})['out'].shape == (
            1, 1, size, size)
    for size in (4, 33):
        with pytest.raises(InferenceError, match='outside the profile'):
            runtime.infer(handle, {'image': image(size=size)})


def test_concurrent_infer_on_one_handle_returns_each_callers_result(loaded):
    runtime, handle = loaded
    errors, results = [], {}

    def work(value):
        try:
            for _ in range(20):
                out = runtime.infer(handle, {'image': image(value)})['doubled']
                assert np.all(out == 2 * value)
            results[value] = True
        except Exception as err:  # noqa: B902 - collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(float(v),)) for v in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(results) == 6


def test_release_during_concurrent_infer_gives_results_or_inference_errors(loaded):
    runtime, handle = loaded
    unexpected = []
    started = threading.Barrier(5)

    def work():
        started.wait()
        for _ in range(50):
            try:
                runtime.infer(handle, {'image': image()})
            except InferenceError:
                pass
            except Exception as err:  # noqa: B902 - collected and asserted below
                unexpected.append(err)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    runtime.release_engine(handle)
    for thread in threads:
        thread.join()
    assert unexpected == [] and handle.is_released


def test_compile_is_refused_with_the_seal_command_to_use(tmp_path):
    with pytest.raises(EngineBuildError, match='seal'):
        make_runtime().compile_engine(str(tmp_path / 'm.onnx'), {})


def test_thermal_state_without_a_publisher_is_unavailable():
    pytest.importorskip('gps_denied_inference.resources.thermal')
    state = make_runtime().thermal_state()
    assert not state.is_telemetry_available
    assert state.reason == 'no thermal publisher'


def test_with_a_budget_weights_then_execution_are_reserved_and_released(tmp_path):
    memory = pytest.importorskip('gps_denied_inference.resources.budget')
    budget = memory.MemoryBudget(1 << 30, 1 << 30)
    runtime = OnnxRuntimeRuntime(config=RuntimeConfig(), budget=budget)
    handle = runtime.deserialize_engine('tiny', str(make_sealed_onnx(tmp_path)), ORT)
    weights = memory.weights_need(handle.manifest, False)
    assert budget.host.reservations() == {'tiny:weights': weights.host_bytes}
    assert budget.gpu.resident_bytes == 0
    runtime.prepare_execution(handle)
    execution = memory.execution_need(handle.manifest, False)
    assert budget.host.reservations() == {'tiny:weights': weights.host_bytes,
                                          'tiny:execution': execution.host_bytes}
    runtime.release_engine(handle)
    assert budget.is_empty()


def test_a_budget_refusal_leaves_nothing_loaded_or_reserved(tmp_path):
    memory = pytest.importorskip('gps_denied_inference.resources.budget')
    from gps_denied_inference.errors import OutOfMemoryError
    path = make_sealed_onnx(tmp_path)
    manifest = manifest_from_onnx(path)
    budget = memory.MemoryBudget(1 << 30, manifest.memory.weights_bytes - 1 or 1)
    runtime = OnnxRuntimeRuntime(config=RuntimeConfig(), budget=budget)
    with pytest.raises(OutOfMemoryError, match='tiny:weights'):
        runtime.deserialize_engine('tiny', str(path), ORT)
    assert budget.is_empty()
    with pytest.raises(OutOfMemoryError):  # not 'already loaded': nothing was registered
        runtime.deserialize_engine('tiny', str(path), ORT)
    roomy = memory.MemoryBudget(1 << 30, manifest.memory.weights_bytes)
    runtime = OnnxRuntimeRuntime(config=RuntimeConfig(), budget=roomy)
    handle = runtime.deserialize_engine('tiny', str(path), ORT)
    with pytest.raises(OutOfMemoryError, match='tiny:execution'):
        runtime.prepare_execution(handle)
    assert list(roomy.host.reservations()) == ['tiny:weights']
    runtime.release_engine(handle)
    assert roomy.is_empty()


def test_a_handle_is_an_onnxruntime_handle(loaded):
    assert isinstance(loaded[1], OnnxRuntimeHandle)
    assert not loaded[1].on_gpu


def test_a_sealed_file_that_is_not_onnx_is_a_load_refusal_with_the_cause(tmp_path):
    manifest = manifest_from_onnx(make_onnx(tmp_path / 'real.onnx'))
    fake = tmp_path / 'fake.onnx'
    fake.write_bytes(b'this is not a protobuf' * 10)
    seal_artifact(fake, manifest)
    with pytest.raises(EngineLoadError, match='could not create a session') as info:
        make_runtime().deserialize_engine('fake', str(fake), ORT)
    assert info.value.__cause__ is not None
