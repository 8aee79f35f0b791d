"""An rclpy executor spun on a background thread that is joined before the executor shuts down.

rclpy's `Executor.shutdown()` destroys the guard condition a spinning thread waits on
without waiting for that thread to leave the wait (Humble waits only for callbacks in
progress; rclpy 7.1 skips even that), so `spin()` on one thread and `shutdown()` from
another race: the spinning thread dies with an AttributeError on the destroyed guard
condition. Here the thread spins in short `spin_once` steps until told to stop, and `stop()`
joins it before shutting the executor down, so no thread is inside the executor when it goes.
"""

import threading
from typing import Any

from rclpy.executors import Executor, ExternalShutdownException, ShutdownException

STEP_S = 0.05


class SpinThread:
    """Spin `executor` on a daemon thread; `stop()` (or leaving the `with`) ends it cleanly."""

    def __init__(self, executor: Executor, name: str = 'spin') -> None:
        self.executor = executor
        self._spinning = threading.Event()
        self._thread = threading.Thread(target=self._spin, name=name, daemon=True)

    def start(self) -> 'SpinThread':
        """Start spinning; returns self."""
        self._spinning.set()
        self._thread.start()
        return self

    def _spin(self) -> None:
        try:
            while self._spinning.is_set() and self.executor.context.ok():
                self.executor.spin_once(timeout_sec=STEP_S)
        except (ExternalShutdownException, ShutdownException):
            return  # the context or the executor was shut down elsewhere: nothing to spin

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop spinning, join the thread, then shut the executor down.

        Returns False when the thread is still inside a callback after `timeout_s`; the
        executor is then left running rather than destroyed under that callback.
        """
        self._spinning.clear()
        if self._thread.ident is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                return False
        self.executor.shutdown()
        return True

    def __enter__(self) -> 'SpinThread':
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
