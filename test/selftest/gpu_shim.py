"""PyCUDA 2024.1.2 driver functions the selftest calls that the shared fake does not define yet.

Added to the fake `pycuda.driver` module for the selftest's tests only, with the real
functions' names and signatures (/work/shared/pycuda-2024.1.2-driver-api.json) and the
fake's rules (a current context is required); they belong in test/fakes/pycuda/driver.py
once the fakes' owner merges them.
"""

from fakes import gpu
import numpy as np

TOTAL_BYTES = 8 << 30
DRIVER_VERSION = 12060


def extend_fake_driver(device: 'gpu.FakeGpu', total_bytes: int = TOTAL_BYTES) -> None:
    """Import the fake pycuda.driver and give it mem_get_info, versions, memcpy_dtod_async."""
    import pycuda.driver as cuda

    def mem_get_info():
        device.record('cuda.mem_get_info')
        device.require_context('cuMemGetInfo')
        used = sum(max(len(block), 1) for block in device.memory.values())
        return total_bytes - used, total_bytes

    def get_driver_version():
        return DRIVER_VERSION

    def get_version():
        return (12, 6, 0)

    def memcpy_dtod_async(dest, src, size, stream=None):
        device.record('cuda.memcpy_dtod_async', int(dest), int(src), size)
        device.require_context('cuMemcpyDtoDAsync')
        source, offset = device.find(int(src))
        target, target_offset = device.find(int(dest))
        data = np.frombuffer(bytes(source[offset:offset + size]), dtype=np.uint8)
        target[target_offset:target_offset + size] = data.tobytes()

    cuda.mem_get_info = mem_get_info
    cuda.get_driver_version = get_driver_version
    cuda.get_version = get_version
    cuda.memcpy_dtod_async = memcpy_dtod_async
