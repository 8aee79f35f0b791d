"""Configuration dataclasses refuse bad values and name the field, the value and the rule."""

import dataclasses

import pytest

from gps_denied_inference.config import (
    GIB,
    ModelConfig,
    PreprocessContract,
    PreprocessOverrides,
    RuntimeConfig,
    ThermalConfig,
)
from gps_denied_inference.errors import ConfigError, GpsDeniedInferenceError


def test_runtime_config_defaults():
    config = RuntimeConfig()
    assert config.gpu_memory_budget_bytes == 4 * GIB
    assert config.host_memory_budget_bytes == 1536 * 1024 ** 2
    assert config.trtexec_timeout_s == 600


@pytest.mark.parametrize('field,value', [
    ('gpu_memory_budget_bytes', 0), ('gpu_memory_budget_bytes', -1),
    ('gpu_memory_budget_bytes', 1.5), ('gpu_memory_budget_bytes', True),
    ('host_memory_budget_bytes', 0), ('host_memory_budget_bytes', '1G'),
    ('trtexec_timeout_s', 0), ('trtexec_timeout_s', -5.0), ('trtexec_timeout_s', float('nan')),
])
def test_runtime_config_refuses_bad_values_naming_the_field(field, value):
    with pytest.raises(ConfigError) as info:
        RuntimeConfig(**{field: value})
    assert field in str(info.value)
    assert repr(value) in str(info.value)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RuntimeConfig().gpu_memory_budget_bytes = 1


def test_config_error_is_a_package_error():
    assert issubclass(ConfigError, GpsDeniedInferenceError)


@pytest.mark.parametrize('field,value', [
    ('width', 0), ('height', -3), ('color', 'yuv'), ('resize', 'crop'), ('layout', 'CHW'),
    ('dtype', 'float64'), ('mean', (0.1, 0.2)), ('std', (0.0,)), ('std', [1.0]),
    ('scale', 0.0), ('pad_value', 300),
])
def test_preprocess_contract_refuses_bad_values(field, value):
    with pytest.raises(ConfigError, match=field):
        PreprocessContract(**{'width': 64, 'height': 48, field: value})


def test_preprocess_contract_shapes():
    mono = PreprocessContract(width=64, height=48)
    rgb = PreprocessContract(width=64, height=48, color='rgb', layout='NHWC',
                             mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2))
    assert mono.input_shape == (1, 1, 48, 64)
    assert rgb.input_shape == (1, 48, 64, 3)


def test_overrides_apply_and_revalidate():
    base = PreprocessContract(width=64, height=48)
    assert PreprocessOverrides(width=32, resize='letterbox').apply(base) == dataclasses.replace(
        base, width=32, resize='letterbox')
    with pytest.raises(ConfigError, match='mean'):
        PreprocessOverrides(color='rgb', mean=(0.1, 0.2)).apply(base)


@pytest.mark.parametrize('field,value', [
    ('warn_c', -1.0), ('critical_c', 50.0), ('throttle', 'yes'), ('poll_period_s', 0),
    ('root', ''),
])
def test_thermal_config_refuses_bad_values(field, value):
    with pytest.raises(ConfigError, match=field):
        ThermalConfig(**{field: value})


@pytest.mark.parametrize('field,value', [
    ('name', 'bad name'), ('engine_path', ''), ('input_topic', ''), ('runtime', 'tflite'),
    ('sha256', 'abc'), ('providers', ()),
])
def test_model_config_refuses_bad_values(field, value):
    fields = {'name': 'corners', 'engine_path': 'corners.onnx', 'input_topic': '/cam'}
    fields[field] = value
    with pytest.raises(ConfigError, match=field):
        ModelConfig(**fields)
