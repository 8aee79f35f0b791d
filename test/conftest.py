"""Shared fixtures: a real rclpy context per test, on a DDS domain of this test session's own."""

import gc
import itertools
import os
import random

import pytest

# Concurrent test runs on one machine must not see each other's nodes and topics.
os.environ.setdefault('ROS_DOMAIN_ID', str(random.SystemRandom().randint(1, 100)))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')


@pytest.fixture(scope='session', autouse=os.environ.get('GDI_HUMBLE_LIFECYCLE') == '1')
def humble_lifecycle_everywhere():
    """`make test-humble` (GDI_HUMBLE_LIFECYCLE=1): the whole suite transitions as on Humble."""
    from humble_lifecycle import humble_change_state

    with humble_change_state():
        yield


@pytest.fixture
def humble_lifecycle():
    """This test's lifecycle nodes transition as on Humble (test/humble_lifecycle.py)."""
    from humble_lifecycle import humble_change_state

    with humble_change_state():
        yield


@pytest.fixture(autouse=True)
def _finalize_ros_contexts(request):
    """Collect this test's contexts once torn down, so their DDS participants end now.

    A context's participant lives until the Context object is collected, and reference cycles
    keep them for many tests; with several participants in one process, Fast DDS 2.x (2.6 on
    Humble, 2.14 in the Jazzy wheels) can deadlock destroying a writer (eProsima/Fast-DDS
    #6502: intraprocess discovery delivery between participants), hanging the whole run.
    """
    yield
    if 'ros_context' in request.fixturenames:
        gc.collect()


@pytest.fixture
def ros_context():
    """A fresh, initialised rclpy context, shut down after the test."""
    import rclpy
    from rclpy.context import Context

    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        if context.ok():
            rclpy.shutdown(context=context)


_NODE_NUMBERS = itertools.count()


@pytest.fixture
def start(ros_context):
    """Start NodeHarness instances in this test's context; all are closed afterwards.

    Each node gets a name of its own: nodes of earlier tests' contexts linger in the ROS graph
    for a while, and a client can fail to reach a service whose name a lingering node shares.
    """
    from node_harness import NodeHarness

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
    """A tiny sealed ONNX Runtime model: `image` [1, 1, 16, 16] -> `doubled`."""
    from sealed_models import make_sealed_onnx

    return make_sealed_onnx(tmp_path, 'tiny.onnx', height=16, width=16)
