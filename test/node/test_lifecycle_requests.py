"""Lifecycle requests the current state does not allow, with Humble's transition behaviour.

On Humble such a request used to end the node's process (test/humble_lifecycle.py); it must
be answered success=False, logged, and leave the node serving in its state.
"""

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from node_harness import as_overrides, model_parameters, wait_until
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.node import Node

from gps_denied_inference.node.lifecycle_node import InferenceNode


def test_the_emulation_kills_a_plain_lifecycle_node_as_humble_does(ros_context,
                                                                   humble_lifecycle):
    node = LifecycleNode('plain_lifecycle', context=ros_context)
    client_node = Node('plain_lifecycle_client', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(client_node)
    try:
        client = client_node.create_client(ChangeState, '/plain_lifecycle/change_state')
        assert client.wait_for_service(timeout_sec=10.0)
        request = ChangeState.Request()
        request.transition.id = Transition.TRANSITION_ACTIVATE
        future = client.call_async(request)
        with pytest.raises(_rclpy.RCLError):
            executor.spin_until_future_complete(future, timeout_sec=10.0)
        assert not future.done()
    finally:
        executor.shutdown()
        node.destroy_node()
        client_node.destroy_node()


def test_an_invalid_request_is_answered_false_and_the_node_keeps_serving(start, model,
                                                                         humble_lifecycle):
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(model))})
    assert not harness.lifecycle.change('activate', timeout_s=10.0)
    assert harness.lifecycle.state() == 'unconfigured'
    assert harness.lifecycle.change('configure')
    assert not harness.lifecycle.change('configure', timeout_s=10.0)
    assert harness.lifecycle.state() == 'inactive'
    assert harness.lifecycle.change('activate')
    assert harness.lifecycle.state() == 'active'


def test_a_manager_configuring_an_autostarted_node_is_refused_not_fatal(start, model,
                                                                        humble_lifecycle):
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(model)),
                     'autostart': True})
    assert wait_until(lambda: harness.lifecycle.state() == 'active', 30.0)
    assert not harness.lifecycle.change('configure', timeout_s=10.0)
    assert harness.lifecycle.state() == 'active'
    assert harness.lifecycle.change('deactivate')


def test_autostart_after_a_manager_configured_the_node_is_refused_not_fatal(
        ros_context, model, humble_lifecycle):
    node = InferenceNode('early_manager', context=ros_context, parameter_overrides=as_overrides(
        {'models': ['tiny'], **model_parameters('tiny', str(model)), 'autostart': True}))
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        for _ in range(3):  # the autostart timer fires; its configure is refused
            executor.spin_once(timeout_sec=0.2)
        assert node._state_machine.current_state[1] == 'inactive'
    finally:
        executor.shutdown()
        node.release_all()
        node.destroy_node()
