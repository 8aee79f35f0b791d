"""The rules every strategy inherits: options checked, gate first, one handle per name."""

import pytest
from sealed_models import make_sealed_onnx

from gps_denied_inference.artifacts.gate import GateExpectation
from gps_denied_inference.errors import ConfigError, EngineGateError, InferenceError
from gps_denied_inference.resources.budget import MemoryBudget
from gps_denied_inference.runtimes.onnxruntime import OnnxRuntimeRuntime
from gps_denied_inference.runtimes.settings import RuntimeConfig

ORT = GateExpectation('onnxruntime')


def test_unknown_options_are_refused_by_name():
    with pytest.raises(ConfigError, match="OnnxRuntimeRuntime options \\['colour'\\]"):
        OnnxRuntimeRuntime(config=RuntimeConfig(), colour='red')


def test_a_second_engine_of_the_same_name_is_refused_and_reserves_nothing(tmp_path):
    budget = MemoryBudget(1 << 30, 1 << 30)
    runtime = OnnxRuntimeRuntime(config=RuntimeConfig(), budget=budget)
    handle = runtime.deserialize_engine('m', str(make_sealed_onnx(tmp_path)), ORT)
    before = budget.host.reservations()
    with pytest.raises(ConfigError, match='already loaded'):
        runtime.deserialize_engine('m', str(make_sealed_onnx(tmp_path, 'other.onnx')), ORT)
    assert budget.host.reservations() == before
    runtime.release_engine(handle)
    runtime.release_engine(handle)
    assert budget.is_empty()
    with pytest.raises(InferenceError, match='released'):
        runtime.prepare_execution(handle)


def test_the_gate_runs_before_anything_is_reserved(tmp_path):
    budget = MemoryBudget(1 << 30, 1 << 30)
    path = make_sealed_onnx(tmp_path)
    path.write_bytes(path.read_bytes() + b'!')
    with pytest.raises(EngineGateError):
        OnnxRuntimeRuntime(config=RuntimeConfig(), budget=budget).deserialize_engine(
            'm', str(path), ORT)
    assert budget.is_empty()


def test_a_strategy_refuses_another_strategys_artifact(tmp_path):
    with pytest.raises(ConfigError, match="cannot load a 'tensorrt' artifact"):
        OnnxRuntimeRuntime(config=RuntimeConfig()).deserialize_engine(
            'm', str(make_sealed_onnx(tmp_path)), GateExpectation('tensorrt', None, '10.3.0',
                                                                   '8.7'))
