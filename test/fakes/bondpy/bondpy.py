"""A fake of bondpy's Bond (bond_core's ros2 branch, bondpy/bondpy/bondpy.py; 4.x on Humble).

It keeps the real class's contract without bond_core's messages (not on PyPI): the
constructor's (node, topic, bond_id, on_broken, on_formed), the timeout and period setters
that refuse a started bond, start(), an idempotent shutdown() that fails on a bond never
started (the real one has no subscription to destroy then), and is_broken(). Every instance
is recorded in BONDS for the tests to inspect.
"""

from typing import Any, Callable, List, Optional

BONDS: List['Bond'] = []


class _Subscription:
    def destroy(self) -> None:
        pass


class Bond:
    """Records what the code under test does with a bond."""

    def __init__(self, node: Any, topic: str, bond_id: str,
                 on_broken: Optional[Callable[[], None]] = None,
                 on_formed: Optional[Callable[[], None]] = None) -> None:
        self.node = node
        self.topic = topic
        self.id = bond_id
        self.on_broken = on_broken
        self.on_formed = on_formed
        self.started = False
        self.is_shutdown = False
        self._heartbeat_period = 1.0
        self._heartbeat_timeout = 4.0
        self._connect_timeout = 10.0
        self._disconnect_timeout = 2.0
        BONDS.append(self)

    def _setter(name: str) -> property:  # noqa: N805 - builds the class's properties
        def get(self: 'Bond') -> float:
            return getattr(self, name)

        def set_(self: 'Bond', value: float) -> None:
            assert not self.started, 'bondpy refuses to change a started bond'
            setattr(self, name, value)
        return property(get, set_)

    heartbeat_period = _setter('_heartbeat_period')
    heartbeat_timeout = _setter('_heartbeat_timeout')
    connect_timeout = _setter('_connect_timeout')
    disconnect_timeout = _setter('_disconnect_timeout')
    del _setter

    def start(self) -> None:
        """Connect to the sister (here: only recorded)."""
        self.sub = _Subscription()
        self.started = True

    def shutdown(self) -> None:
        """Break the bond; a second call does nothing, as in bondpy."""
        if not self.is_shutdown:
            self.sub.destroy()  # AttributeError before start(), as in bondpy
            self.is_shutdown = True

    def is_broken(self) -> bool:
        """True once shut down."""
        return self.is_shutdown
