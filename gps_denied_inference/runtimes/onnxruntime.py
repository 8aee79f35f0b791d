"""The portable strategy: ONNX Runtime with configurable execution providers.

Load order: gate (nothing read beyond the file and its sidecars), then the budget
reservation for the weights, then the session, built from the very bytes whose digest was
checked (a file swapped after the gate is caught, not loaded). Any failure after the
reservation gives it back. Providers are tried in the configured order among those this
ONNX Runtime build offers; none available is a refusal, and a session that ended up on a
provider that was not configured (ONNX Runtime's implicit CPU fallback) is refused too.
"""

import threading
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, TYPE_CHECKING

import numpy as np

from gps_denied_inference.artifacts.gate import EngineGate, GateExpectation
from gps_denied_inference.artifacts.manifest import Manifest, TensorSpec
from gps_denied_inference.errors import (
    ConfigError,
    EngineBuildError,
    EngineLoadError,
    InferenceError,
)
from gps_denied_inference.runtimes.base import RuntimeBase
from gps_denied_inference.runtimes.settings import RuntimeConfig

if TYPE_CHECKING:
    from gps_denied_inference.resources.budget import MemoryBudget
    from gps_denied_inference.resources.thermal import ThermalStatePublisher

LABEL = 'onnxruntime'
CPU_PROVIDER = 'CPUExecutionProvider'
OPTIONS = ('providers', 'intra_op_threads', 'provider_options')


class OnnxRuntimeHandle:
    """One loaded model: its manifest, the provider it runs on, its session and lock."""

    def __init__(self, name: str, path: str, manifest: Manifest, provider: str,
                 session: Any) -> None:
        self.name = name
        self.path = path
        self.manifest = manifest
        self.provider = provider
        self.lock = threading.Lock()
        self.session: Optional[Any] = session
        self.is_prepared = False

    @property
    def on_gpu(self) -> bool:
        """True when the active provider keeps tensors on the GPU."""
        return self.provider != CPU_PROVIDER

    @property
    def is_released(self) -> bool:
        """True once release_engine() has run for this handle."""
        return self.session is None


