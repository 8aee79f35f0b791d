"""The demo corner detector finds real corners in real ONNX Runtime; the heavy model is sized."""

import cv2
import numpy as np
import onnx
import onnxruntime
import pytest

from gps_denied_inference.artifacts.gate import EngineGate, GateExpectation
from gps_denied_inference.artifacts.manifest import Manifest
from gps_denied_inference.artifacts.sealing import manifest_sidecar_path
from gps_denied_inference.demo import models as demo_model
from gps_denied_inference.errors import ConfigError


def run(model, image):
    """The keypoint rows [K, 3] (x, y, score) and descriptors [K, C] of one image."""
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=['CPUExecutionProvider'])
    keypoints, descriptors = session.run(['keypoints', 'descriptors'],
                                         {'image': image[None, None].astype(np.float32)})
    return keypoints[0], descriptors[0]


def found(keypoints, count=None):
    """(row, column) of the keypoints with a positive score, strongest first."""
    rows = keypoints[keypoints[:, 2] > 0][:count]
    return [(int(y), int(x)) for x, y, _ in rows]


def score_map(keypoints, shape):
    """The dense map the rows were selected from (complete when K = H x W)."""
    scores = np.zeros(shape, dtype=np.float32)
    for x, y, score in keypoints:
        if score > 0:
            scores[int(y), int(x)] = score
    return scores


def near(point, targets, tolerance=2.0):
    return min(np.hypot(point[0] - t[0], point[1] - t[1]) for t in targets) <= tolerance


@pytest.fixture(scope='module')
def detector():
    """Every pixel may be a keypoint row: the output holds the whole score map."""
    return demo_model.build_corner_detector(240, 320, max_keypoints=240 * 320)


