"""Fake pycuda.driver (PyCUDA 2024.1.2): contexts per thread, device memory as bytearrays.

Every public member of every class here must exist on the same class of the real PyCUDA
2024.1.2, with the same argument names (test/runtimes/test_tensorrt_api.py); helpers are
private.
"""

import enum
import threading as _threading

import numpy as np

from fakes import gpu as _gpu


class Error(Exception):
    """Base of PyCUDA's driver errors."""


class LogicError(Error):
    """What PyCUDA raises for an invalid context, handle or argument."""


def init(flags=0):
    _gpu.active().record('cuda.init')


def get_driver_version():
    """cuDriverGetVersion: no context needed."""
    return _gpu.active().driver_version


def get_version():
    """The CUDA version PyCUDA was compiled against, (major, minor, 0)."""
    return _gpu.active().cuda_version


def mem_get_info():
    """(free, total) device bytes; cuMemGetInfo needs a current context."""
    gpu = _gpu.active()
    gpu.record('cuda.mem_get_info')
    gpu.require_context('cuMemGetInfo')
    used = sum(max(len(block), 1) for block in gpu.memory.values())
    return gpu.total_bytes - used, gpu.total_bytes


class Context:
    """A retained reference to the device's primary context, with PyCUDA's real rules.

    As in PyCUDA 2024.1.2 (src/cpp/cuda.hpp, class context / primary_context): `push`
    switches the driver's current context and records it on PyCUDA's per-thread stack; `pop`
    pops the driver only while PyCUDA's stack is non-empty. `detach` releases the retain
    (cuDevicePrimaryCtxRelease, which never pops the driver stack) only when this context is
    PyCUDA-current on the calling thread, or when called on the thread that retained it
    (then it pushes the context first and leaves it current); on any other thread it does
    nothing and the retain leaks. A second detach raises.
    """

    def __init__(self, device):
        self._device = device
        self._thread = _threading.get_ident()
        self._valid = True

    def push(self):
        gpu = _gpu.active()
        gpu.record('Context.push')
        if not self._valid:
            raise LogicError('cuCtxPushCurrent failed: invalid context')
        if gpu.pycuda_stack():
            gpu.stack().pop()
        gpu.stack().append(self)
        gpu.pycuda_stack().append(self)

    @staticmethod
    def pop():
        gpu = _gpu.active()
        gpu.record('Context.pop')
        stack = gpu.pycuda_stack()
        if stack and gpu.stack():
            gpu.stack().pop()
        if not stack:
            raise LogicError('context::pop failed: cannot pop non-current context')
        stack.pop()
        current = Context._current()
        if current is not None:
            gpu.stack().append(current)

    def detach(self):
        gpu = _gpu.active()
        gpu.record('Context.detach')
        if not self._valid:
            raise LogicError('context::detach failed: cannot detach from invalid context')
        active = Context._current() is self
        if active:
            gpu.retained -= 1
        elif self._thread == _threading.get_ident():
            gpu.stack().append(self)
            gpu.retained -= 1
        else:
            gpu.leaked_detaches += 1
        self._valid = False
        if active:
            current = Context._current()
            if current is not None:
                gpu.stack().append(current)

    @staticmethod
    def _current():
        stack = _gpu.active().pycuda_stack()
        while stack and not stack[-1]._valid:
            stack.pop()
        return stack[-1] if stack else None


class Device:
    """One CUDA device."""

    def __init__(self, number):
        _gpu.active().record('cuda.Device', number)
        if number != 0:
            raise LogicError(f'cuDeviceGet failed: invalid device ordinal {number}')

    def name(self):
        return _gpu.active().name

    def compute_capability(self):
        return _gpu.active().capability

    def retain_primary_context(self):
        _gpu.active().record('Device.retain_primary_context')
        _gpu.active().retained += 1
        return Context(self)


class event_flags(enum.IntEnum):  # noqa: N801 - PyCUDA's name
    DEFAULT = 0
    BLOCKING_SYNC = 1
    DISABLE_TIMING = 2
    INTERPROCESS = 4


class Event:
    """A CUDA event; recorded work completes at once in the fake."""

    def __init__(self, flags=0):
        _gpu.active().record('cuda.Event', int(flags))
        _gpu.active().require_context('cuEventCreate')
        self._flags = int(flags)

    def record(self, stream=None):
        _check_stream(stream)
        _gpu.active().record('Event.record')
        _gpu.active().require_context('cuEventRecord')
        return self

    def synchronize(self):
        if _gpu.active().record('Event.synchronize', self._flags) is _gpu.SOFT:
            return self
        _gpu.active().require_context('cuEventSynchronize')
        return self


