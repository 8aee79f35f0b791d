"""Sizing of the long reliability tests, and the node fixtures every reliability module uses.

`make test` runs the cycling and soak tests at CI size (a few minutes for the whole suite on
a 2-core machine); `make reliability` sets GDI_FULL_SIZE=1 for the sizes the issue asks for.
"""

from dataclasses import dataclass
import itertools
import os

from artifacts import make_sealed_onnx
from node_harness import NodeHarness
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

    @property
    def slow_timeout_s(self) -> float:
        """Per-test time limit of a long test: the soak's duration plus start-up and checks."""
        return self.soak_frames / self.soak_rate_hz * 1.5 + 180.0


SIZING = (Sizing(True, lifecycle_cycles=200, soak_frames=10_000, soak_rate_hz=30.0,
                 soak_warmup_frames=600)
          if FULL_SIZE else
          Sizing(False, lifecycle_cycles=20, soak_frames=600, soak_rate_hz=30.0,
                 soak_warmup_frames=150))


def pytest_collection_modifyitems(items):
    """Give every test marked `slow` a time limit that fits its size."""
    for item in items:
        if item.get_closest_marker('slow') is not None:
            item.add_marker(pytest.mark.timeout(SIZING.slow_timeout_s))


@pytest.fixture
def sizing() -> Sizing:
    """The sizes of this run (CI, or full with GDI_FULL_SIZE=1)."""
    return SIZING


@pytest.fixture
def start(ros_context):
    """Start NodeHarness instances in this test's context; all are closed afterwards.

    Each node gets a name of its own: nodes of earlier tests' contexts linger in the ROS graph
    for a while, and a client can fail to reach a service whose name a lingering node shares.
    """
    harnesses = []

    def start_node(parameters, **kwargs):
        kwargs.setdefault('node_name', f'inference_{next(_NODE_NUMBERS)}')
        harness = NodeHarness(ros_context, parameters, **kwargs)
        harnesses.append(harness)
        return harness
    yield start_node
    for harness in harnesses:
        harness.close()


@pytest.fixture
def model(tmp_path):
    """The tiny sealed `image` -> `doubled` model (16 x 16)."""
    return make_sealed_onnx(tmp_path, 'tiny.onnx', height=16, width=16)
