"""A one-slot mailbox: the newest frame wins; the caller counts every overwritten frame.

A single slot keeps latency at most one frame behind when the camera outruns the model, and
put() says when it overwrote a frame so the drop is counted. A put() to a taker already
waiting hands the frame over, waiting (GIL released) until it is taken: docs/design.md.
"""

import threading
from typing import Generic, Optional, TypeVar

T = TypeVar('T')


class FrameMailbox(Generic[T]):
    """Thread-safe single slot shared by one producer callback and one worker thread."""

    def __init__(self, handoff_timeout_s: float = 0.0) -> None:
        self._condition = threading.Condition()
        self._item: Optional[T] = None
        self._closed = False
        self._taker_waiting = False
        self._handoff_timeout_s = handoff_timeout_s

    def put(self, item: T) -> bool:
        """Store `item`; return True when it overwrote a frame nobody had taken (a drop).

        With a handoff timeout and a taker waiting, return once the taker has `item` (or a
        newer frame replaced it, or the timeout passed).
        """
        with self._condition:
            overwrote = self._item is not None
            self._item = item
            self._condition.notify_all()
            if self._taker_waiting and self._handoff_timeout_s > 0:
                self._condition.wait_for(lambda: self._item is not item,
                                         self._handoff_timeout_s)
            return overwrote

    def take(self, timeout_s: Optional[float]) -> Optional[T]:
        """Return the newest frame, or None on timeout or when closed.

        Waits up to timeout_s; with None, until a put() or close().
        """
        with self._condition:
            if self._item is None and not self._closed:
                self._taker_waiting = True
                try:
                    self._condition.wait(timeout_s)
                finally:
                    self._taker_waiting = False
            item, self._item = self._item, None
            if item is not None:
                self._condition.notify_all()
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
    def taker_waiting(self) -> bool:
        """True while a take() waits for a frame: a put() now hands its frame straight over."""
        with self._condition:
            return self._taker_waiting

    @property
    def closed(self) -> bool:
        """True once close() ran."""
        return self._closed
