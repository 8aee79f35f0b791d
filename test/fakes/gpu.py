"""The shared state behind the fakes: call log, device memory, per-thread context stacks.

Like the real driver, the fakes refuse CUDA work on a thread where no context is current
("invalid device context"), so a runtime that forgets to push the primary context in a
callback thread fails here as it would on the drone. Two stacks per thread are kept apart,
as in reality: the CUDA driver's current-context stack (what CUDA calls see, and what dies
with the thread) and PyCUDA's own context stack (what `Context.pop` consults).
"""

from contextlib import contextmanager
from dataclasses import dataclass
import importlib.abc
import importlib.machinery
import importlib.util
from pathlib import Path
import sys
import threading
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

HERE = Path(__file__).resolve().parent
MODULE_FILES = {
    'tensorrt': HERE / 'tensorrt.py',
    'pycuda': HERE / 'pycuda' / '__init__.py',
    'pycuda.driver': HERE / 'pycuda' / 'driver.py',
    'polygraphy': HERE / 'polygraphy' / '__init__.py',
    'polygraphy.backend': HERE / 'polygraphy' / 'backend' / '__init__.py',
    'polygraphy.backend.trt': HERE / 'polygraphy' / 'backend' / 'trt.py',
}
PACKAGES = ('pycuda', 'polygraphy', 'polygraphy.backend')
SOFT = object()  # an injected failure that makes the fake return its failure value


class InjectedError(Exception):
    """Stands in for a third-party failure the code under test must rewrap."""


@dataclass
class Failure:
    """Fail the `after`-th next call of an event: raise `error`, or return failure if soft."""

    error: Optional[BaseException]
    after: int = 0


@dataclass(frozen=True)
class Call:
    """One recorded call: what, on which thread, with what."""

    event: str
    thread: str
    detail: Tuple[Any, ...]


class FakeGpu:
    """One fake device and the log of everything done to it."""

    def __init__(self, name: str = 'Orin (fake)', capability: Tuple[int, int] = (8, 7)) -> None:
        self.name = name
        self.capability = capability
        self.total_bytes = 8 << 30
        self.driver_version = 12060  # cuDriverGetVersion: 1000 * major + 10 * minor
        self.cuda_version = (12, 6, 0)  # the CUDA headers PyCUDA was built against
        self.calls: List[Call] = []
        self.failures: Dict[str, Failure] = {}
        self.memory: Dict[int, bytearray] = {}
        self.pinned: List[Any] = []
        self.retained = 0
        self.leaked_detaches = 0
        self.build_delay_s = 0.0
        self.plugins_registered = False  # per process, as libnvinfer_plugin's registry
        self.blocked: Set[str] = set()
        self._next_address = 0x7F0000000000
        self._lock = threading.Lock()
        self._stacks = threading.local()
        self._driver_stacks: Dict[int, Tuple[threading.Thread, List[Any]]] = {}

    # -- recording and failure injection ---------------------------------------------------
    def record(self, event: str, *detail: Any) -> Any:
        """Log the call; raise or return SOFT when a failure is injected for it."""
        with self._lock:
            self.calls.append(Call(event, threading.current_thread().name, detail))
            failure = self.failures.get(event)
            if failure is None:
                return None
            if failure.after > 0:
                failure.after -= 1
                return None
            del self.failures[event]
        if failure.error is not None:
            raise failure.error
        return SOFT

    def fail(self, event: str, error: Optional[BaseException] = None, *, after: int = 0,
             soft: bool = False) -> None:
        """Make the next (or `after`+1-th) `event` raise `error` (or fail softly)."""
        if not soft and error is None:
            error = InjectedError(f'{event} failed (injected)')
        self.failures[event] = Failure(None if soft else error, after)

    def events(self, *prefixes: str) -> List[str]:
        """Event names in order, only those starting with one of `prefixes` if given."""
        return [c.event for c in self.calls if not prefixes or c.event.startswith(prefixes)]

    def calls_of(self, event: str) -> List[Call]:
        """Every recorded call of one event."""
        return [c for c in self.calls if c.event == event]

    # -- contexts ------------------------------------------------------------------------------
    def stack(self) -> List[Any]:
        """This thread's CUDA driver current-context stack (top = current context)."""
        if not hasattr(self._stacks, 'driver'):
            self._stacks.driver = []
            with self._lock:
                self._driver_stacks[threading.get_ident()] = (threading.current_thread(),
                                                             self._stacks.driver)
        return self._stacks.driver

    def pycuda_stack(self) -> List[Any]:
        """This thread's PyCUDA context stack (boost thread_specific_ptr in the real one)."""
        if not hasattr(self._stacks, 'pycuda'):
            self._stacks.pycuda = []
        return self._stacks.pycuda

    def threads_with_a_current_context(self) -> List[str]:
        """Names of live threads on which the driver still has a context current.

        A thread's driver stack ends with the thread, as in CUDA, so ended threads count
        as clean.
        """
        with self._lock:
            return sorted(thread.name for thread, stack in self._driver_stacks.values()
                          if stack and thread.is_alive())

    def require_context(self, operation: str) -> None:
        """Raise like the driver when no context is current on this thread."""
        if not self.stack():
            from pycuda.driver import LogicError
            raise LogicError(f'{operation} failed: invalid device context')

    # -- memory --------------------------------------------------------------------------------
    def allocate(self, nbytes: int) -> int:
        """Reserve fake device memory; returns its address."""
        with self._lock:
            address = self._next_address
            self._next_address += max(nbytes, 1) + 256
            self.memory[address] = bytearray(nbytes)
            return address

    def find(self, address: int) -> Tuple[bytearray, int]:
        """The allocation holding `address` and the offset into it."""
        for base, block in self.memory.items():
            if base <= address < base + max(len(block), 1):
                return block, address - base
        from pycuda.driver import LogicError
        raise LogicError(f'address {address:#x} is not allocated device memory')

    @property
    def live_allocations(self) -> int:
        """Device allocations not freed."""
        return len(self.memory)


