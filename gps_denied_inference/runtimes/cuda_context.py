"""TensorRT and PyCUDA, imported only when a method needs them, and the device's primary context.

PyCUDA's `autoinit` creates a fresh context current on the importing thread only; a ROS
executor calls back on other threads, where every CUDA call then fails with "invalid device
context". Instead the device's primary context (the one the CUDA runtime, and so TensorRT,
uses) is retained once per engine and pushed onto the calling thread around every sequence
of CUDA calls, and popped in `finally`, so any thread may call and none keeps it current.
How the retain is given back is PrimaryContext's docstring.
"""

from contextlib import contextmanager
import threading
from typing import Any, Callable, Iterator, List, Optional, Tuple
import weakref

from gps_denied_inference.errors import RuntimeUnavailableError


def import_tensorrt() -> Any:
    """The tensorrt module, or RuntimeUnavailableError saying it is missing."""
    try:
        import tensorrt as trt
    except ImportError as err:
        raise RuntimeUnavailableError(
            'TensorRT is not installed: the Python module "tensorrt" cannot be imported '
            f'({err}); on JetPack install python3-libnvinfer') from err
    return trt


def import_cuda_driver() -> Any:
    """The pycuda.driver module, or RuntimeUnavailableError saying it is missing."""
    try:
        import pycuda.driver as cuda
    except ImportError as err:
        raise RuntimeUnavailableError(
            'PyCUDA is not installed: the Python module "pycuda.driver" cannot be imported '
            f'({err}); install it with pip install pycuda') from err
    return cuda


_PLUGINS_LOCK = threading.Lock()
_PLUGINS_REGISTERED: 'weakref.WeakSet[Any]' = weakref.WeakSet()
_PLUGIN_LOGGERS: List[Any] = []


def register_tensorrt_plugins(trt: Any) -> None:
    """Register TensorRT's standard plugins once per process (Polygraphy and trtexec do too).

    Without it a model that needs a plugin fails to parse, and an engine that embeds one
    fails to deserialize. The plugin library keeps the logger it is given, so that logger is
    kept alive for the life of the process.
    """
    with _PLUGINS_LOCK:
        if trt in _PLUGINS_REGISTERED:
            return
        logger = trt.Logger(trt.Logger.WARNING)
        if not trt.init_libnvinfer_plugins(logger, ''):
            raise RuntimeUnavailableError('TensorRT could not register its standard plugins '
                                          '(init_libnvinfer_plugins returned False; is '
                                          'libnvinfer_plugin installed?)')
        _PLUGIN_LOGGERS.append(logger)
        _PLUGINS_REGISTERED.add(trt)


_RETAINS_LOCK = threading.Lock()
_OUTSTANDING_RETAINS = 0


def outstanding_retains() -> int:
    """Primary-context retains this process made through PrimaryContext and not yet released.

    The driver's own reference count is not readable through PyCUDA; this is the part of it
    this package owns, so a self-test can check that N load/release cycles leave it at zero.
    """
    with _RETAINS_LOCK:
        return _OUTSTANDING_RETAINS


def _count_retain(delta: int) -> None:
    global _OUTSTANDING_RETAINS
    with _RETAINS_LOCK:
        _OUTSTANDING_RETAINS += delta


class PrimaryContext:
    """One retained reference to a device's primary context, owned by a thread of its own.

    PyCUDA's `Context.detach()` on a primary context only releases on the thread that
    retained it (elsewhere the retain silently leaks), and there it pushes the context and
    calls cuDevicePrimaryCtxRelease, which never pops, so the context stays current on that
    thread (pycuda 2024.1.2, cuda.hpp). So the retain and the release both happen on one
    short-lived owner thread, which then ends, and with it the only place the context was
    left current. `detach` may be called from any thread, any number of times, concurrently:
    it releases exactly once and returns when the release is done. Callers use the context
    through `current()`, which pushes it on the calling thread and pops it afterwards.
    """

    def __init__(self, cuda: Any, device_index: int = 0) -> None:
        self._cuda = cuda
        self._state = threading.Condition()
        self._users = 0
        self._released = False
        self._context: Any = None
        self.device: Any = None
        self._failure: Optional[BaseException] = None
        self._retained = threading.Event()
        self._release_requested = threading.Event()
        self._owner = threading.Thread(target=self._own, args=(device_index,),
                                       name=f'cuda-primary-context-{device_index}',
                                       daemon=True)
        self._owner.start()
        self._retained.wait()
        if self._failure is not None:
            self._owner.join()
            raise self._failure

    def _own(self, device_index: int) -> None:
        """The owner thread: retain, wait for the release request, release, end."""
        cuda = self._cuda
        try:
            cuda.init()
            device = cuda.Device(device_index)
            context = device.retain_primary_context()
        except BaseException as err:  # noqa: B902 - handed to the constructor's caller
            self._failure = err
            self._retained.set()
            return
        self.device, self._context = device, context
        _count_retain(1)
        self._retained.set()
        self._release_requested.wait()
        try:
            context.detach()
        except BaseException as err:  # noqa: B902 - handed to detach's caller
            self._failure = err
        finally:
            _count_retain(-1)

    @property
    def is_detached(self) -> bool:
        """True once detach() has been called."""
        with self._state:
            return self._released

    @contextmanager
    def current(self) -> Iterator[None]:
        """Make the primary context current on this thread for the block, then pop it."""
        with self._state:
            if self._released:
                raise RuntimeUnavailableError('the CUDA primary context was already released')
            self._users += 1
        cuda = self._cuda
        try:
            self._context.push()
            try:
                yield
            finally:
                cuda.Context.pop()
        finally:
            with self._state:
                self._users -= 1
                self._state.notify_all()

    def describe(self) -> Tuple[str, str]:
        """(device name, 'major.minor' compute capability) from the driver."""
        major, minor = self.device.compute_capability()
        return str(self.device.name()), f'{major}.{minor}'

    def detach(self) -> None:
        """Release the retain once (on the owner thread), after any block in `current()`.

        Must not be called from inside this object's `current()` block (it would wait for
        itself). Raises RuntimeUnavailableError if the driver refused the release.
        """
        with self._state:
            first = not self._released
            self._released = True
            while self._users:
                self._state.wait()
        self._release_requested.set()
        self._owner.join()
        if first and self._failure is not None:
            raise RuntimeUnavailableError(
                f'releasing the CUDA primary context failed: {type(self._failure).__name__}: '
                f'{self._failure}') from self._failure


def mem_available_bytes(meminfo: str = '/proc/meminfo') -> Optional[int]:
    """MemAvailable from /proc/meminfo in bytes, or None where it cannot be read."""
    try:
        with open(meminfo, encoding='ascii', errors='replace') as stream:
            for line in stream:
                if line.startswith('MemAvailable:'):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def measure_context_overhead(cuda: Any, device_index: int = 0,
                             available: Callable[[], Optional[int]] = mem_available_bytes
                             ) -> Optional[int]:
    """Host memory the primary context takes on a Jetson (one DRAM), or None if unknown.

    Meaningful only as the first context of the process, on a unified-memory device with
    nothing else starting meanwhile; a self-test runs it before loading any engine to choose
    the `cuda_context_overhead_bytes` parameter. The context is released before returning.
    """
    before = available()
    primary = PrimaryContext(cuda, device_index)
    try:
        with primary.current():
            after = available()
    finally:
        primary.detach()
    if before is None or after is None:
        return None
    return max(before - after, 0)
