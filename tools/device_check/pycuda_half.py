"""The PyCUDA half of TensorrtRuntime on a real GPU, TensorRT replaced by standin/tensorrt.py.

For a GPU machine without TensorRT (docs/selftest.md records a run). Checks, each printed as
a PASS/FAIL line and written to OUT/pycuda_half.json:
- load, prepare, infer and release each on a different worker thread; the output equals the
  input after H2D -> execute_async_v3 (a real device-to-device copy on the runtime's own
  stream) -> D2H -> sync, through page-locked host buffers; no thread is left with a
  context current;
- the primary context is released after a same-thread and after a cross-thread release
  (read with cuDevicePrimaryCtxGetState: inactive once every retain is given back);
- CYCLES load/activate/infer/release cycles (release on another thread) leave device free
  memory (cuMemGetInfo) and host RSS where they started.
Usage: python tools/device_check/pycuda_half.py OUT_DIR [CYCLES]
"""

from concurrent.futures import ThreadPoolExecutor
import ctypes
import json
from pathlib import Path
import sys
import tempfile
import time

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / 'standin'))

import numpy as np  # noqa: E402
import tensorrt as standin  # noqa: E402

from gps_denied_inference.artifacts.gate import GateExpectation  # noqa: E402
from gps_denied_inference.artifacts.manifest import (  # noqa: E402
    DeviceInfo,
    Manifest,
    MemoryPrediction,
    TensorSpec,
)
from gps_denied_inference.artifacts.sealing import seal_artifact  # noqa: E402
from gps_denied_inference.demo.models import demo_contract  # noqa: E402
from gps_denied_inference.resources.budget import MemoryBudget  # noqa: E402
from gps_denied_inference.resources.measured_usage import current_rss_bytes  # noqa: E402
from gps_denied_inference.runtimes.cuda_context import PrimaryContext  # noqa: E402
from gps_denied_inference.runtimes.settings import RuntimeConfig  # noqa: E402
from gps_denied_inference.runtimes.tensorrt import TensorrtRuntime  # noqa: E402

HEIGHT, WIDTH = 480, 640
SHAPE = (1, 1, HEIGHT, WIDTH)
LIBCUDA = ctypes.CDLL('libcuda.so.1')
RESULTS = []


def line(ok, check, measured):
    """Record and print one PASS/FAIL line."""
    RESULTS.append({'check': check, 'status': 'PASS' if ok else 'FAIL', 'measured': measured})
    print(f'{"PASS" if ok else "FAIL"}  pycuda-half/{check}  {measured}', flush=True)


def current_context():
    """The CUDA context current on the calling thread (0 when none)."""
    handle = ctypes.c_void_p()
    LIBCUDA.cuCtxGetCurrent(ctypes.byref(handle))
    return handle.value or 0


def primary_state(ordinal=0):
    """(flags, active) of the device's primary context, from the driver."""
    device, flags, active = ctypes.c_int(), ctypes.c_uint(), ctypes.c_int()
    LIBCUDA.cuDeviceGet(ctypes.byref(device), ordinal)
    LIBCUDA.cuDevicePrimaryCtxGetState(device, ctypes.byref(flags), ctypes.byref(active))
    return flags.value, bool(active.value)


def write_engine(folder, capability, name):
    """A sealed stand-in engine: image [1, 1, 480, 640] float32 -> its copy."""
    tensors = [{'name': 'image', 'mode': 'input', 'shape': list(SHAPE)},
               {'name': 'copy', 'mode': 'output', 'shape': list(SHAPE)}]
    path = folder / f'{name}.engine'
    path.write_bytes(standin.plan_bytes(tensors))
    nbytes = int(np.prod(SHAPE)) * 4
    manifest = Manifest(
        artifact_sha256='', runtime='tensorrt', runtime_version='10.3.0',
        device=DeviceInfo(name='stand-in', compute_capability=capability),
        precision='fp32',
        tensors=tuple(TensorSpec(t['name'], t['mode'], 'float32', SHAPE) for t in tensors),
        memory=MemoryPrediction(path.stat().st_size, 0, 2 * nbytes),
        preprocess=demo_contract(HEIGHT, WIDTH))
    seal_artifact(path, manifest)
    return path


def on_thread(pool, function, *args):
    """Run on the pool's thread; also return whether a context is left current there."""
    def body():
        result = function(*args)
        return result, current_context()
    return pool.submit(body).result()


