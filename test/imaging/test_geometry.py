"""The model image's CameraInfo: projecting through it equals resizing the camera's projection."""

from dataclasses import replace
import re

import numpy as np
import pytest

from gps_denied_inference.errors import CameraInfoError
from gps_denied_inference.imaging.contract import PreprocessContract
from gps_denied_inference.imaging.geometry import (
    Calibration,
    camera_image_calibration,
    mismatch,
    model_image_calibration,
    RegionOfInterest,
)
from gps_denied_inference.imaging.preprocess import plan_resize

IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def calibration(width=1280, height=720, fx=900.0, fy=880.0, cx=645.3, cy=351.7, tx=0.0,
                **changes):
    camera = Calibration(width=width, height=height, distortion_model='plumb_bob',
                         d=(-0.2, 0.05, 0.001, 0.002, 0.0),
                         k=(fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0), r=IDENTITY,
                         p=(fx, 0.0, cx, tx, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0))
    return replace(camera, **changes)


def project(matrix, points):
    """Pixels of normalised points (x, y) through a 3x3 K or 3x4 P (points at depth 1)."""
    m = np.asarray(matrix, np.float64).reshape(3, -1)
    homogeneous = np.column_stack([points, np.ones(len(points))])
    if m.shape[1] == 4:
        homogeneous = np.column_stack([homogeneous, np.ones(len(points))])
    uvw = homogeneous @ m.T
    return uvw[:, :2] / uvw[:, 2:]


RAYS = np.array([[-0.6, -0.35], [0.0, 0.0], [0.21, -0.13], [0.65, 0.38]])


@pytest.mark.parametrize('resize', ['stretch', 'letterbox'])
@pytest.mark.parametrize('camera_size', [(1280, 720), (640, 480), (200, 300), (1001, 37)])
@pytest.mark.parametrize('model_size', [(640, 480), (416, 416)])
def test_projecting_through_the_model_k_equals_resizing_the_camera_projection(
        resize, camera_size, model_size):
    camera = calibration(camera_size[0], camera_size[1], cx=camera_size[0] * 0.47,
                         cy=camera_size[1] * 0.53, tx=-45.0)
    plan = plan_resize(camera_size[1], camera_size[0], PreprocessContract(
        width=model_size[0], height=model_size[1], resize=resize))
    model = model_image_calibration(camera, plan)
    for matrix, model_matrix in ((camera.k, model.k), (camera.p, model.p)):
        expected = [plan.to_model(u, v) for u, v in project(matrix, RAYS)]
        np.testing.assert_allclose(project(model_matrix, RAYS), expected, atol=1e-9)
    assert (model.width, model.height) == model_size


def test_stretch_scales_each_axis_with_the_pixel_centre_convention():
    camera = calibration(1280, 720, fx=900.0, fy=880.0, cx=640.0, cy=360.0, tx=-90.0)
    plan = plan_resize(720, 1280, PreprocessContract(width=640, height=480))
    model = model_image_calibration(camera, plan)
    sx, sy = 0.5, 480 / 720
    assert model.k == pytest.approx((900.0 * sx, 0.0, (640.0 + 0.5) * sx - 0.5, 0.0,
                                     880.0 * sy, (360.0 + 0.5) * sy - 0.5, 0.0, 0.0, 1.0))
    assert model.p[3] == pytest.approx(-90.0 * sx)
    assert model.p[7] == 0.0 and model.p[8:] == (0.0, 0.0, 1.0, 0.0)


def test_letterbox_scales_uniformly_and_moves_the_principal_point_by_the_border():
    camera = calibration(1280, 720, fx=900.0, fy=900.0, cx=640.0, cy=360.0)
    plan = plan_resize(720, 1280, PreprocessContract(width=640, height=480, resize='letterbox'))
    assert (plan.pad_x, plan.pad_y, plan.scale_x, plan.scale_y) == (0, 60, 0.5, 0.5)
    model = model_image_calibration(camera, plan)
    assert (model.k[0], model.k[4]) == (450.0, 450.0)
    assert (model.k[2], model.k[5]) == pytest.approx((320.0 - 0.25, 180.0 - 0.25 + 60))


def test_distortion_rectification_and_frame_carry_over_binning_and_roi_are_folded_in():
    camera = calibration(1280, 720, binning_x=2, binning_y=2, d=(0.1, -0.2, 0.0, 0.0, 0.3),
                         r=(0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0),
                         distortion_model='rational_polynomial')
    plan = plan_resize(360, 640, PreprocessContract(width=320, height=240))
    model = model_image_calibration(camera, plan)
    assert (model.distortion_model, model.d, model.r) == (camera.distortion_model, camera.d,
                                                          camera.r)
    assert (model.binning_x, model.binning_y, model.roi) == (0, 0, RegionOfInterest())
    assert model.roi.is_full and model.image_size == (320, 240)


def test_roi_and_binning_follow_image_geometry():
    """K of the camera image: principal point moved by the ROI offset, then divided by binning."""
    camera = calibration(1280, 720, fx=900.0, fy=880.0, cx=640.0, cy=360.0, binning_x=2,
                         binning_y=4, roi=RegionOfInterest(100, 40, 600, 800, True))
    assert camera.image_size == (400, 150)
    image = camera_image_calibration(camera)
    assert image.k == pytest.approx((450.0, 0.0, 270.0, 0.0, 220.0, 80.0, 0.0, 0.0, 1.0))
    assert (image.width, image.height, image.binning_x, image.roi) == (400, 150, 0,
                                                                       RegionOfInterest())
    folded = model_image_calibration(camera, plan_resize(150, 400, PreprocessContract(
        width=320, height=240)))
    direct = model_image_calibration(image, plan_resize(150, 400, PreprocessContract(
        width=320, height=240)))
    assert folded == direct


@pytest.mark.parametrize('changes,words', [
    ({'k': (0.0,) * 9, 'p': (0.0,) * 12, 'd': ()}, 'uncalibrated (K[0] = 0)'),
    ({'k': (900.0, 0.0, 640.0, 0.0, float('nan'), 360.0, 0.0, 0.0, 1.0)}, 'K holds a value'),
    ({'p': (1.0,) * 11}, 'P has 11 values, expected 12'),
    ({'d': (0.1, float('inf'))}, 'D holds a value'),
    ({'k': (900.0, 0.0, 640.0, 0.0, -880.0, 360.0, 0.0, 0.0, 1.0)}, 'must be > 0'),
    ({'width': 0, 'height': 0}, 'calibration resolution 0 x 0 px is empty'),
    ({'width': 640, 'height': 480}, 'describes 640 x 480 px images'),
    ({'binning_x': 2}, 'describes 640 x 720 px images (calibration 1280 x 720, binning 2 x 0'),
    ({'roi': RegionOfInterest(0, 0, 360, 640)}, 'ROI 640 x 360 at (0, 0)'),
])
def test_a_camera_info_that_does_not_describe_the_frame_is_refused_saying_why(changes, words):
    camera = replace(calibration(), **changes)
    plan = plan_resize(720, 1280, PreprocessContract(width=640, height=480))
    assert words in mismatch(camera, 1280, 720)
    with pytest.raises(CameraInfoError, match=re.escape(words)):
        model_image_calibration(camera, plan)
    assert mismatch(calibration(), 1280, 720) is None
