"""Drive a lifecycle node through its real services, as a lifecycle manager would.

Used by the demo, the benchmark and the tests; it needs an executor spinning the client node
on another thread (calls block on futures, not on spinning).
"""

import threading
import time
from typing import Optional

from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.node import Node

TRANSITIONS = {
    'configure': Transition.TRANSITION_CONFIGURE,
    'activate': Transition.TRANSITION_ACTIVATE,
    'deactivate': Transition.TRANSITION_DEACTIVATE,
    'cleanup': Transition.TRANSITION_CLEANUP,
}
PROBE_TIMEOUT_S = 1.0
SHUTDOWN_FROM = {
    'unconfigured': Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
    'inactive': Transition.TRANSITION_INACTIVE_SHUTDOWN,
    'active': Transition.TRANSITION_ACTIVE_SHUTDOWN,
}


class LifecycleClient:
    """`change('configure')`, `state()` against `<target>/change_state` and `get_state`."""

    def __init__(self, node: Node, target: str) -> None:
        self._change = node.create_client(ChangeState, f'{target}/change_state')
        self._get = node.create_client(GetState, f'{target}/get_state')

    def wait_for_services(self, timeout_s: float) -> bool:
        """True once both services are discovered and the node has answered a request.

        Discovery is not enough: a client sees the server before the server sees the client's
        response reader, and Fast DDS then drops the response ('client will not receive
        response'), so a first `change` would wait out its whole timeout on a busy machine.
        A `get_state` round trip proves the node can answer this client.
        """
        deadline = time.monotonic() + timeout_s
        if not (self._change.wait_for_service(timeout_sec=timeout_s)
                and self._get.wait_for_service(timeout_sec=max(0.0, deadline - time.monotonic()))):
            return False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0.0:
                return False
            if self.state(min(PROBE_TIMEOUT_S, remaining)) is not None:
                return True

    def change(self, transition: str, timeout_s: float = 60.0) -> bool:
        """Request a transition by label; True when the node reports success.

        'shutdown' picks the shutdown transition of the node's current primary state.
        """
        request = ChangeState.Request()
        if transition == 'shutdown':
            state = self.state(timeout_s)
            if state not in SHUTDOWN_FROM:
                return False
            request.transition.id = SHUTDOWN_FROM[state]
        else:
            request.transition.id = TRANSITIONS[transition]
        response = self._call(self._change, request, timeout_s)
        return bool(response is not None and response.success)

    def state(self, timeout_s: float = 10.0) -> Optional[str]:
        """The node's current state label ('unconfigured', 'inactive', ...), None on timeout."""
        response = self._call(self._get, GetState.Request(), timeout_s)
        return None if response is None else response.current_state.label

    @staticmethod
    def _call(client, request, timeout_s: float):
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(timeout_s):
            client.remove_pending_request(future)
            return None
        return future.result()