def main():
    """Run every check; 0 when all pass."""
    out = Path(sys.argv[1])
    cycles = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    out.mkdir(parents=True, exist_ok=True)
    import pycuda.driver as cuda
    cuda.init()
    device = cuda.Device(0)
    major, minor = device.compute_capability()
    capability = f'{major}.{minor}'
    print(f'device {device.name()} cc {capability}, driver {cuda.get_driver_version()}, '
          f'pycuda built for CUDA {cuda.get_version()}', flush=True)
    folder = Path(tempfile.mkdtemp(prefix='pycuda-half-'))
    engine = write_engine(folder, capability, 'standin')
    expected = GateExpectation('tensorrt', None, '10.3.0', capability)
    frame = np.random.default_rng(0).random(SHAPE, dtype=np.float32)
    pools = {name: ThreadPoolExecutor(1, thread_name_prefix=name)
             for name in ('loader', 'preparer', 'inferrer', 'releaser')}

    # Same-thread release: the primary context must be inactive afterwards.
    runtime = TensorrtRuntime(config=RuntimeConfig(), budget=MemoryBudget(4 << 30, 3 << 29))
    handle = runtime.deserialize_engine('same', str(engine), expected)
    runtime.prepare_execution(handle)
    runtime.release_engine(handle)
    flags, active = primary_state()
    line(not active, 'release-same-thread',
         f'primary context active after release: {active} (flags {flags})')

    # Each step on its own worker thread.
    handle, left = on_thread(pools['loader'], runtime.deserialize_engine, 'cross', str(engine),
                             expected)
    _, left_prepare = on_thread(pools['preparer'], runtime.prepare_execution, handle)
    outputs, left_infer = on_thread(pools['inferrer'], runtime.infer, handle,
                                    {'image': frame})
    line(np.array_equal(outputs['copy'], frame), 'infer-worker-thread',
         f'output == input after H2D -> device-to-device copy on stream {handle.stream.handle:#x}'
         f' -> D2H -> sync ({frame.nbytes} B)')
    _, left_release = on_thread(pools['releaser'], runtime.release_engine, handle)
    left_over = {'loader': left, 'preparer': left_prepare, 'inferrer': left_infer,
                 'releaser': left_release}
    line(not any(left_over.values()), 'no-context-left-current',
         'context current after the call, per thread: '
         + ', '.join(f'{k} {v:#x}' for k, v in left_over.items()))
    flags, active = primary_state()
    line(not active, 'release-cross-thread',
         f'primary context active after load on one thread, release on another: {active}')

    # Cycles, measured with a probe retain of our own so the context stays put.
    probe = PrimaryContext(cuda, 0)
    with probe.current():
        free_before, total = cuda.mem_get_info()
    rss_before = current_rss_bytes()
    started = time.perf_counter()
    mismatches = 0
    for index in range(cycles):
        handle = runtime.deserialize_engine(f'cycle{index}', str(engine), expected)
        on_thread(pools['preparer'], runtime.prepare_execution, handle)
        outputs, _ = on_thread(pools['inferrer'], runtime.infer, handle, {'image': frame})
        mismatches += not np.array_equal(outputs['copy'], frame)
        on_thread(pools['releaser'], runtime.release_engine, handle)
    elapsed = time.perf_counter() - started
    with probe.current():
        free_after, _ = cuda.mem_get_info()
    rss_after = current_rss_bytes()
    line(free_after == free_before and mismatches == 0, f'cycles-{cycles}',
         f'device free {free_before} -> {free_after} B ({free_after - free_before:+d}), '
         f'{mismatches} wrong outputs, {elapsed:.2f} s ({elapsed / cycles * 1e3:.1f} ms/cycle)')
    line(rss_after - rss_before < 16 << 20, f'host-rss-{cycles}',
         f'host RSS {rss_before >> 20} -> {rss_after >> 20} MiB '
         f'({(rss_after - rss_before) >> 10:+d} KiB)')
    probe.detach()
    flags, active = primary_state()
    line(not active, 'release-after-cycles',
         f'primary context active after {cycles} cycles and the probe released: {active}')
    for pool in pools.values():
        pool.shutdown()
    (out / 'pycuda_half.json').write_text(json.dumps(RESULTS, indent=2) + '\n')
    return 0 if all(r['status'] == 'PASS' for r in RESULTS) else 1


if __name__ == '__main__':
    sys.exit(main())
