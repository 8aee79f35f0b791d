"""Sizing of the long reliability tests, and the node fixtures every reliability module uses.

`make test` runs the cycling and soak tests at CI size (a few minutes for the whole suite on
a 2-core machine); `make reliability` sets GDI_FULL_SIZE=1 for the sizes the issue asks for.
"""

from dataclasses import dataclass
import itertools
import os

import pytest

FULL_SIZE = os.environ.get('GDI_FULL_SIZE', '') == '1'
_NODE_NUMBERS = itertools.count()


@dataclass(frozen=True)
class Sizing:
    """How long the long tests run."""

    full: bool
    lifecycle_cycles: int
    soak_frames: int
    soak_rate_hz: float
    soak_warmup_frames: int
    # Shutdown stress runs: alone, beside a CPU hog, and under the race amplifier.
    shutdown_runs: int
    shutdown_hog_runs: int
    shutdown_amplified_runs: int
    # SIGKILL-and-restart cycles of the shared-memory reclaim test.
    sigkill_cycles: int

    @property
    def slow_timeout_s(self) -> float:
        """Per-test time limit of a long test: the longest one's duration plus margin."""
        stress_runs = (self.shutdown_runs + self.shutdown_hog_runs
                       + self.shutdown_amplified_runs)
        return max(self.soak_frames / self.soak_rate_hz * 1.5, stress_runs * 20.0) + 180.0


SIZING = (Sizing(True, lifecycle_cycles=200, soak_frames=10_000, soak_rate_hz=30.0,
                 soak_warmup_frames=600, shutdown_runs=240, shutdown_hog_runs=240,
                 shutdown_amplified_runs=60, sigkill_cycles=50)
          if FULL_SIZE else
          Sizing(False, lifecycle_cycles=20, soak_frames=600, soak_rate_hz=30.0,
                 soak_warmup_frames=150, shutdown_runs=6, shutdown_hog_runs=0,
                 shutdown_amplified_runs=2, sigkill_cycles=3))


def pytest_collection_modifyitems(items):
    """Give every test marked `slow` a time limit that fits its size."""
    for item in items:
        if item.get_closest_marker('slow') is not None:
            item.add_marker(pytest.mark.timeout(SIZING.slow_timeout_s))


@pytest.fixture
def sizing() -> Sizing:
    """The sizes of this run (CI, or full with GDI_FULL_SIZE=1)."""
    return SIZING