class OnnxRuntimeRuntime(RuntimeBase):
    """InferenceRuntime on ONNX Runtime; one instance may hold several named handles."""

    LABEL = LABEL
    OPTIONS = OPTIONS
    HANDLE_TYPE = OnnxRuntimeHandle
    HANDLE_DESCRIPTION = 'an ONNX Runtime engine handle'

    def __init__(self, *, config: RuntimeConfig, budget: Optional['MemoryBudget'] = None,
                 thermal: Optional['ThermalStatePublisher'] = None,
                 gate: Optional[EngineGate] = None, **options: Any) -> None:
        super().__init__(config=config, budget=budget, thermal=thermal, gate=gate, **options)
        self._threads = options.get('intra_op_threads', 1)
        if not isinstance(self._threads, int) or isinstance(self._threads, bool) \
                or self._threads < 1:
            raise ConfigError(f'OnnxRuntimeRuntime.intra_op_threads = {self._threads!r} is '
                              'invalid: must be an integer >= 1')
        self._provider_options = _provider_options(options.get('provider_options', {}))
        self._providers = _usable_providers(options.get('providers', (CPU_PROVIDER,)))

    @property
    def providers(self) -> Tuple[str, ...]:
        """The configured providers this host offers, in the order they are tried."""
        return self._providers

    def compile_engine(self, onnx_path: str, build_config: Any) -> Manifest:
        """Refused: ONNX Runtime runs the sealed .onnx itself, there is nothing to compile."""
        raise EngineBuildError(
            f'{onnx_path}: the onnxruntime runtime does not compile engines; it loads the '
            f'.onnx model directly. Seal it instead: gps_denied_inference seal {onnx_path}')

    def deserialize_engine(self, name: str, path: str,
                           expected: GateExpectation) -> OnnxRuntimeHandle:
        """Gate, reserve the weights, then create the session from the gated bytes."""
        manifest, data = self._gated_bytes(name, path, expected)
        planned_on_gpu = self._providers[0] != CPU_PROVIDER
        self._reserve_stage(f'{name}:weights', 'weights', manifest, planned_on_gpu)
        try:
            session = self._create_session(name, path, data)
            provider = session.get_providers()[0]
            if provider not in self._providers:
                raise ConfigError(
                    f'model {name}: ONNX Runtime fell back to {provider}, which is not in the '
                    f'configured providers {list(self._providers)}')
            if (provider != CPU_PROVIDER) != planned_on_gpu:
                self._release(f'{name}:weights')
                self._reserve_stage(f'{name}:weights', 'weights', manifest,
                              provider != CPU_PROVIDER)
            handle = OnnxRuntimeHandle(name, str(path), manifest, provider, session)
            self._register(handle)
        except BaseException:
            self._release(f'{name}:weights')
            raise
        return handle

    def prepare_execution(self, handle: OnnxRuntimeHandle) -> None:
        """Reserve execution memory, then allocate it with one warm-up run (idempotent)."""
        self._owned(handle)
        with handle.lock:
            if handle.is_prepared:
                return
            self._reserve_stage(f'{handle.name}:execution', 'execution', handle.manifest,
                          handle.on_gpu)
            try:
                feeds = {spec.name: np.zeros(_warmup_shape(spec), dtype=spec.dtype)
                         for spec in handle.manifest.inputs}
                self._run_locked(handle, feeds)
            except BaseException:
                self._release(f'{handle.name}:execution')
                raise
            handle.is_prepared = True

    def infer(self, handle: OnnxRuntimeHandle,
              inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Validate the named inputs against the manifest, run, validate the outputs."""
        self._owned(handle)
        feeds = _checked_inputs(handle, inputs)
        with handle.lock:
            return self._run_locked(handle, feeds)

    def release_engine(self, handle: OnnxRuntimeHandle) -> None:
        """Drop the session and both reservations; a second call does nothing."""
        if isinstance(handle, OnnxRuntimeHandle) and handle.is_released:
            return
        self._owned(handle)
        with handle.lock:
            handle.session = None
            handle.is_prepared = False
        self._forget(handle)

    def current_runtime_label(self) -> str:
        """'onnxruntime/<provider>': the newest live handle's provider, else the planned one."""
        with self._lock:
            live = list(self._handles.values())
        provider = live[-1].provider if live else self._providers[0]
        return f'{LABEL}/{provider}'

    def _reserve_stage(self, key: str, stage: str, manifest: Manifest, on_gpu: bool) -> None:
        from gps_denied_inference.resources.budget import execution_need, weights_need
        self._reserve(key, (weights_need if stage == 'weights' else execution_need)(manifest,
                                                                                    on_gpu))

    def _create_session(self, name: str, path: str, data: bytes) -> Any:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        # An idle node must burn no CPU: worker threads sleep instead of spinning.
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        options.add_session_config_entry('session.inter_op.allow_spinning', '0')
        if CPU_PROVIDER not in self._providers:
            options.add_session_config_entry('session.disable_cpu_ep_fallback', '1')
        provider_options = [self._provider_options.get(p, {}) for p in self._providers]
        try:
            return onnxruntime.InferenceSession(data, sess_options=options,
                                                providers=list(self._providers),
                                                provider_options=provider_options)
        except Exception as err:  # noqa: B902 - ORT raises pybind11 classes and RuntimeError
            raise EngineLoadError(f'model {name}: ONNX Runtime could not create a session for '
                                 f'{path} with {list(self._providers)}: '
                                 f'{type(err).__name__}: {err}') from err

    def _run_locked(self, handle: OnnxRuntimeHandle,
                    feeds: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        session = handle.session
        if session is None:
            raise InferenceError(f'model {handle.name}: engine handle was released')
        names = [spec.name for spec in handle.manifest.outputs]
        try:
            values = session.run(names, dict(feeds))
        except Exception as err:  # noqa: B902 - ORT raises pybind11 classes and RuntimeError
            raise InferenceError(f'model {handle.name}: ONNX Runtime run failed: '
                                 f'{type(err).__name__}: {err}') from err
        outputs = dict(zip(names, values))
        for spec in handle.manifest.outputs:
            _check_array(handle.name, spec, outputs[spec.name])
        return outputs


def _usable_providers(configured: object) -> Tuple[str, ...]:
    if isinstance(configured, str) or not isinstance(configured, Sequence) or not configured \
            or not all(isinstance(p, str) and p for p in configured):
        raise ConfigError(f'OnnxRuntimeRuntime.providers = {configured!r} is invalid: must be '
                          'a non-empty list of execution provider names')
    import onnxruntime

    available = onnxruntime.get_available_providers()
    usable = tuple(p for p in configured if p in available)
    if not usable:
        raise ConfigError(f'none of the configured ONNX Runtime execution providers '
                          f'{list(configured)} is available on this host (available: '
                          f'{available})')
    return usable


def _provider_options(value: object) -> Dict[str, Dict[str, str]]:
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, Mapping) for k, v in value.items()):
        raise ConfigError(f'OnnxRuntimeRuntime.provider_options = {value!r} is invalid: must '
                          'map provider names to option mappings')
    return {k: {str(a): str(b) for a, b in v.items()} for k, v in value.items()}


def _warmup_shape(spec: TensorSpec) -> Tuple[int, ...]:
    return spec.shape if spec.profile is None else tuple(spec.profile[1])


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


def _check_array(model: str, spec: TensorSpec, value: object) -> None:
    if not isinstance(value, np.ndarray):
        raise InferenceError(f'model {model}: {spec.mode} {spec.name!r} must be a numpy array, '
                             f'got {type(value).__name__}')
    if value.dtype != np.dtype(spec.dtype):
        raise InferenceError(f'model {model}: {spec.mode} {spec.name!r} has dtype '
                             f'{value.dtype}, expected {spec.dtype}')
    problem = _shape_problem(spec, tuple(value.shape))
    if problem:
        raise InferenceError(f'model {model}: {spec.mode} {spec.name!r} has {problem}')


def _checked_inputs(handle: OnnxRuntimeHandle,
                    inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    specs = {spec.name: spec for spec in handle.manifest.inputs}
    missing = sorted(set(specs) - set(inputs))
    unexpected = sorted(set(inputs) - set(specs))
    if missing or unexpected:
        problems: List[str] = []
        if missing:
            problems.append(f'missing {missing}')
        if unexpected:
            problems.append(f'unexpected {unexpected}')
        raise InferenceError(f'model {handle.name}: inputs {", ".join(problems)}; the model '
                             f'takes {list(specs)}')
    feeds = {}
    for name, spec in specs.items():
        _check_array(handle.name, spec, inputs[name])
        feeds[name] = np.ascontiguousarray(inputs[name])
    return feeds
