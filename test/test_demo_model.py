"""The demo corner detector finds real corners in real ONNX Runtime; the heavy model is sized."""

import cv2
import numpy as np
import onnx
import onnxruntime
import pytest

from gps_denied_inference import demo_model
from gps_denied_inference.errors import ConfigError
from gps_denied_inference.gate import EngineGate, GateExpectation
from gps_denied_inference.manifest import Manifest
from gps_denied_inference.sealing import manifest_sidecar_path


def run(model, image):
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=['CPUExecutionProvider'])
    keypoints, descriptors = session.run(['keypoints', 'descriptors'],
                                         {'image': image[None, None].astype(np.float32)})
    return keypoints[0, 0], descriptors[0]


def strongest(scores, count):
    order = np.argsort(scores, axis=None)[::-1][:count]
    return [p for p in zip(*np.unravel_index(order, scores.shape)) if scores[p] > 0]


def near(point, targets, tolerance=2.0):
    return min(np.hypot(point[0] - t[0], point[1] - t[1]) for t in targets) <= tolerance


@pytest.fixture(scope='module')
def detector():
    return demo_model.build_corner_detector(240, 320)


def test_checkerboard_corners_are_the_top_responses(detector):
    square, rows, cols = 30, 6, 8
    image = np.full((240, 320), 0.2, dtype=np.float32)
    top, left = 30, 40
    yy, xx = np.mgrid[0:rows * square, 0:cols * square]
    board = ((yy // square + xx // square) % 2) * 0.7 + 0.15
    image[top:top + rows * square, left:left + cols * square] = board
    # Inner X-junctions lie between pixels: the corner at row r is at r - 0.5.
    corners = [(top + r * square - 0.5, left + c * square - 0.5)
               for r in range(1, rows) for c in range(1, cols)]
    keypoints, _ = run(detector, image)
    found = strongest(keypoints, 4 * len(corners))
    assert len(found) >= len(corners)
    top_responses = found[:len(corners)]
    assert all(near(p, corners) for p in top_responses)
    assert all(any(near(p, [c]) for p in found) for c in corners)


def test_the_corners_of_a_rendered_shape_are_found(detector):
    rng = np.random.default_rng(7)
    image = np.full((240, 320), 60, dtype=np.uint8)
    corners = [(50, 70), (50, 230), (180, 230), (180, 70)]
    cv2.rectangle(image, (70, 50), (230, 180), 200, thickness=-1)
    noisy = image / 255.0 + rng.normal(0, 0.01, image.shape)
    keypoints, _ = run(detector, np.clip(noisy, 0, 1))
    found = strongest(keypoints, 4)
    targets = [(r - 0.5 if r == 50 else r + 0.5, c - 0.5 if c == 70 else c + 0.5)
               for r, c in corners]
    assert len(found) == 4
    assert all(near(p, targets) for p in found)
    assert all(any(near(p, [t]) for p in found) for t in targets)


@pytest.mark.parametrize('image', [
    np.zeros((240, 320)), np.full((240, 320), 0.6),
    np.where(np.arange(320) < 160, 0.1, 0.9)[None].repeat(240, axis=0),
    np.where(np.arange(240) < 100, 0.9, 0.1)[:, None].repeat(320, axis=1),
], ids=['black', 'grey', 'vertical-edge', 'horizontal-edge'])
def test_flat_regions_and_straight_edges_give_no_keypoints(detector, image):
    keypoints, _ = run(detector, image)
    assert np.count_nonzero(keypoints) == 0


def test_keypoints_are_local_maxima_and_non_negative(detector):
    image = np.random.default_rng(3).random((240, 320)).astype(np.float32)
    keypoints, _ = run(detector, image)
    assert keypoints.min() >= 0 and np.count_nonzero(keypoints) > 0
    pad = demo_model.NMS_KERNEL // 2
    padded = np.pad(keypoints, pad)
    for r, c in zip(*np.nonzero(keypoints)):
        window = padded[r:r + 2 * pad + 1, c:c + 2 * pad + 1]
        assert keypoints[r, c] == window.max()


def test_descriptors_are_unit_norm_on_textured_cells_and_near_zero_on_flat_cells(detector):
    image = np.full((240, 320), 0.5, dtype=np.float32)
    image[:, 160:] = np.random.default_rng(1).random((240, 160))
    _, descriptors = run(detector, image)
    assert descriptors.shape == (30, 40, 8)
    norms = np.linalg.norm(descriptors, axis=-1)
    assert np.allclose(norms[:, 21:], 1.0, atol=1e-5)
    assert np.all(norms[:, :19] < 1e-4)


@pytest.mark.parametrize('edge, dominant', [('vertical', 0), ('horizontal', 1)])
def test_a_descriptor_bin_follows_the_gradient_direction(detector, edge, dominant):
    ramp = np.linspace(0, 1, 320)[None].repeat(240, axis=0)
    image = ramp if edge == 'vertical' else np.linspace(0, 1, 240)[:, None].repeat(320, axis=1)
    _, descriptors = run(detector, image)
    cell = descriptors[15, 20]
    assert int(np.argmax(cell)) == dominant


@pytest.mark.parametrize('height, width', [(16, 16), (64, 96), (480, 640)])
def test_the_detector_has_the_agreed_io_for_any_size(height, width):
    model = demo_model.build_corner_detector(height, width)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=['CPUExecutionProvider'])
    assert [(i.name, i.shape, i.type) for i in session.get_inputs()] == [
        ('image', [1, 1, height, width], 'tensor(float)')]
    assert [(o.name, o.shape) for o in session.get_outputs()] == [
        ('keypoints', [1, 1, height, width]), ('descriptors', [1, height // 8, width // 8, 8])]


@pytest.mark.parametrize('height, width', [(0, 64), (64, 12), (100, 64), (8, 64), (True, 64),
                                           (64.0, 64)])
def test_sizes_that_are_not_multiples_of_the_cell_are_refused(height, width):
    with pytest.raises(ConfigError, match='multiple of 8'):
        demo_model.build_corner_detector(height, width)
    with pytest.raises(ConfigError, match='multiple of 8'):
        demo_model.build_superpoint_like(height, width)


def superpoint_parameters():
    channels = (1,) + demo_model.SUPERPOINT_ENCODER
    encoder = sum(c_in * c_out * 9 + c_out for c_in, c_out in zip(channels, channels[1:]))
    detector = 128 * 256 * 9 + 256 + 256 * 65 + 65
    descriptor = 128 * 256 * 9 + 256 + 256 * 256 + 256
    return encoder + detector + descriptor


def test_the_superpoint_like_model_is_superpoint_sized_and_runs(tmp_path):
    manifest = demo_model.write_demo_model(tmp_path / 'sp.onnx', height=64, width=80,
                                           superpoint=True, seed=5)
    weight_bytes = manifest.memory.weights_bytes
    assert 4 * superpoint_parameters() <= weight_bytes <= 4 * superpoint_parameters() + 64
    assert superpoint_parameters() == 1_300_865
    session = onnxruntime.InferenceSession(str(tmp_path / 'sp.onnx'),
                                           providers=['CPUExecutionProvider'])
    image = np.random.default_rng(0).random((1, 1, 64, 80), dtype=np.float32)
    keypoints, descriptors = session.run(['keypoints', 'descriptors'], {'image': image})
    assert keypoints.shape == (1, 1, 64, 80) and descriptors.shape == (1, 8, 10, 256)
    assert np.allclose(np.linalg.norm(descriptors, axis=-1), 1.0, atol=1e-4)
    assert keypoints.min() >= 0 and 0 < np.count_nonzero(keypoints) < keypoints.size
    assert manifest.extra['seed'] == 5


def test_the_seed_decides_the_superpoint_weights():
    def weights(seed):
        return [t.raw_data for t in demo_model.build_superpoint_like(32, 32, seed)
                .graph.initializer]
    assert weights(1) == weights(1)
    assert weights(1) != weights(2)


def test_write_demo_model_seals_an_artifact_the_gate_accepts(tmp_path):
    path = tmp_path / 'nested' / 'corners.onnx'
    manifest = demo_model.write_demo_model(path, height=48, width=64)
    assert EngineGate().validate(path, GateExpectation('onnxruntime')) == manifest
    assert Manifest.from_json(manifest_sidecar_path(path).read_text()) == manifest
    assert manifest.preprocess == demo_model.demo_contract(48, 64)
    assert manifest.memory.io_buffer_bytes == 4 * (48 * 64 * 2 + 6 * 8 * 8)
    assert manifest.memory.activation_bytes > manifest.memory.io_buffer_bytes
    assert manifest.extra['model'] == 'harris_corner_detector'
    assert sorted(p.name for p in path.parent.iterdir()) == [
        'corners.onnx', 'corners.onnx.manifest.json', 'corners.onnx.sha256']
