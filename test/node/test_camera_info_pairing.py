"""Frames meet their camera's CameraInfo by stamp: exact first, late ones still served once."""

from dataclasses import replace
from types import SimpleNamespace

import pytest

from gps_denied_inference.imaging.contract import PreprocessContract
from gps_denied_inference.imaging.geometry import Calibration, model_image_calibration
from gps_denied_inference.imaging.preprocess import plan_resize
from gps_denied_inference.node.camera_info_pairing import CameraInfoPairing

CONTRACT = PreprocessContract(width=320, height=240)
TOPIC = '/camera/camera_info'


def calibration(width=640, height=480, fx=500.0):
    return Calibration(width=width, height=height, distortion_model='plumb_bob',
                       d=(0.0,) * 5, k=(fx, 0.0, width / 2, 0.0, fx, height / 2, 0.0, 0.0, 1.0),
                       r=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
                       p=(fx, 0.0, width / 2, 0.0, 0.0, fx, height / 2, 0.0, 0.0, 0.0, 1.0, 0.0))


def plan(width=640, height=480):
    return plan_resize(height, width, CONTRACT)


class Published:
    """The pairing's publish function: records (frame_id, the model image's calibration)."""

    def __init__(self):
        self.calls = []

    def __call__(self, header, model):
        self.calls.append((header.frame_id, model))

    @property
    def frames(self):
        return [frame_id for frame_id, _ in self.calls]


@pytest.fixture
def published():
    return Published()


@pytest.fixture
def pairing(published):
    return CameraInfoPairing(published, TOPIC, 'stretch', 320, 240, history=4)


def frame(pairing, stamp, width=640, height=480):
    pairing.on_frame(SimpleNamespace(frame_id=f'f{stamp}'), stamp, plan(width, height))


def test_the_camera_info_of_the_frames_stamp_gives_the_model_image_calibration(pairing,
                                                                              published):
    pairing.on_camera_info(10, calibration())
    frame(pairing, 10)
    assert published.calls == [('f10', model_image_calibration(calibration(), plan()))]
    report = pairing.report()
    assert (report.intrinsics, report.received, report.published) == (True, 1, 1)
    assert report.detail == 'from the CameraInfo of its stamp'
    assert report.plan == plan() and report.problem is None


def test_a_camera_info_arriving_after_the_frame_is_published_then_and_only_once(pairing,
                                                                                published):
    frame(pairing, 10)
    assert published.calls == []
    pairing.on_camera_info(10, calibration())
    pairing.on_camera_info(10, calibration())
    assert published.frames == ['f10']


def test_once_stamps_have_paired_an_older_camera_info_never_stands_in(pairing, published):
    pairing.on_camera_info(10, calibration())
    frame(pairing, 10)
    frame(pairing, 20)
    assert published.frames == ['f10']
    recalibrated = calibration(fx=600.0)
    pairing.on_camera_info(20, recalibrated)
    assert published.calls[-1] == ('f20', model_image_calibration(recalibrated, plan()))


def test_unpaired_stamps_fall_back_to_the_newest_camera_info_stamped_before_the_frame(
        pairing, published):
    pairing.on_camera_info(0, calibration(fx=400.0))
    pairing.on_camera_info(5, calibration(fx=450.0))
    pairing.on_camera_info(50, calibration(fx=999.0))
    frame(pairing, 30)
    assert published.calls == [('f30', model_image_calibration(calibration(fx=450.0),
                                                               plan()))]
    assert 'stamped before it' in pairing.report().detail


def test_a_camera_info_stamped_after_the_frame_never_describes_it(pairing, published):
    pairing.on_camera_info(50, calibration())
    frame(pairing, 30)
    assert published.calls == []


def test_a_resolution_change_mid_flight_follows_each_frame(pairing, published):
    pairing.on_camera_info(1, calibration(640, 480))
    frame(pairing, 1, 640, 480)
    # The driver switched to 1280 x 720; its CameraInfo for frame 2 is still the old one.
    pairing.on_camera_info(2, calibration(640, 480))
    frame(pairing, 2, 1280, 720)
    report = pairing.report()
    assert published.frames == ['f1']
    assert (report.intrinsics, report.plan.src_width) == (False, 1280)
    assert 'describes 640 x 480 px images' in report.detail
    assert report.problem.startswith(f'the CameraInfo on {TOPIC} does not describe the frames')
    pairing.on_camera_info(3, calibration(1280, 720))
    frame(pairing, 3, 1280, 720)
    assert published.calls[-1] == ('f3', model_image_calibration(calibration(1280, 720),
                                                                 plan(1280, 720)))
    assert pairing.report().problem is None and pairing.report().intrinsics


def test_an_uncalibrated_camera_gives_nothing_and_is_no_problem(pairing, published):
    uncalibrated = replace(calibration(), k=(0.0,) * 9, p=(0.0,) * 12)
    pairing.on_camera_info(1, uncalibrated)
    frame(pairing, 1)
    report = pairing.report()
    assert published.calls == []
    assert (report.intrinsics, report.problem) == (False, None)
    assert 'uncalibrated' in report.detail


def test_without_camera_info_frames_wait_quietly(pairing, published):
    for stamp in range(10):
        frame(pairing, stamp)
    report = pairing.report()
    assert published.calls == [] and report.missed == 0
    assert report.detail == f'no CameraInfo received on {TOPIC}'
    assert (report.topic, report.resize, report.model_width, report.model_height) == (
        TOPIC, 'stretch', 320, 240)


def test_frames_whose_camera_info_never_came_are_counted_missed(pairing, published):
    pairing.on_camera_info(1, calibration())
    frame(pairing, 1)
    for stamp in range(2, 8):
        frame(pairing, stamp)
    pairing.on_camera_info(2, calibration())
    report = pairing.report()
    assert published.frames == ['f1']
    assert report.missed == 2 and 'within 4 frames' in report.detail
