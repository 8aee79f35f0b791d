"""Humble's lifecycle transition behaviour, installed on whichever rclpy the tests run.

The behaviour reproduced is that of `LifecycleNodeMixin.__change_state` in rclpy 3.3.x, the
release in ROS 2 Humble (github.com/ros2/rclpy, branch `humble`, file
rclpy/rclpy/lifecycle/node.py; read at tag 3.3.15): the transition is started with
`trigger_transition_by_id` and an RCLError (a transition the current state does not allow)
is NOT caught, so it leaves the change_state service callback and the executor's spin. The
fix (rclpy #1319, which logs and returns ERROR) is in later releases only. Jazzy's 7.1.x
behaves as Humble does here; Kilted's 9.x catches the error.

Only this one method is replaced; the service callback and trigger_*() of the installed rclpy
call it through the mixin's private name, exactly as they call their own.
"""

from contextlib import contextmanager
from typing import Iterator

from rclpy.lifecycle import LifecycleNodeMixin, LifecycleState, TransitionCallbackReturn

ATTRIBUTE = '_LifecycleNodeMixin__change_state'


def _change_state_as_on_humble(node, transition_id: int) -> TransitionCallbackReturn:
    machine = node._state_machine
    state_id, label = machine.current_state
    previous = LifecycleState(state_id=state_id, label=label)
    machine.trigger_transition_by_id(transition_id, True)  # RCLError escapes, as on Humble
    run_callback = node._LifecycleNodeMixin__execute_callback
    result = run_callback(machine.current_state[0], previous)
    machine.trigger_transition_by_label(result.to_label(), True)
    if result == TransitionCallbackReturn.ERROR:
        after_error = run_callback(machine.current_state[0], previous)
        machine.trigger_transition_by_label(after_error.to_label(), True)
    return result


@contextmanager
def humble_change_state() -> Iterator[None]:
    """Within the block every lifecycle node in this process transitions as on Humble."""
    assert hasattr(LifecycleNodeMixin, ATTRIBUTE), (
        'this rclpy has no LifecycleNodeMixin.__change_state to replace')
    original = getattr(LifecycleNodeMixin, ATTRIBUTE)
    setattr(LifecycleNodeMixin, ATTRIBUTE, _change_state_as_on_humble)
    try:
        yield
    finally:
        setattr(LifecycleNodeMixin, ATTRIBUTE, original)