class Stream:
    """A CUDA stream; copies and launches on it complete at once in the fake."""

    _count = 0

    def __init__(self, flags=0):
        _gpu.active().record('cuda.Stream', int(flags))
        _gpu.active().require_context('cuStreamCreate')
        Stream._count += 1
        self._handle = 0x5000 + Stream._count

    @property
    def handle(self):
        return self._handle

    def synchronize(self):
        if _gpu.active().record('Stream.synchronize') is _gpu.SOFT:
            return
        _gpu.active().require_context('cuStreamSynchronize')


class DeviceAllocation:
    """Device memory; int() is its address."""

    def __init__(self, address, nbytes):
        self._address = address
        self._nbytes = nbytes

    def __int__(self):
        return self._address

    def free(self):
        _gpu.active().record('DeviceAllocation.free', self._address)
        _gpu.active().require_context('cuMemFree')
        if self._address not in _gpu.active().memory:
            raise LogicError('cuMemFree failed: invalid handle (already freed)')
        del _gpu.active().memory[self._address]


def mem_alloc(nbytes, /):
    _gpu.active().record('cuda.mem_alloc', nbytes)
    _gpu.active().require_context('cuMemAlloc')
    if nbytes <= 0:
        raise LogicError('cuMemAlloc failed: invalid argument')
    return DeviceAllocation(_gpu.active().allocate(nbytes), nbytes)


def pagelocked_empty(shape, dtype, order='C', mem_flags=0):
    _gpu.active().record('cuda.pagelocked_empty', shape, np.dtype(dtype).name)
    _gpu.active().require_context('cuMemHostAlloc')
    array = np.empty(shape, dtype=dtype, order=order)
    _gpu.active().pinned.append(array)
    return array


def _address(target):
    return int(target)


def memcpy_htod(dest, src):
    _gpu.active().record('cuda.memcpy_htod', _address(dest))
    _copy_in(dest, src, 'cuMemcpyHtoD')


def memcpy_htod_async(dest, src, stream=None):
    _check_stream(stream)
    _gpu.active().record('cuda.memcpy_htod_async', _address(dest))
    _copy_in(dest, src, 'cuMemcpyHtoDAsync')


def memcpy_dtoh_async(dest, src, stream=None):
    _check_stream(stream)
    _gpu.active().record('cuda.memcpy_dtoh_async', _address(src))
    _gpu.active().require_context('cuMemcpyDtoHAsync')
    block, offset = _gpu.active().find(_address(src))
    view = _contiguous(dest, writable=True)
    if offset + view.nbytes > len(block):
        raise LogicError('cuMemcpyDtoHAsync failed: copy past the end of the allocation')
    view.reshape(-1).view(np.uint8)[:] = np.frombuffer(
        bytes(block[offset:offset + view.nbytes]), dtype=np.uint8)


def memcpy_dtod_async(dest, src, size, stream=None):
    _check_stream(stream)
    gpu = _gpu.active()
    gpu.record('cuda.memcpy_dtod_async', _address(dest), _address(src), size)
    gpu.require_context('cuMemcpyDtoDAsync')
    source, offset = gpu.find(_address(src))
    target, target_offset = gpu.find(_address(dest))
    if offset + size > len(source) or target_offset + size > len(target):
        raise LogicError('cuMemcpyDtoDAsync failed: copy past the end of an allocation')
    target[target_offset:target_offset + size] = bytes(source[offset:offset + size])


def _check_stream(stream):
    """Like PYCUDA_PARSE_STREAM_PY: None (stream 0) or a Stream, nothing else."""
    if stream is not None and not isinstance(stream, Stream):
        raise TypeError(f'stream must be a pycuda.driver.Stream or None, got '
                        f'{type(stream).__name__}')


def _contiguous(array, writable=False):
    """Like PyCUDA's buffer request (PyBUF_ANY_CONTIGUOUS): no copy is made for you."""
    view = memoryview(array)
    if not (view.c_contiguous or view.f_contiguous):
        raise BufferError('ndarray is not contiguous')
    if writable and view.readonly:
        raise BufferError('buffer is not writable')
    return np.asarray(array)


def _copy_in(dest, src, operation):
    _gpu.active().require_context(operation)
    block, offset = _gpu.active().find(_address(dest))
    data = _contiguous(src).tobytes()
    if offset + len(data) > len(block):
        raise LogicError(f'{operation} failed: copy past the end of the allocation')
    block[offset:offset + len(data)] = data
