"""The strategy that flies: TensorRT 10.3 engines on the device's primary CUDA context.

Load order (configure): the engine gate (nothing imported beyond this package), then the
reservations (weights, the plan's host copy, the CUDA context once per budget), then
TensorRT and PyCUDA are imported, TensorRT's plugins registered and the gated bytes
deserialized; the engine's I/O must match its manifest. Allocation (activate): the execution
reservation, then the execution context, a CUDA stream and a blocking-sync event, page-locked
host and device buffers at each tensor's largest shape, `set_tensor_address`, one warm-up
run. A failure at any step undoes every step before it. Inference: output shapes checked,
H2D copies, `execute_async_v3`, D2H copies and an event wait, all on the handle's own
stream, with the primary context pushed on the calling thread for the duration (any
executor thread may call). docs/tensorrt.md says what of this is verified where.
"""

import logging
import threading
from typing import Any, Dict, Mapping, Optional, Set, Tuple, TYPE_CHECKING, Union
import weakref

import numpy as np

from gps_denied_inference.artifacts.gate import EngineGate, GateExpectation
from gps_denied_inference.artifacts.manifest import Manifest, TensorSpec
from gps_denied_inference.compiler.build_config import (
    build_config_from_dict,
    BuildConfig,
    load_build_config,
)
from gps_denied_inference.compiler.engine_build import compile_engine, ProgressFn
from gps_denied_inference.errors import (
    ConfigError,
    EngineLoadError,
    GpsDeniedInferenceError,
    InferenceError,
)
from gps_denied_inference.resources.budget import (
    execution_need,
    MemoryBudget,
    MemoryNeed,
    weights_need,
)
from gps_denied_inference.runtimes.base import RuntimeBase
from gps_denied_inference.runtimes.cuda_context import (
    import_cuda_driver,
    import_tensorrt,
    PrimaryContext,
    register_tensorrt_plugins,
)
from gps_denied_inference.runtimes.device_probe import installed_tensorrt_version
from gps_denied_inference.runtimes.settings import RuntimeConfig

if TYPE_CHECKING:
    from gps_denied_inference.resources.thermal import ThermalStatePublisher

_LOG = logging.getLogger(__name__)

LABEL = 'tensorrt'
OPTIONS = ('device_index', 'progress')
CONTEXT_RESERVATION = 'cuda-context'
# One CUDA context per process, however many runtimes share a budget: who holds it, per budget.
_CONTEXT_LOCK = threading.Lock()
_CONTEXT_HOLDERS: 'weakref.WeakKeyDictionary[MemoryBudget, Set[Tuple[int, str]]]' = \
    weakref.WeakKeyDictionary()


class TensorrtHandle:
    """One engine: its manifest, primary context, engine and (once prepared) buffers."""

    def __init__(self, name: str, path: str, manifest: Manifest, primary: PrimaryContext,
                 cuda: Any, runtime: Any, engine: Any) -> None:
        self.name = name
        self.path = path
        self.manifest = manifest
        self.primary = primary
        self.cuda = cuda
        self.runtime = runtime
        self.engine = engine
        self.lock = threading.Lock()
        self.context: Any = None
        self.stream: Any = None
        self.done: Any = None
        self.host: Dict[str, np.ndarray] = {}
        self.device: Dict[str, Any] = {}
        self.is_prepared = False
        self._released = False

    @property
    def is_released(self) -> bool:
        """True once release_engine() has run for this handle."""
        return self._released

    @property
    def on_gpu(self) -> bool:
        """TensorRT engines always run on the GPU."""
        return True

    def free_execution(self) -> None:
        """Free device buffers, then drop host buffers, context and stream (context current)."""
        allocations, self.device = list(self.device.values()), {}
        self.is_prepared = False
        try:
            for allocation in allocations:
                allocation.free()
        finally:
            self.host = {}
            self.context = None
            self.stream = None
            self.done = None


