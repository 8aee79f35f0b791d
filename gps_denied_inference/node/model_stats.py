"""Per-model counters and latency windows that the diagnostics report.

Per published frame: latency (callback to published), inference (the infer call) and their
difference, the node's own overhead, kept per frame so its percentiles are of the node's own
cost rather than a difference of two percentiles.
"""

from collections import Counter, deque
from dataclasses import dataclass
import threading
import time
from typing import Deque, Dict, Optional, Tuple

import numpy as np

LATENCY_WINDOW = 300


@dataclass(frozen=True)
class StatsSnapshot:
    """A consistent copy of one model's counters at one instant."""

    received: int
    processed: int
    dropped: int
    rejected: int
    rejected_by_reason: Dict[str, int]
    failed: int
    consecutive_failures: int
    nonfinite_frames: int
    rate_hz: float
    latency_p50_ms: Optional[float]
    latency_p95_ms: Optional[float]
    last_error: str
    last_frame_age_s: Optional[float]
    inference_p50_ms: Optional[float] = None
    inference_p95_ms: Optional[float] = None
    node_overhead_p50_ms: Optional[float] = None
    node_overhead_p95_ms: Optional[float] = None
    last_outcome: str = ''


class ModelStats:
    """Thread-safe counters for one model: the subscription thread and the worker both write."""

    def __init__(self, window: int = LATENCY_WINDOW) -> None:
        self._lock = threading.Lock()
        self._latencies_s: Deque[float] = deque(maxlen=window)
        self._inference_s: Deque[float] = deque(maxlen=window)
        self._processed_at: Deque[float] = deque(maxlen=window)
        self._rejected: Counter = Counter()
        self.received = 0
        self.processed = 0
        self.dropped = 0
        self.failed = 0
        self.consecutive_failures = 0
        self.nonfinite_frames = 0
        self.last_error = ''
        # What happened to the newest frame that got an outcome: processed, failed, rejected.
        self.last_outcome = ''
        self._last_received_at: Optional[float] = None

    def on_received(self) -> None:
        """Count a frame that arrived, before anything else happens to it."""
        with self._lock:
            self.received += 1
            self._last_received_at = time.monotonic()

    def on_dropped(self, count: int = 1) -> None:
        """Count frames discarded without processing (overwritten, or pending when stopped)."""
        with self._lock:
            self.dropped += count

    def on_rejected(self, reason: str, message: str) -> None:
        """Count an input that could not be decoded, by reason."""
        with self._lock:
            self._rejected[reason] += 1
            self.last_error = message
            self.last_outcome = 'rejected'

    def on_processed(self, latency_s: float, nonfinite: bool, inference_s: float) -> None:
        """Count a frame whose outputs were published `latency_s` after its callback."""
        with self._lock:
            self.processed += 1
            self.consecutive_failures = 0
            self.last_outcome = 'processed'
            self.nonfinite_frames += int(nonfinite)
            self._latencies_s.append(latency_s)
            self._inference_s.append(inference_s)
            self._processed_at.append(time.monotonic())

    def on_failed(self, message: str) -> None:
        """Count a frame whose inference failed (the frame is dropped, the node goes on)."""
        with self._lock:
            self.failed += 1
            self.consecutive_failures += 1
            self.last_error = message
            self.last_outcome = 'failed'

    def snapshot(self) -> StatsSnapshot:
        """Copy the counters and compute rate and latency percentiles over the window."""
        with self._lock:
            now = time.monotonic()
            latencies, inferences = np.array(self._latencies_s), np.array(self._inference_s)
            latency = _percentiles_ms(latencies)
            inference = _percentiles_ms(inferences)
            overhead = _percentiles_ms(latencies - inferences)
            stamps = list(self._processed_at)
            rate = 0.0
            if len(stamps) >= 2 and now - stamps[0] > 0:
                rate = (len(stamps) - 1) / max(stamps[-1] - stamps[0], 1e-9)
                if now - stamps[-1] > 2.0:
                    rate = 0.0
            return StatsSnapshot(
                received=self.received, processed=self.processed, dropped=self.dropped,
                rejected=sum(self._rejected.values()), rejected_by_reason=dict(self._rejected),
                failed=self.failed, consecutive_failures=self.consecutive_failures,
                nonfinite_frames=self.nonfinite_frames, rate_hz=rate,
                latency_p50_ms=latency[0], latency_p95_ms=latency[1],
                last_error=self.last_error,
                last_frame_age_s=(None if self._last_received_at is None
                                  else now - self._last_received_at),
                inference_p50_ms=inference[0], inference_p95_ms=inference[1],
                node_overhead_p50_ms=overhead[0], node_overhead_p95_ms=overhead[1],
                last_outcome=self.last_outcome)


def _percentiles_ms(seconds: np.ndarray) -> Tuple[Optional[float], Optional[float]]:
    """(p50, p95) of per-frame seconds, in ms; (None, None) when there are none."""
    if not seconds.size:
        return None, None
    values = seconds * 1e3
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))
