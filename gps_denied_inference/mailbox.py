"""A one-slot mailbox: the newest frame wins; the caller counts every overwritten frame.

When the camera outruns the model, queueing would make latency grow without bound; a single
slot keeps latency at most one frame behind, and put() says when it overwrote a frame so the
drop is counted, never silent.
"""

import threading
from typing import Generic, Optional, TypeVar

T = TypeVar('T')


class FrameMailbox(Generic[T]):
    """Thread-safe single slot shared by one producer callback and one worker thread."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._item: Optional[T] = None
        self._closed = False

    def put(self, item: T) -> bool:
        """Store `item`; return True when it overwrote a frame nobody had taken (a drop)."""
        with self._condition:
            overwrote = self._item is not None
            self._item = item
            self._condition.notify()
            return overwrote

    def take(self, timeout_s: float) -> Optional[T]:
        """Return the newest frame, waiting up to timeout_s; None on timeout or when closed."""
        with self._condition:
            if self._item is None and not self._closed:
                self._condition.wait(timeout_s)
            item, self._item = self._item, None
            return None if self._closed else item

    def clear(self) -> bool:
        """Discard a pending frame; return True if there was one (the caller counts it)."""
        with self._condition:
            had = self._item is not None
            self._item = None
            return had

    def close(self) -> None:
        """Wake the worker and make every later take() return None."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def pending(self) -> bool:
        """True while a frame waits to be taken."""
        with self._condition:
            return self._item is not None

    @property
    def closed(self) -> bool:
        """True once close() ran."""
        return self._closed
