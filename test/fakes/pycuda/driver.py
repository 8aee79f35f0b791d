"""Fake pycuda.driver (PyCUDA 2024.1.2): contexts per thread, device memory as bytearrays.

Every public name defined here must exist in the real PyCUDA sources (checked by
test/test_tensorrt_api_names.py); helpers are private.
"""

import numpy as np

from fakes import gpu as _gpu


class Error(Exception):
    """Base of PyCUDA's driver errors."""


class LogicError(Error):
    """What PyCUDA raises for an invalid context, handle or argument."""


def init(flags=0):
    _gpu.active().record('cuda.init')


class Context:
    """A reference to the device's primary context."""

    def __init__(self, device):
        self._device = device
        self._detached = False

    def push(self):
        _gpu.active().record('Context.push')
        if self._detached:
            raise LogicError('cuCtxPushCurrent failed: invalid context')
        _gpu.active().stack().append(self)

    @staticmethod
    def pop():
        _gpu.active().record('Context.pop')
        stack = _gpu.active().stack()
        if not stack:
            raise LogicError('cuCtxPopCurrent failed: invalid context')
        stack.pop()

    def detach(self):
        _gpu.active().record('Context.detach')
        if self._detached:
            raise LogicError('cuDevicePrimaryCtxRelease failed: context already detached')
        self._detached = True
        _gpu.active().retained -= 1


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


class Stream:
    """A CUDA stream; copies and launches on it complete at once in the fake."""

    _count = 0

    def __init__(self, flags=0):
        _gpu.active().record('cuda.Stream')
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


def mem_alloc(nbytes):
    _gpu.active().record('cuda.mem_alloc', nbytes)
    _gpu.active().require_context('cuMemAlloc')
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
    _gpu.active().record('cuda.memcpy_htod_async', _address(dest))
    _copy_in(dest, src, 'cuMemcpyHtoDAsync')


def memcpy_dtoh_async(dest, src, stream=None):
    _gpu.active().record('cuda.memcpy_dtoh_async', _address(src))
    _gpu.active().require_context('cuMemcpyDtoHAsync')
    block, offset = _gpu.active().find(_address(src))
    view = np.asarray(dest)
    if offset + view.nbytes > len(block):
        raise LogicError('cuMemcpyDtoHAsync failed: copy past the end of the allocation')
    view.reshape(-1).view(np.uint8)[:] = np.frombuffer(
        bytes(block[offset:offset + view.nbytes]), dtype=np.uint8)


def _copy_in(dest, src, operation):
    _gpu.active().require_context(operation)
    block, offset = _gpu.active().find(_address(dest))
    data = np.ascontiguousarray(src).tobytes()
    if offset + len(data) > len(block):
        raise LogicError(f'{operation} failed: copy past the end of the allocation')
    block[offset:offset + len(data)] = data