_ACTIVE: Optional[FakeGpu] = None


def active() -> FakeGpu:
    """The FakeGpu of the running test."""
    if _ACTIVE is None:
        raise RuntimeError('the GPU fakes are not installed (use fakes.gpu.installed())')
    return _ACTIVE


class _RecordingLoader(importlib.machinery.SourceFileLoader):
    def exec_module(self, module: Any) -> None:
        active().record(f'import {self.name}')
        super().exec_module(module)


class _FakeFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in MODULE_FILES:
            return None
        if fullname in active().blocked or fullname.split('.')[0] in active().blocked:
            raise ModuleNotFoundError(f'No module named {fullname!r}', name=fullname)
        file = MODULE_FILES[fullname]
        locations = [str(file.parent)] if fullname in PACKAGES else None
        return importlib.util.spec_from_file_location(
            fullname, file, loader=_RecordingLoader(fullname, str(file)),
            submodule_search_locations=locations)


@contextmanager
def installed(gpu: Optional[FakeGpu] = None) -> Iterator[FakeGpu]:
    """Route imports of tensorrt, pycuda and polygraphy to the fakes for the block."""
    global _ACTIVE
    saved_modules = {name: sys.modules.pop(name) for name in MODULE_FILES
                     if name in sys.modules}
    saved_path = list(sys.meta_path)
    _ACTIVE = gpu or FakeGpu()
    sys.meta_path.insert(0, _FakeFinder())
    try:
        yield _ACTIVE
    finally:
        sys.meta_path[:] = saved_path
        for name in MODULE_FILES:
            sys.modules.pop(name, None)
        sys.modules.update(saved_modules)
        _ACTIVE = None


def unload() -> None:
    """Forget the fake modules already imported, so the next import loads (and logs) again."""
    for name in MODULE_FILES:
        sys.modules.pop(name, None)


PLAN_HEADER_SIZE = 27


def plan_header(version: Tuple[int, int, int]) -> bytes:
    """The first bytes of a serialized TensorRT plan: magic b'ftrt', version at offset 24."""
    header = bytearray(27)
    header[:4] = b'ftrt'
    header[24:27] = bytes(version)
    return bytes(header)
