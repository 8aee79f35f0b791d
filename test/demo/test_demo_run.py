"""The demo's own checks: the camera keeps its rate; keypoints are drawn through CameraInfo."""

import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo

from gps_denied_inference.demo import run
from gps_denied_inference.demo.run import camera_rate_check
from gps_denied_inference.imaging.contract import PreprocessContract
from gps_denied_inference.imaging.geometry import Calibration, model_image_calibration
from gps_denied_inference.imaging.preprocess import plan_resize
from gps_denied_inference.node.lifecycle_node import calibration_from_msg, camera_info_msg


def test_a_camera_at_its_rate_passes():
    what, passed, detail = camera_rate_check(300, 10.0, 30.0)
    assert passed and detail == '30.0 Hz' and '30 Hz' in what


def test_a_camera_at_a_third_of_its_rate_fails():
    assert not camera_rate_check(90, 10.0, 30.0)[1]


def test_a_camera_just_under_the_tolerance_fails():
    assert camera_rate_check(270, 10.0, 30.0)[1]
    assert not camera_rate_check(269, 10.0, 30.0)[1]


@pytest.mark.parametrize('resize', ['stretch', 'letterbox'])
def test_keypoints_map_back_to_the_camera_pixels_they_came_from(resize):
    camera = calibration_from_msg(run.camera_info(CameraInfo().header))
    assert isinstance(camera, Calibration)
    plan = plan_resize(run.CAMERA_HEIGHT, run.CAMERA_WIDTH, PreprocessContract(
        width=run.MODEL_WIDTH, height=run.MODEL_HEIGHT, resize=resize))
    model_info = camera_info_msg(CameraInfo().header, model_image_calibration(camera, plan))
    camera_points = np.array([[0.0, 0.0], [319.5, 239.5], [600.25, 17.75], [639.0, 479.0]])
    rows = np.array([[*plan.to_model(x, y), 1.0] for x, y in camera_points])
    np.testing.assert_allclose(run.to_camera_pixels(rows, model_info), camera_points,
                               atol=1e-9)


def test_landing_counts_points_on_corners_and_misses_elsewhere():
    squares = (np.indices((100, 100)) // 20).sum(axis=0) % 2
    frame = np.repeat((squares * 255).astype(np.uint8)[..., None], 3, axis=2)
    on_corners = np.array([[20.0, 20.0], [39.5, 60.0], [80.0, 40.0]])
    assert run.landing_fraction(frame, on_corners) == 1.0
    elsewhere = np.array([[10.0, 10.0], [30.0, 20.0], [-5.0, 3.0], [40.0, 40.0]])
    assert run.landing_fraction(frame, elsewhere) == 0.25