class TensorrtRuntime(RuntimeBase):
    """InferenceRuntime on TensorRT + PyCUDA; one instance may hold several named handles."""

    LABEL = LABEL
    OPTIONS = OPTIONS
    HANDLE_TYPE = TensorrtHandle
    HANDLE_DESCRIPTION = 'a TensorRT engine handle'

    def __init__(self, *, config: RuntimeConfig, budget: Optional['MemoryBudget'] = None,
                 thermal: Optional['ThermalStatePublisher'] = None,
                 gate: Optional[EngineGate] = None, **options: Any) -> None:
        super().__init__(config=config, budget=budget, thermal=thermal, gate=gate, **options)
        self._device_index = options.get('device_index', 0)
        if not isinstance(self._device_index, int) or isinstance(self._device_index, bool) \
                or self._device_index < 0:
            raise ConfigError(f'TensorrtRuntime.device_index = {self._device_index!r} is '
                              'invalid: must be an integer >= 0')
        self._progress: Optional[ProgressFn] = options.get('progress')

    def compile_engine(self, onnx_path: str,
                       build_config: Union[BuildConfig, str, Mapping[str, Any]]) -> Manifest:
        """Build and seal an engine (a BuildConfig, a JSON file path, or its parsed dict)."""
        if isinstance(build_config, BuildConfig):
            config = build_config
        elif isinstance(build_config, Mapping):
            config = build_config_from_dict(build_config)
        else:
            config = load_build_config(build_config)
        return compile_engine(onnx_path, config,
                              trtexec_timeout_s=self.config.trtexec_timeout_s,
                              progress=self._progress, device_index=self._device_index)

    def deserialize_engine(self, name: str, path: str,
                           expected: GateExpectation) -> TensorrtHandle:
        """Gate, reserve, then deserialize the gated bytes; all or nothing.

        Reserved before TensorRT is imported: the weights on the GPU, the plan's host copy
        while it is deserialized (on Jetson the same DRAM) and, with the first engine, the
        CUDA context's own overhead.
        """
        manifest, data = self._gated_bytes(name, path, expected)
        self._reserve_load(name, manifest, len(data))
        primary: Optional[PrimaryContext] = None
        try:
            trt = import_tensorrt()
            cuda = import_cuda_driver()
            primary = _retain_primary_context(cuda, self._device_index, name)
            runtime, engine = self._load(trt, primary, name, path, data, manifest)
            del data
            handle = TensorrtHandle(name, str(path), manifest, primary, cuda, runtime, engine)
            self._register(handle)
        except BaseException:
            try:
                if primary is not None:
                    primary.detach()
            finally:
                self._release(f'{name}:weights')
                self._release_context_share(name)
            raise
        finally:
            self._release(f'{name}:plan-copy')
        return handle

    def _reserve_load(self, name: str, manifest: Manifest, plan_bytes: int) -> None:
        needs = {f'{name}:weights': weights_need(manifest, on_gpu=True),
                 f'{name}:plan-copy': MemoryNeed(host_bytes=plan_bytes)}
        if self._budget is None:
            return
        with _CONTEXT_LOCK:
            holders = _CONTEXT_HOLDERS.setdefault(self._budget, set())
            if not holders:
                needs[CONTEXT_RESERVATION] = MemoryNeed(
                    gpu_bytes=self.config.cuda_context_overhead_bytes)
            self._reserve_all(needs)
            holders.add((id(self), name))

    def _release_context_share(self, name: str) -> None:
        """The last engine on this budget gives back the CUDA context's reservation."""
        if self._budget is None:
            return
        with _CONTEXT_LOCK:
            holders = _CONTEXT_HOLDERS.get(self._budget, set())
            holders.discard((id(self), name))
            if not holders:
                self._release(CONTEXT_RESERVATION)

    def prepare_execution(self, handle: TensorrtHandle) -> None:
        """Reserve, then allocate context, stream and buffers, then warm up (idempotent)."""
        self._owned(handle)
        with handle.lock:
            if handle.is_prepared:
                return
            key = f'{handle.name}:execution'
            self._reserve(key, execution_need(handle.manifest, on_gpu=True))
            try:
                with handle.primary.current():
                    try:
                        self._allocate(handle)
                        warm_up = {spec.name: np.zeros(_opt_shape(spec), dtype=spec.dtype)
                                   for spec in handle.manifest.inputs}
                        _run(handle, warm_up)
                    except BaseException:
                        handle.free_execution()
                        raise
            except InferenceError as err:
                self._release(key)
                raise EngineLoadError(f'model {handle.name}: the warm-up run failed: '
                                      f'{err}') from err
            except GpsDeniedInferenceError:
                self._release(key)
                raise
            except BaseException as err:
                self._release(key)
                if not isinstance(err, Exception):
                    raise
                raise EngineLoadError(f'model {handle.name}: allocating execution resources '
                                      f'failed: {type(err).__name__}: {err}') from err
            handle.is_prepared = True

    def infer(self, handle: TensorrtHandle,
              inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """H2D -> execute_async_v3 -> D2H -> synchronize on the handle's stream."""
        self._owned(handle)
        feeds = _checked_inputs(handle, inputs)
        with handle.lock:
            if not handle.is_prepared:
                raise InferenceError(f'model {handle.name}: execution is not prepared '
                                     '(prepare_execution was not called or failed)')
            try:
                with handle.primary.current():
                    return _run(handle, feeds)
            except GpsDeniedInferenceError:
                raise
            except Exception as err:  # noqa: B902 - CUDA/TensorRT raise many classes
                raise InferenceError(f'model {handle.name}: TensorRT inference failed: '
                                     f'{type(err).__name__}: {err}') from err

    def release_engine(self, handle: TensorrtHandle) -> None:
        """Free buffers, context, stream, engine and reservations once; later calls no-op.

        Safe to call concurrently (a lifecycle cleanup racing a signal's teardown): the
        handle's lock serialises callers, and only the first finds it unreleased.
        """
        if not isinstance(handle, TensorrtHandle):
            self._owned(handle)
        with handle.lock:
            if handle.is_released:
                return
            self._owned(handle)
            try:
                with handle.primary.current():
                    try:
                        handle.free_execution()
                    finally:
                        handle.engine = None
                        handle.runtime = None
            except Exception as err:  # noqa: B902 - bookkeeping below must still run
                raise InferenceError(f'model {handle.name}: releasing the engine failed: '
                                     f'{type(err).__name__}: {err}') from err
            finally:
                try:
                    handle.primary.detach()
                finally:
                    handle._released = True
                    self._forget(handle)
                    self._release_context_share(handle.name)

    def current_runtime_label(self) -> str:
        """'tensorrt/<installed version>' (read from package metadata, nothing imported)."""
        version = installed_tensorrt_version()
        return f'{LABEL}/{version}' if version else LABEL

    def _load(self, trt: Any, primary: PrimaryContext, name: str, path: str, data: bytes,
              manifest: Manifest) -> Tuple[Any, Any]:
        runtime = engine = None
        try:
            with primary.current():
                try:
                    register_tensorrt_plugins(trt)
                    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
                    engine = runtime.deserialize_cuda_engine(data)
                    if engine is None:
                        raise EngineLoadError(f'model {name}: TensorRT could not deserialize '
                                              f'{path} (see the TensorRT log above)')
                    _check_engine_io(trt, engine, manifest, name)
                except BaseException:
                    engine = runtime = None
                    raise
        except GpsDeniedInferenceError:
            raise
        except Exception as err:  # noqa: B902 - CUDA/TensorRT raise many classes
            raise EngineLoadError(f'model {name}: loading {path} failed: '
                                  f'{type(err).__name__}: {err}') from err
        return runtime, engine

    def _allocate(self, handle: TensorrtHandle) -> None:
        """Context, stream and buffers; each kept on the handle as soon as it exists."""
        cuda = handle.cuda
        context = handle.engine.create_execution_context()
        if context is None:
            raise EngineLoadError(f'model {handle.name}: TensorRT could not create an '
                                  'execution context')
        handle.context = context
        handle.stream = cuda.Stream()
        handle.done = cuda.Event(cuda.event_flags.BLOCKING_SYNC)
        for spec in handle.manifest.tensors:
            count = spec.max_nbytes // np.dtype(spec.dtype).itemsize
            handle.host[spec.name] = cuda.pagelocked_empty((count,), np.dtype(spec.dtype))
            handle.device[spec.name] = cuda.mem_alloc(max(spec.max_nbytes, 1))
            if not context.set_tensor_address(spec.name, int(handle.device[spec.name])):
                raise EngineLoadError(f'model {handle.name}: TensorRT refused the address of '
                                      f'tensor {spec.name!r}')


def _retain_primary_context(cuda: Any, device_index: int, name: str) -> PrimaryContext:
    try:
        return PrimaryContext(cuda, device_index)
    except Exception as err:  # noqa: B902 - pycuda raises its own Error classes
        raise EngineLoadError(f'model {name}: cannot retain the primary context of CUDA '
                              f'device {device_index}: {type(err).__name__}: {err}') from err


def _check_engine_io(trt: Any, engine: Any, manifest: Manifest, name: str) -> None:
    """Refuse an engine whose I/O or memory disagrees with the manifest that was budgeted."""
    found = set()
    for index in range(engine.num_io_tensors):
        tensor = engine.get_tensor_name(index)
        mode = 'input' if engine.get_tensor_mode(tensor) == trt.TensorIOMode.INPUT else 'output'
        dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(tensor))).name
        found.add((tensor, mode, dtype, tuple(int(d) for d in engine.get_tensor_shape(tensor))))
    declared = {(t.name, t.mode, t.dtype, t.shape) for t in manifest.tensors}
    if found != declared:
        raise EngineLoadError(f"model {name}: the engine's I/O {sorted(found)} disagrees with "
                              f'its manifest {sorted(declared)}')
    for spec in manifest.inputs:
        if spec.profile is not None:
            profile = tuple(tuple(int(d) for d in s)
                            for s in engine.get_tensor_profile_shape(spec.name, 0))
            if profile != spec.profile:
                raise EngineLoadError(f'model {name}: input {spec.name!r} has profile '
                                      f'{profile} in the engine, {spec.profile} in the manifest')
    needed = int(engine.device_memory_size_v2)
    if needed > manifest.memory.activation_bytes:
        raise EngineLoadError(f'model {name}: the engine needs {needed} B of activation memory, '
                              f'its manifest budgets {manifest.memory.activation_bytes} B')


