"""RuntimeConfig refuses bad budgets and limits, naming the field, the value and the rule."""

import dataclasses

import pytest

from gps_denied_inference.errors import ConfigError, GpsDeniedInferenceError
from gps_denied_inference.runtimes.settings import RuntimeConfig
from gps_denied_inference.validation import GIB


def test_runtime_config_defaults():
    config = RuntimeConfig()
    assert config.gpu_memory_budget_bytes == 4 * GIB
    assert config.host_memory_budget_bytes == 1536 * 1024 ** 2
    assert config.trtexec_timeout_s == 600
    assert config.cuda_context_overhead_bytes == 512 * 1024 ** 2
    assert RuntimeConfig(cuda_context_overhead_bytes=0).cuda_context_overhead_bytes == 0


@pytest.mark.parametrize('field,value', [
    ('gpu_memory_budget_bytes', 0), ('gpu_memory_budget_bytes', -1),
    ('gpu_memory_budget_bytes', 1.5), ('gpu_memory_budget_bytes', True),
    ('host_memory_budget_bytes', 0), ('host_memory_budget_bytes', '1G'),
    ('trtexec_timeout_s', 0), ('trtexec_timeout_s', -5.0), ('trtexec_timeout_s', float('nan')),
    ('cuda_context_overhead_bytes', -1), ('cuda_context_overhead_bytes', 1.5),
    ('cuda_context_overhead_bytes', True),
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
