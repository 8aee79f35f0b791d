"""TensorRT and PyCUDA, imported only when a method needs them, and the device's primary context.

PyCUDA's `autoinit` creates a fresh context current on the importing thread only; a ROS
executor calls back on other threads, where every CUDA call then fails with "invalid device
context". Instead the device's primary context (the one the CUDA runtime, and so TensorRT,
uses) is retained once and pushed onto the calling thread around every sequence of CUDA
calls, and popped in `finally`, so any thread may call and none keeps it current.
"""

from contextlib import contextmanager
import threading
from typing import Any, Iterator, Tuple

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


class PrimaryContext:
    """One retained reference to a device's primary context; `detach` gives it back once."""

    def __init__(self, cuda: Any, device_index: int = 0) -> None:
        self._cuda = cuda
        self._lock = threading.Lock()
        cuda.init()
        self.device = cuda.Device(device_index)
        self._context: Any = self.device.retain_primary_context()

    @property
    def is_detached(self) -> bool:
        """True once detach() has run."""
        return self._context is None

    @contextmanager
    def current(self) -> Iterator[None]:
        """Make the primary context current on this thread for the block, then pop it."""
        cuda, context = self._cuda, self._context
        if context is None:
            raise RuntimeUnavailableError('the CUDA primary context was already released')
        context.push()
        try:
            yield
        finally:
            cuda.Context.pop()

    def describe(self) -> Tuple[str, str]:
        """(device name, 'major.minor' compute capability) from the driver."""
        major, minor = self.device.compute_capability()
        return str(self.device.name()), f'{major}.{minor}'

    def detach(self) -> None:
        """Give back the retained primary context; later calls do nothing."""
        with self._lock:
            context, self._context = self._context, None
        if context is not None:
            context.detach()
