import math

import cv2
import numpy as np
import onnxruntime
import pytest

from gps_denied_inference.demo import models as demo_model
from gps_denied_inference.demo.scene import AerialScene, FRAME_RATE_HZ
from gps_denied_inference.errors import ConfigError
from gps_denied_inference.imaging.decode import decode_image
from gps_denied_inference.imaging.preprocess import preprocess

SMALL = (512, 384)


@pytest.fixture(scope='module')
def scene():
    """The demo's scene, at its default size."""
    return AerialScene(seed=7)


@pytest.fixture(scope='module')
def small():
    return AerialScene(seed=3, size=SMALL)


@pytest.mark.parametrize('encoding', ['rgb8', 'bgr8', 'mono8'])
@pytest.mark.parametrize('i', [0, 29, 1000])
def test_frames_are_deterministic_for_a_seed(small, encoding, i):
    again = AerialScene(seed=3, size=SMALL)
    np.testing.assert_array_equal(small.frame(i, 160, 120, encoding),
                                  again.frame(i, 160, 120, encoding))


def test_different_seeds_give_different_worlds(small):
    other = AerialScene(seed=4, size=SMALL)
    difference = np.abs(small.frame(0, 160, 120).astype(int) - other.frame(0, 160, 120))
    assert difference.mean() > 10


@pytest.mark.parametrize('width,height', [(640, 480), (320, 240), (33, 17), (1, 1)])
def test_frame_dimensions_and_encodings(scene, width, height):
    rgb = scene.frame(5, width, height, 'rgb8')
    bgr = scene.frame(5, width, height, 'bgr8')
    mono = scene.frame(5, width, height, 'mono8')

    assert rgb.shape == bgr.shape == (height, width, 3)
    assert mono.shape == (height, width)
    for pixels in (rgb, bgr, mono):
        assert pixels.dtype == np.uint8 and pixels.flags.c_contiguous and pixels.flags.writeable
    np.testing.assert_array_equal(bgr, rgb[..., ::-1])
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(int)
    assert np.abs(gray - mono).max() <= 2


def test_the_default_frame_is_the_demo_camera(scene):
    assert scene.frame(0).shape == (480, 640, 3)


def test_a_returned_frame_is_the_callers(scene):
    first = scene.frame(3, 64, 48)
    first[:] = 0
    assert scene.frame(3, 64, 48).any()


def test_frames_look_like_terrain_not_noise(scene):
    pixels = scene.frame(100, encoding='mono8')
    assert pixels.std() > 15
    assert np.unique(pixels).size > 100


def phase_shift(a, b):
    window = cv2.createHanningWindow(a.shape[::-1], cv2.CV_32F)
    (dx, dy), response = cv2.phaseCorrelate(a.astype(np.float32), b.astype(np.float32), window)
    return np.array([dx, dy]), response


def expected_shift(scene, i, j, width=640, height=480):
    """Where the texture point at the centre of frame i appears in frame j, minus the centre."""
    a, b = scene.camera_pose(i), scene.camera_pose(j)
    theta = math.radians(b.heading_deg)
    rotate_back = np.array([[math.cos(theta), math.sin(theta)],
                            [-math.sin(theta), math.cos(theta)]])
    return rotate_back @ np.array([a.x - b.x, a.y - b.y])


@pytest.mark.parametrize('i', [0, 200, 777, 1500])
def test_consecutive_frames_differ_by_a_small_known_motion(scene, i):
    a, b = scene.frame(i, encoding='mono8'), scene.frame(i + 1, encoding='mono8')
    shift, response = phase_shift(a, b)

    assert not np.array_equal(a, b)
    assert response > 0.3
    assert 0.2 < np.hypot(*shift) < 5.0
    np.testing.assert_allclose(shift, expected_shift(scene, i, i + 1), atol=0.3)


def test_frames_a_second_apart_still_overlap(scene):
    a, b = scene.frame(400, encoding='mono8'), scene.frame(430, encoding='mono8')
    shift, response = phase_shift(a, b)
    assert response > 0.05
    np.testing.assert_allclose(shift, expected_shift(scene, 400, 430), atol=1.5)


def test_the_flight_is_smooth_and_the_view_never_leaves_the_texture(scene):
    frames = range(int(120 * FRAME_RATE_HZ))
    poses = [scene.camera_pose(i) for i in frames]
    steps = [math.hypot(b.x - a.x, b.y - a.y) for a, b in zip(poses, poses[1:])]
    turns = [abs(b.heading_deg - a.heading_deg) for a, b in zip(poses, poses[1:])]
    assert max(steps) < 3.6 and min(steps) > 0.1
    assert max(turns) < 0.1
    assert max(abs(p.heading_deg) for p in poses) <= 5.0
    half_diagonal = math.hypot(640, 480) / 2
    width, height = scene.size
    for pose in poses:
        assert half_diagonal <= pose.x <= width - half_diagonal
        assert half_diagonal <= pose.y <= height - half_diagonal


def test_a_corner_detector_finds_many_corners(scene):
    corners = cv2.goodFeaturesToTrack(scene.frame(0, encoding='mono8'), maxCorners=1000,
                                      qualityLevel=0.01, minDistance=5)
    assert corners is not None and len(corners) > 200


@pytest.mark.parametrize('i', [0, 450])
def test_the_demo_corner_detector_finds_keypoints(scene, i):
    height, width = 240, 320
    session = onnxruntime.InferenceSession(
        demo_model.build_corner_detector(height, width).SerializeToString(),
        providers=['CPUExecutionProvider'])
    frame = scene.frame(i, encoding='rgb8')
    image = decode_image('rgb8', 480, 640, 640 * 3, 0, frame.tobytes())
    tensor = preprocess(image, demo_model.demo_contract(height, width))

    keypoints = session.run(['keypoints'], {'image': tensor})[0]

    assert np.count_nonzero(keypoints[0, :, 2]) > 100


@pytest.mark.parametrize('call,words', [
    (lambda s: s.frame(0, 64, 48, encoding='yuv422'), ['yuv422', 'rgb8, bgr8, mono8']),
    (lambda s: s.frame(-1, 64, 48), ['index', '-1']),
    (lambda s: s.frame(1.5, 64, 48), ['index', '1.5']),
    (lambda s: s.frame(0, 0, 48), ['width = 0']),
    (lambda s: s.frame(0, SMALL[0] + 1, 48), [f'width = {SMALL[0] + 1}', str(SMALL[0])]),
    (lambda s: s.frame(0, 64, SMALL[1] + 1), [f'height = {SMALL[1] + 1}', str(SMALL[1])]),
    (lambda s: s.frame(0, 64.0, 48), ['width = 64.0']),
])
def test_bad_frame_requests_are_refused(small, call, words):
    with pytest.raises(ConfigError) as caught:
        call(small)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize('seed,size,words', [
    ('7', (512, 512), ['seed']),
    (7, (255, 512), ['256']),
    (7, (512, 0), ['height = 0']),
    (7, (512, 1 << 15), ['height', str(1 << 14)]),
])
def test_bad_scenes_are_refused(seed, size, words):
    with pytest.raises(ConfigError) as caught:
        AerialScene(seed, size=size)
    for word in words:
        assert word in str(caught.value)
