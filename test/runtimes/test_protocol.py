"""The strategy factory refuses unknown and uninstalled runtimes by name, importing nothing."""

import sys

import pytest

from gps_denied_inference.errors import ConfigError, RuntimeUnavailableError
from gps_denied_inference.runtimes import protocol as runtime


def test_unknown_runtime_is_refused_with_the_choices():
    with pytest.raises(RuntimeUnavailableError) as info:
        runtime.build_inference_runtime('tflite')
    assert 'tflite' in str(info.value)
    assert 'tensorrt' in str(info.value) and 'onnxruntime' in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_uninstalled_runtime_names_the_missing_library(monkeypatch):
    monkeypatch.setitem(runtime.STRATEGIES, 'tensorrt',
                        ('gps_denied_inference.runtimes.tensorrt', 'TensorrtRuntime',
                         'no_such_library_for_test'))
    with pytest.raises(RuntimeUnavailableError, match='no_such_library_for_test'):
        runtime.build_inference_runtime('tensorrt')


def test_importing_the_package_imports_no_gpu_or_ros_library():
    import subprocess
    code = ('import sys, gps_denied_inference, gps_denied_inference.runtimes.protocol, '
            'gps_denied_inference.runtimes.settings, gps_denied_inference.imaging.contract, '
            'gps_denied_inference.node.parameters, gps_denied_inference.artifacts.manifest; '
            'bad = [m for m in ("tensorrt", "pycuda", "onnxruntime", "rclpy", "torch") '
            'if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
