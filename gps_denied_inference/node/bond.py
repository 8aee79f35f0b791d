"""The heartbeat bond nav2's lifecycle manager expects from the nodes it brings up.

After activating a node, nav2_lifecycle_manager waits up to `bond_timeout` (4 s by default)
for a bond_core heartbeat on topic `bond` with the node's name as its id, and aborts the
bring-up without one. bondpy provides it (ROS package ros-<distro>-bondpy, declared in
package.xml); where it is not installed (pip-only environments) the node runs without a bond,
and the manager needs `bond_timeout: 0.0`.
The bond lives from activate to deactivate, as on nav2's own servers.
"""

import importlib
from typing import Any, Callable, Optional

BOND_TOPIC = 'bond'
# nav2's servers beat every 0.1 s and tolerate 4 s of silence from the manager.
HEARTBEAT_PERIOD_S = 0.1
HEARTBEAT_TIMEOUT_S = 4.0


def bondpy_bond_class() -> Optional[Callable[..., Any]]:
    """The Bond class of bondpy, or None where bondpy is not installed."""
    try:
        return importlib.import_module('bondpy.bondpy').Bond
    except ImportError:
        return None


class LifecycleBond:
    """One bond per activation of `node`: formed on start(), broken on stop() (idempotent)."""

    def __init__(self, node: Any) -> None:
        self._node = node
        self._bond: Any = None
        self._reported_missing = False

    @property
    def active(self) -> bool:
        """Whether a bond is running now."""
        return self._bond is not None

    def start(self) -> None:
        """Start a bond with the node's name as its id; log once when bondpy is missing."""
        if self._bond is not None:
            return
        bond_class = bondpy_bond_class()
        if bond_class is None:
            if not self._reported_missing:
                self._node.get_logger().info(
                    'bondpy is not installed: no bond with a lifecycle manager (nav2 '
                    'lifecycle managers of this node need bond_timeout: 0.0)')
                self._reported_missing = True
            return
        bond = bond_class(self._node, BOND_TOPIC, self._node.get_name())
        bond.heartbeat_period = HEARTBEAT_PERIOD_S
        bond.heartbeat_timeout = HEARTBEAT_TIMEOUT_S
        bond.start()
        self._bond = bond

    def stop(self) -> None:
        """Break the bond (the manager then sees this node go down deliberately)."""
        bond, self._bond = self._bond, None
        if bond is not None:
            bond.shutdown()