def sobel_cell_descriptors(image):
    """The detector's descriptor, written out in numpy: [H/8, W/8, 8]."""
    gx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64) / 8.0
    kernels = [gx, gx.T, (gx + gx.T) / np.sqrt(2.0), (gx - gx.T) / np.sqrt(2.0)]
    padded = np.pad(image.astype(np.float64), 1, mode='reflect')
    height, width = image.shape
    grads = [sum(k[dy, dx] * padded[dy:dy + height, dx:dx + width]
                 for dy in range(3) for dx in range(3)) for k in kernels]
    bins = np.stack([np.maximum(g, 0) for g in grads] + [np.maximum(-g, 0) for g in grads])
    cells = bins.reshape(8, height // 8, 8, width // 8, 8).mean(axis=(2, 4))
    norm = np.sqrt((cells ** 2).sum(axis=0))
    return (cells / np.maximum(norm, demo_model.DESCRIPTOR_NORM_FLOOR)).transpose(1, 2, 0)


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
    strongest = found(keypoints, 4 * len(corners))
    assert len(strongest) >= len(corners)
    assert all(near(p, corners) for p in strongest[:len(corners)])
    assert all(any(near(p, [c]) for p in strongest) for c in corners)


def test_the_corners_of_a_rendered_shape_are_found(detector):
    rng = np.random.default_rng(7)
    image = np.full((240, 320), 60, dtype=np.uint8)
    corners = [(50, 70), (50, 230), (180, 230), (180, 70)]
    cv2.rectangle(image, (70, 50), (230, 180), 200, thickness=-1)
    noisy = image / 255.0 + rng.normal(0, 0.01, image.shape)
    keypoints, _ = run(detector, np.clip(noisy, 0, 1))
    strongest = found(keypoints, 4)
    targets = [(r - 0.5 if r == 50 else r + 0.5, c - 0.5 if c == 70 else c + 0.5)
               for r, c in corners]
    assert len(strongest) == 4
    assert all(near(p, targets) for p in strongest)
    assert all(any(near(p, [t]) for p in strongest) for t in targets)


@pytest.mark.parametrize('image', [
    np.zeros((240, 320)), np.full((240, 320), 0.6),
    np.where(np.arange(320) < 160, 0.1, 0.9)[None].repeat(240, axis=0),
    np.where(np.arange(240) < 100, 0.9, 0.1)[:, None].repeat(320, axis=1),
], ids=['black', 'grey', 'vertical-edge', 'horizontal-edge'])
def test_flat_regions_and_straight_edges_give_only_zero_rows(detector, image):
    keypoints, descriptors = run(detector, image)
    assert not keypoints.any() and not descriptors.any()


def test_keypoints_are_the_local_maxima_strongest_first(detector):
    image = np.random.default_rng(3).random((240, 320)).astype(np.float32)
    keypoints, _ = run(detector, image)
    scores = keypoints[:, 2]
    assert np.all(np.diff(scores) <= 0) and scores.min() == 0 and scores.max() > 0
    kept = keypoints[scores > 0]
    assert np.array_equal(kept[:, :2], np.round(kept[:, :2]))
    assert len({(x, y) for x, y, _ in kept}) == len(kept)
    assert not keypoints[scores == 0].any()
    dense = score_map(keypoints, (240, 320))
    pad = demo_model.NMS_KERNEL // 2
    padded = np.pad(dense, pad)
    for r, c in zip(*np.nonzero(dense)):
        window = padded[r:r + 2 * pad + 1, c:c + 2 * pad + 1]
        assert dense[r, c] == window.max()


def test_max_keypoints_keeps_the_strongest_rows(detector):
    image = np.random.default_rng(4).random((240, 320)).astype(np.float32)
    every, every_descriptor = run(detector, image)
    first, first_descriptor = run(demo_model.build_corner_detector(240, 320, 16), image)
    assert first.shape == (16, 3) and first_descriptor.shape == (16, 8)
    assert np.array_equal(first, every[:16]) and np.array_equal(first_descriptor,
                                                                every_descriptor[:16])


def test_each_descriptor_is_its_keypoints_cell_descriptor(detector):
    image = np.random.default_rng(5).random((240, 320)).astype(np.float32)
    image[:, :160] = 0.5
    keypoints, descriptors = run(detector, image)
    expected = sobel_cell_descriptors(image)
    kept = keypoints[:, 2] > 0
    assert kept.sum() > 100
    for (x, y, _), descriptor in zip(keypoints[kept], descriptors[kept]):
        assert np.allclose(descriptor, expected[int(y) // 8, int(x) // 8], atol=1e-5)
    assert np.allclose(np.linalg.norm(descriptors[kept], axis=-1), 1.0, atol=1e-5)
    assert not descriptors[~kept].any()


def test_a_descriptor_bin_follows_the_gradient_direction(detector):
    image = np.full((240, 320), 0.2, dtype=np.float32)
    image[84:164, 124:204] = 0.8
    keypoints, descriptors = run(detector, image)
    points = found(keypoints)

    def descriptor_near(corner):
        index = min(range(len(points)), key=lambda i: np.hypot(points[i][0] - corner[0],
                                                               points[i][1] - corner[1]))
        assert near(points[index], [corner])
        return descriptors[index]

    # Bins: +x, +y, two diagonals, then the same four negated. Entering the bright square
    # at its top-left corner both gradients are positive; leaving it at the bottom-right,
    # both are negative.
    top_left, bottom_right = descriptor_near((83.5, 123.5)), descriptor_near((163.5, 203.5))
    assert min(top_left[0], top_left[1]) > 0.3 and max(top_left[4], top_left[5]) < 0.05
    assert min(bottom_right[4], bottom_right[5]) > 0.3
    assert max(bottom_right[0], bottom_right[1]) < 0.05


@pytest.mark.parametrize('height, width, rows', [(16, 16, 256), (64, 96, 1024),
                                                 (480, 640, 1024)])
def test_the_detector_has_the_agreed_io_for_any_size(height, width, rows):
    model = demo_model.build_corner_detector(height, width)
    onnx.checker.check_model(model, full_check=True)
    assert model.opset_import[0].version == 17
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=['CPUExecutionProvider'])
    assert [(i.name, i.shape, i.type) for i in session.get_inputs()] == [
        ('image', [1, 1, height, width], 'tensor(float)')]
    assert [(o.name, o.shape) for o in session.get_outputs()] == [
        ('keypoints', [1, rows, 3]), ('descriptors', [1, rows, 8])]


@pytest.mark.parametrize('height, width', [(0, 64), (64, 12), (100, 64), (8, 64), (True, 64),
                                           (64.0, 64)])
def test_sizes_that_are_not_multiples_of_the_cell_are_refused(height, width):
    with pytest.raises(ConfigError, match='multiple of 8'):
        demo_model.build_corner_detector(height, width)
    with pytest.raises(ConfigError, match='multiple of 8'):
        demo_model.build_superpoint_like(height, width)


@pytest.mark.parametrize('height, width, max_keypoints, words', [
    (64, 64, 0, 'max_keypoints = 0'), (64, 64, True, 'max_keypoints = True'),
    (64, 64, 2.0, 'max_keypoints = 2.0'), (4096, 4104, 16, 'at most 16777215 pixels'),
])
def test_keypoint_counts_and_sizes_the_selection_cannot_hold_are_refused(
        height, width, max_keypoints, words):
    with pytest.raises(ConfigError, match=words):
        demo_model.build_corner_detector(height, width, max_keypoints)
    with pytest.raises(ConfigError, match=words):
        demo_model.build_superpoint_like(height, width, max_keypoints=max_keypoints)


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
    # Beyond the weights: the graph's small constants (shapes, axes, thresholds).
    assert 4 * superpoint_parameters() <= weight_bytes <= 4 * superpoint_parameters() + 256
    assert superpoint_parameters() == 1_300_865
    session = onnxruntime.InferenceSession(str(tmp_path / 'sp.onnx'),
                                           providers=['CPUExecutionProvider'])
    image = np.random.default_rng(0).random((1, 1, 64, 80), dtype=np.float32)
    keypoints, descriptors = session.run(['keypoints', 'descriptors'], {'image': image})
    assert keypoints.shape == (1, 1024, 3) and descriptors.shape == (1, 1024, 256)
    kept = keypoints[0, :, 2] > 0
    assert 0 < kept.sum() < 1024 and np.all(np.diff(keypoints[0, :, 2]) <= 0)
    assert np.allclose(np.linalg.norm(descriptors[0, kept], axis=-1), 1.0, atol=1e-4)
    assert not keypoints[0, ~kept].any() and not descriptors[0, ~kept].any()
    assert manifest.extra['seed'] == 5 and manifest.extra['max_keypoints'] == 1024


def test_the_dense_model_outputs_superpoints_heads_at_their_real_sizes(tmp_path):
    manifest = demo_model.write_demo_model(tmp_path / 'dense.onnx', height=64, width=80,
                                           dense=True, seed=5)
    assert [(t.name, tuple(t.shape), t.dtype) for t in manifest.outputs] == [
        ('semi', (1, 65, 8, 10), 'float32'), ('desc', (1, 256, 8, 10), 'float32')]
    assert 4 * superpoint_parameters() <= manifest.memory.weights_bytes
    assert manifest.extra['model'] == 'superpoint_dense' and manifest.extra['seed'] == 5
    assert 'max_keypoints' not in manifest.extra
    session = onnxruntime.InferenceSession(str(tmp_path / 'dense.onnx'),
                                           providers=['CPUExecutionProvider'])
    image = np.random.default_rng(0).random((1, 1, 64, 80), dtype=np.float32)
    semi, desc = session.run(['semi', 'desc'], {'image': image})
    assert semi.shape == (1, 65, 8, 10) and desc.shape == (1, 256, 8, 10)
    assert np.allclose(np.linalg.norm(desc[0], axis=0), 1.0, atol=1e-4)
    # Logits, not probabilities: the softmax is left to the consumer, as SuperPoint exports.
    assert semi.min() < 0 < semi.max()


def test_the_dense_model_is_the_superpoint_like_network_without_the_selection():
    def weights(model):
        return {t.name: t.raw_data for t in model.graph.initializer if '.' in t.name}
    dense = weights(demo_model.build_superpoint_dense(32, 32, seed=4))
    assert dense == weights(demo_model.build_superpoint_like(32, 32, seed=4))
    assert len(dense) == 2 * 12


def test_a_dense_model_at_640x480_carries_6_2_mb_per_frame():
    outputs = demo_model.build_superpoint_dense(480, 640).graph.output
    sizes = [[d.dim_value for d in o.type.tensor_type.shape.dim] for o in outputs]
    assert sizes == [[1, 65, 60, 80], [1, 256, 60, 80]]
    assert sum(4 * int(np.prod(s)) for s in sizes) == 6_163_200


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
    assert manifest.memory.io_buffer_bytes == 4 * (48 * 64 + 1024 * 3 + 1024 * 8)
    assert manifest.memory.activation_bytes > manifest.memory.io_buffer_bytes
    assert manifest.extra['model'] == 'harris_corner_detector'
    assert sorted(p.name for p in path.parent.iterdir()) == [
        'corners.onnx', 'corners.onnx.manifest.json', 'corners.onnx.sha256']