def _run(handle: TensorrtHandle, feeds: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """One inference on the handle's stream; the caller holds the lock and the context.

    Every output's shape is resolved and checked against its buffer before the enqueue
    (TensorRT writes outputs wherever their addresses point). The wait is on a blocking-sync
    event: stream.synchronize() on the primary context (CU_CTX_SCHED_AUTO, which PyCUDA
    cannot change on a primary context) spins a CPU core on Tegra; the event's wait sleeps.
    """
    cuda, context, stream = handle.cuda, handle.context, handle.stream
    try:
        for spec in handle.manifest.inputs:
            array = feeds[spec.name]
            if spec.profile is not None and not context.set_input_shape(spec.name,
                                                                        array.shape):
                raise InferenceError(f'model {handle.name}: TensorRT refused input shape '
                                     f'{array.shape} for {spec.name!r}')
        staged_outputs = _staged_outputs(handle)
        for spec in handle.manifest.inputs:
            array = feeds[spec.name]
            staged = handle.host[spec.name][:array.size].reshape(array.shape)
            np.copyto(staged, array)
            cuda.memcpy_htod_async(handle.device[spec.name], staged, stream)
        if not context.execute_async_v3(stream.handle):
            raise InferenceError(f'model {handle.name}: execute_async_v3 failed (see the '
                                 'TensorRT log)')
        for name, staged in staged_outputs.items():
            cuda.memcpy_dtoh_async(staged, handle.device[name], stream)
        handle.done.record(stream)
        handle.done.synchronize()
    except BaseException:
        _drain(handle)
        raise
    return {name: np.array(staged, copy=True) for name, staged in staged_outputs.items()}


def _staged_outputs(handle: TensorrtHandle) -> Dict[str, np.ndarray]:
    """Each output's host view at its resolved shape; refused before anything is enqueued."""
    context = handle.context
    if any(spec.profile is not None for spec in handle.manifest.inputs):
        unresolved = list(context.infer_shapes())
        if unresolved:
            raise InferenceError(f'model {handle.name}: TensorRT cannot resolve the shapes '
                                 f'of {unresolved} from the inputs given')
    staged = {}
    for spec in handle.manifest.outputs:
        shape = spec.shape if spec.is_static else tuple(
            int(d) for d in context.get_tensor_shape(spec.name))
        count = int(np.prod(shape, dtype=np.int64))
        if any(d < 0 for d in shape) or count > handle.host[spec.name].size:
            raise InferenceError(f'model {handle.name}: output {spec.name!r} would have shape '
                                 f'{shape}, outside its buffer of max shape {spec.max_shape}; '
                                 'nothing was enqueued')
        staged[spec.name] = handle.host[spec.name][:count].reshape(shape)
    return staged


def _drain(handle: TensorrtHandle) -> None:
    """After a failure, wait out copies already queued so the buffers are safe to reuse."""
    if handle.stream is None:
        return
    try:
        handle.stream.synchronize()
    except Exception as err:  # noqa: B902 - the original failure is what the caller sees
        _LOG.error('model %s: synchronizing the stream after a failure failed too: %s',
                   handle.name, err)


def _opt_shape(spec: TensorSpec) -> Tuple[int, ...]:
    return spec.shape if spec.profile is None else tuple(spec.profile[1])


def _checked_inputs(handle: TensorrtHandle,
                    inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Exactly the manifest's inputs, each of its dtype, rank and (profile-bounded) shape."""
    if not isinstance(inputs, Mapping):
        raise InferenceError(f'model {handle.name}: inputs must map tensor names to arrays, '
                             f'got {type(inputs).__name__}')
    expected = [spec.name for spec in handle.manifest.inputs]
    if sorted(inputs) != sorted(expected):
        raise InferenceError(f'model {handle.name}: inputs {sorted(inputs)} do not match the '
                             f'engine inputs {sorted(expected)}')
    feeds = {}
    for spec in handle.manifest.inputs:
        array = inputs[spec.name]
        if not isinstance(array, np.ndarray) or array.dtype != np.dtype(spec.dtype):
            found = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
            raise InferenceError(f'model {handle.name}: input {spec.name!r} must be a '
                                 f'{spec.dtype} array, got {found}')
        problem = _shape_problem(spec, tuple(array.shape))
        if problem:
            raise InferenceError(f'model {handle.name}: input {spec.name!r} has {problem}')
        feeds[spec.name] = array
    return feeds


def _shape_problem(spec: TensorSpec, shape: Tuple[int, ...]) -> Optional[str]:
    if len(shape) != len(spec.shape):
        return f'rank {len(shape)}, expected {len(spec.shape)} ({spec.shape})'
    for axis, (size, declared) in enumerate(zip(shape, spec.shape)):
        if declared > 0 and size != declared:
            return f'shape {shape}, expected {spec.shape}'
        if declared == -1 and spec.profile is not None:
            low, high = spec.profile[0][axis], spec.profile[2][axis]
            if not low <= size <= high:
                return (f'shape {shape}: dimension {axis} = {size} is outside the profile '
                        f'[{low}, {high}]')
    return None
