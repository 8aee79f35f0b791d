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


def test_a_dropped_frame_is_shown_with_its_lateness_and_the_busy_model():
    ms = 1e-3
    frames = {
        'a': {'callback0': 0.0, 'infer0': 1 * ms, 'infer1': 101 * ms,
              'camera_to_callback_s': 0.001},
        'b': {'callback0': 60 * ms, 'camera_to_callback_s': 0.030},
        'c': {'callback0': 61 * ms, 'infer0': 101.5 * ms, 'infer1': 200 * ms,
              'camera_to_callback_s': 0.001},
    }
    (drop,) = timeline.dropped_frames(frames)
    assert drop['camera_to_callback_ms'] == pytest.approx(30.0)
    assert drop['next_callback_after_ms'] == pytest.approx(1.0)
    assert drop['model_busy_for_ms'] == pytest.approx(59.0)
    assert drop['when_replaced'] == 'in an infer call for 60.0 ms, which took 100.0 ms'
