"""The demo's own checks: a camera that cannot keep its rate fails the demo."""

from gps_denied_inference.demo.run import camera_rate_check


def test_a_camera_at_its_rate_passes():
    what, passed, detail = camera_rate_check(300, 10.0, 30.0)
    assert passed and detail == '30.0 Hz' and '30 Hz' in what


def test_a_camera_at_a_third_of_its_rate_fails():
    assert not camera_rate_check(90, 10.0, 30.0)[1]


def test_a_camera_just_under_the_tolerance_fails():
    assert camera_rate_check(270, 10.0, 30.0)[1]
    assert not camera_rate_check(269, 10.0, 30.0)[1]
