"""Correctness: keypoint matching tolerant of FP16 reordering, and its verdicts."""

import numpy as np
import pytest

from gps_denied_inference.selftest import correctness
from gps_denied_inference.selftest.report import PASS, Report, SKIP
from selftest.conftest import built_session

REFERENCE = np.array([[[10, 20, 0.5], [30, 40, 0.25], [50, 60, 0.125], [0, 0, 0]]],
                     dtype=np.float32)


def test_reordered_keypoints_within_a_pixel_match():
    found = REFERENCE[:, [2, 0, 1, 3]].copy()
    found[0, :3, :2] += 0.5
    assert correctness.compare_keypoints(REFERENCE, found) == (1.0, 0.0, 3)


def test_moved_keypoints_and_wrong_scores_are_measured():
    found = REFERENCE.copy()
    found[0, 0, 0] += 5  # moved 5 px
    found[0, 1, 2] *= 1.5
    match, error, count = correctness.compare_keypoints(REFERENCE, found)
    assert (count, match) == (3, pytest.approx(2 / 3))
    assert error == pytest.approx(0.25)
    assert correctness.compare_keypoints(np.zeros((1, 4, 3)), found) == (0.0, 0.0, 0)
    assert correctness.compare_keypoints(REFERENCE, np.zeros((1, 4, 3)))[0] == 0.0


def test_agreeing_outputs_pass(fake, tmp_path, monkeypatch):
    session = built_session(tmp_path)
    monkeypatch.setattr(correctness, '_outputs', lambda target, s: {'keypoints': REFERENCE})
    report = Report()
    correctness.run(session, report)
    assert report.lines[0].status == PASS
    assert report.lines[0].measured == '100.0% of 3 matched, median score error 0.00%'
    session.close()


def test_without_tensorrt_the_comparison_skips(no_gpu, tmp_path):
    session = built_session(tmp_path)
    report = Report()
    correctness.run(session, report)
    assert report.lines[0].status == SKIP
