"""Counters and latency percentiles of one model."""

import threading

import pytest

from gps_denied_inference.node.model_stats import ModelStats


def test_counts_and_percentiles():
    stats = ModelStats()
    stats.on_received()
    stats.on_received()
    stats.on_dropped()
    for ms in range(1, 101):
        stats.on_processed(ms / 1000.0, nonfinite=(ms == 50), inference_s=0.0)
    stats.on_rejected('encoding', 'bad encoding yuv422')
    stats.on_failed('boom')
    stats.on_failed('boom again')
    snap = stats.snapshot()
    assert (snap.received, snap.dropped, snap.processed) == (2, 1, 100)
    assert snap.rejected == 1 and snap.rejected_by_reason == {'encoding': 1}
    assert snap.failed == 2 and snap.consecutive_failures == 2
    assert snap.nonfinite_frames == 1
    assert snap.latency_p50_ms == pytest.approx(50.5)
    assert snap.latency_p95_ms == pytest.approx(95.05)
    assert snap.last_error == 'boom again'


def test_success_resets_consecutive_failures():
    stats = ModelStats()
    stats.on_failed('x')
    stats.on_processed(0.01, nonfinite=False, inference_s=0.008)
    assert stats.snapshot().consecutive_failures == 0


def test_the_last_outcome_is_what_happened_to_the_newest_frame():
    stats = ModelStats()
    assert stats.snapshot().last_outcome == ''
    for record, outcome in ((lambda: stats.on_failed('x'), 'failed'),
                            (lambda: stats.on_processed(0.01, False, 0.008), 'processed'),
                            (lambda: stats.on_rejected('encoding', 'y'), 'rejected'),
                            (lambda: stats.on_dropped(), 'rejected')):
        record()
        assert stats.snapshot().last_outcome == outcome


def test_empty_snapshot_has_no_latency():
    snap = ModelStats().snapshot()
    assert snap.latency_p50_ms is None and snap.rate_hz == 0.0 and snap.last_frame_age_s is None
    assert snap.inference_p50_ms is None and snap.node_overhead_p95_ms is None


def test_node_overhead_is_taken_per_frame_not_as_a_difference_of_percentiles():
    stats = ModelStats()
    # Slow frames carry slow inferences: the overhead is 1 ms on every frame.
    for inference_ms in list(range(10, 30)) * 5:
        stats.on_processed((inference_ms + 1) / 1000.0, nonfinite=False,
                           inference_s=inference_ms / 1000.0)
    snap = stats.snapshot()
    assert snap.node_overhead_p50_ms == pytest.approx(1.0)
    assert snap.node_overhead_p95_ms == pytest.approx(1.0)
    assert snap.inference_p50_ms == pytest.approx(19.5)
    assert snap.latency_p50_ms == pytest.approx(20.5)


def test_concurrent_updates_are_not_lost():
    stats = ModelStats()

    def work():
        for _ in range(2000):
            stats.on_received()
            stats.on_dropped()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = stats.snapshot()
    assert snap.received == 8000 and snap.dropped == 8000
