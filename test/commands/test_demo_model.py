"""`demo-model` writes a sealed model that verify accepts and ONNX Runtime runs."""

import numpy as np
import onnxruntime
import pytest

from gps_denied_inference.artifacts.gate import EngineGate, GateExpectation
from gps_denied_inference.artifacts.sealing import manifest_sidecar_path, sha256_file


def test_demo_model_writes_a_sealed_corner_detector(tmp_path, cli):
    path = tmp_path / 'out' / 'corners.onnx'
    code, out, err = cli('demo-model', path, '--height', '48', '--width', '64')
    assert code == 0, err
    assert sha256_file(path) in out and 'harris_corner_detector' in out
    assert 'keypoints [1, 1024, 3]' in out and 'descriptors [1, 1024, 8]' in out
    manifest = EngineGate().validate(path, GateExpectation('onnxruntime'))
    assert (manifest.preprocess.height, manifest.preprocess.width) == (48, 64)
    assert cli('verify', path)[0] == 0


def test_demo_model_superpoint_uses_the_seed(tmp_path, cli):
    first, second, other = (tmp_path / n for n in ('a.onnx', 'b.onnx', 'c.onnx'))
    for path, seed in ((first, 3), (second, 3), (other, 4)):
        assert cli('demo-model', path, '--superpoint', '--seed', seed, '--height', 32,
                   '--width', 32)[0] == 0
    assert sha256_file(first) == sha256_file(second) != sha256_file(other)
    session = onnxruntime.InferenceSession(str(first), providers=['CPUExecutionProvider'])
    outputs = session.run(None, {'image': np.zeros((1, 1, 32, 32), np.float32)})
    assert [o.shape for o in outputs] == [(1, 1024, 3), (1, 1024, 256)]
    assert '"seed": 3' in manifest_sidecar_path(first).read_text()


def test_demo_model_dense_writes_the_dense_heads(tmp_path, cli):
    path = tmp_path / 'dense.onnx'
    code, out, err = cli('demo-model', path, '--dense', '--height', '48', '--width', '64')
    assert code == 0, err
    assert 'superpoint_dense' in out
    assert 'semi [1, 65, 6, 8]' in out and 'desc [1, 256, 6, 8]' in out
    assert EngineGate().validate(path, GateExpectation('onnxruntime')).extra['model'] == \
        'superpoint_dense'


def test_demo_model_refuses_dense_with_superpoint(tmp_path, cli):
    code, _, err = cli('demo-model', tmp_path / 'm.onnx', '--dense', '--superpoint')
    assert code == 2 and '--dense and --superpoint' in err
    assert not (tmp_path / 'm.onnx').exists()


def test_demo_model_max_keypoints_sets_the_rows(tmp_path, cli):
    path = tmp_path / 'corners.onnx'
    code, out, err = cli('demo-model', path, '--height', '48', '--width', '64',
                         '--max-keypoints', '50')
    assert code == 0, err
    assert 'keypoints [1, 50, 3]' in out and 'descriptors [1, 50, 8]' in out
    assert '"max_keypoints": 50' in manifest_sidecar_path(path).read_text()


def test_demo_model_refuses_zero_keypoints(tmp_path, cli):
    code, _, err = cli('demo-model', tmp_path / 'm.onnx', '--max-keypoints', '0')
    assert code == 1 and 'max_keypoints = 0' in err
    assert not (tmp_path / 'm.onnx').exists()


@pytest.mark.parametrize('size', [['--height', '50'], ['--width', '0']])
def test_demo_model_refuses_sizes_that_are_not_multiples_of_8(tmp_path, cli, size):
    code, _, err = cli('demo-model', tmp_path / 'm.onnx', *size)
    assert code == 1 and 'multiple of 8' in err
    assert not (tmp_path / 'm.onnx').exists()
