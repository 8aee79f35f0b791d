"""A SpinThread runs callbacks until stopped and never leaves a thread inside a shut executor."""

import threading
import time

import pytest
import rclpy
from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node

from gps_denied_inference.spin_thread import SpinThread

WAIT_S = 10.0
# An exception that ends any thread during a test fails that test.
pytestmark = pytest.mark.filterwarnings('error::pytest.PytestUnhandledThreadExceptionWarning')


def _timer_node(context, name, period_s=0.01):
    """A node whose timer sets an event on each call; returns (node, fired event)."""
    node = rclpy.create_node(name, context=context)
    fired = threading.Event()
    node.create_timer(period_s, fired.set)
    return node, fired


@pytest.mark.parametrize('executor_type', [SingleThreadedExecutor, MultiThreadedExecutor])
def test_callbacks_run_while_spinning_and_stop_after_stop(ros_context, executor_type):
    node, fired = _timer_node(ros_context, 'spin_thread_timer')
    executor = executor_type(context=ros_context)
    executor.add_node(node)
    try:
        spinner = SpinThread(executor, 'probe-spin').start()
        assert fired.wait(WAIT_S)
        assert spinner.stop()
        assert not any(t.name == 'probe-spin' for t in threading.enumerate())
        fired.clear()
        assert not fired.wait(0.2)
    finally:
        node.destroy_node()


class _SlowToListGuards(Node):
    """A node that takes 50 ms to list its guard conditions, and says when it starts to.

    The executor lists them while it builds its wait set, so this holds the spinning thread
    inside the executor, after its shutdown check, for as long as a test needs.
    """

    def __init__(self, *args, **kwargs):
        self.listing = threading.Event()
        super().__init__(*args, **kwargs)

    @property
    def guards(self):
        self.listing.set()
        time.sleep(0.05)
        return super().guards


def test_stop_while_the_thread_builds_its_wait_set_ends_it_without_an_exception(
        ros_context):
    # With spin() on a thread and executor.shutdown() here, a thread that was building its
    # wait set goes on to use the guard condition shutdown() destroyed: AttributeError on
    # rclpy 7.1 (the drone-like stack), every cycle here.
    node = _SlowToListGuards('spin_thread_slow_guards', context=ros_context)
    node.create_timer(0.001, lambda: None)
    try:
        for cycle in range(3):
            executor = SingleThreadedExecutor(context=ros_context)
            executor.add_node(node)
            node.listing.clear()
            spinner = SpinThread(executor, f'cycle-{cycle}').start()
            assert node.listing.wait(WAIT_S)  # the first listing of a turn builds the wait set
            assert spinner.stop()
    finally:
        node.destroy_node()


def test_a_callback_that_outlasts_the_timeout_keeps_the_executor_until_it_returns(
        ros_context):
    node = rclpy.create_node('spin_thread_stuck', context=ros_context)
    entered, release = threading.Event(), threading.Event()

    def stuck():
        entered.set()
        release.wait(WAIT_S)
    timer = node.create_timer(0.01, stuck)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    try:
        spinner = SpinThread(executor).start()
        assert entered.wait(WAIT_S)
        assert spinner.stop(timeout_s=0.2) is False
        timer.cancel()
        release.set()
        assert spinner.stop()
    finally:
        release.set()
        node.destroy_node()


def test_a_context_shut_down_elsewhere_ends_the_thread(ros_context):
    node, fired = _timer_node(ros_context, 'spin_thread_context')
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    spinner = SpinThread(executor, 'context-spin').start()
    assert fired.wait(WAIT_S)
    node.destroy_node()
    rclpy.shutdown(context=ros_context)
    assert spinner.stop()


def test_stop_without_start_shuts_the_executor_down(ros_context):
    node, fired = _timer_node(ros_context, 'spin_thread_unstarted')
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    try:
        assert SpinThread(executor).stop()
        assert executor.get_nodes() == []
    finally:
        node.destroy_node()
