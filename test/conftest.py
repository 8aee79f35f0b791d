"""Shared fixtures: a real rclpy context per test, on a DDS domain of this test session's own."""

import os
import random

import pytest

# Concurrent test runs on one machine must not see each other's nodes and topics.
os.environ.setdefault('ROS_DOMAIN_ID', str(random.SystemRandom().randint(1, 100)))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')


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
