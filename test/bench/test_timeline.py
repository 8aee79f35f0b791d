"""The timeline's arithmetic: each step between two marks, the own cost less the infer call."""

import pytest

from gps_denied_inference.bench import timeline


def frame(offset, infer_ms=100.0):
    marks = {'callback0': 0.0, 'callback1': 0.5, 'infer0': 0.8, 'infer1': 0.8 + infer_ms,
             'deliver0': 0.9 + infer_ms, 'publish0': 1.2 + infer_ms, 'publish1': 3.2 + infer_ms}
    record = {key: offset + value * 1e-3 for key, value in marks.items()}
    record['camera_to_callback_s'] = 0.002
    return record


def test_each_step_is_the_time_between_its_two_marks():
    frames = {f'f{i}': frame(i, infer_ms=100.0 + i) for i in range(5)}
    frames['lost'] = {'callback0': 0.0, 'callback1': 0.1, 'camera_to_callback_s': 0.0}
    stats = timeline.step_stats(frames)
    assert stats['callback (decode, preprocess, handoff)']['p50_ms'] == pytest.approx(0.5)
    assert stats['callback to the infer call']['p50_ms'] == pytest.approx(0.8)
    assert stats['infer call']['p50_ms'] == pytest.approx(102.0)
    assert stats['NaN/Inf check']['p50_ms'] == pytest.approx(0.3)
    assert stats['publish (every output)']['p50_ms'] == pytest.approx(2.0)
    own = stats["node's own cost (callback to published, less infer)"]
    assert own['p50_ms'] == pytest.approx(3.2) and own['n'] == 5
    assert stats['camera stamp to callback']['p50_ms'] == pytest.approx(2.0)
