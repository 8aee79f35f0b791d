"""ONNX -> a sealed TensorRT engine, by the builder API, Polygraphy or trtexec (one config).

Everything that can be refused without a GPU is refused first: the build config against
the model (dynamic inputs need a profile, INT8 by calibration needs a Q/DQ-free model and a
trusted dataset and cache). Then the backend writes the engine to `<out>.tmp-<pid>`, the
built engine is deserialized to fill the manifest (I/O tensors, `device_memory_size_v2` as
activation bytes, I/O buffer bytes, engine size as weights, TensorRT version, device), the
file is renamed into place and sealed. Any failure removes the temp file and, once renamed,
the engine and its sidecars: a failed build leaves nothing of its output behind.

The three backends build the same thing from one config: TensorRT's plugins are registered
first, TF32 is the config's explicit choice and profiling verbosity TensorRT's default in
all three (Polygraphy's own defaults differ), and the manifest records the builder flags
read back from what was applied.

A build can take many minutes on a Jetson; `progress` receives '[  12.3 s] <line>' for the
backend's own output and a heartbeat at least every HEARTBEAT_S seconds while it is quiet.
"""

from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
import os
from pathlib import Path
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union
import warnings

import numpy as np

from gps_denied_inference.artifacts.manifest import (
    DeviceInfo,
    Manifest,
    MemoryPrediction,
    SUPPORTED_DTYPES,
    TensorSpec,
)
from gps_denied_inference.artifacts.sealing import (
    contract_for_input,
    manifest_sidecar_path,
    seal_artifact,
    sha256_file,
    sha256_sidecar_path,
)
from gps_denied_inference.compiler.build_config import BuildConfig, ShapeProfile
from gps_denied_inference.compiler.calibration import CalibrationSource, make_entropy_calibrator
from gps_denied_inference.errors import (
    CalibrationCacheError,
    EngineBuildError,
    GpsDeniedInferenceError,
    ManifestError,
)
from gps_denied_inference.imaging.contract import PreprocessContract
from gps_denied_inference.runtimes.cuda_context import (
    import_cuda_driver,
    import_tensorrt,
    PrimaryContext,
    register_tensorrt_plugins,
)
from gps_denied_inference.runtimes.device_probe import (
    installed_tensorrt_version,
    JETPACK_FOR_L4T,
    l4t_release,
    tegra_model_name,
)

HEARTBEAT_S = 5.0
KILL_GRACE_S = 5.0
TRTEXEC_TAIL_LINES = 20
PRECISION_FLAGS = {'fp32': (), 'fp16': ('FP16',), 'int8': ('INT8',), 'mixed': ('INT8', 'FP16')}
# Where JetPack installs trtexec (not on PATH by default).
JETPACK_TRTEXEC = '/usr/src/tensorrt/bin/trtexec'
# TensorRT's own default, set explicitly: Polygraphy would otherwise pick DETAILED, and the
# three backends must build the same plan from one config.
PROFILING_VERBOSITY = 'LAYER_NAMES_ONLY'

ProgressFn = Callable[[str], None]
PathLike = Union[str, Path]


def print_progress(line: str) -> None:
    """The default progress sink: one line to stderr, flushed."""
    print(line, file=sys.stderr, flush=True)


class BuildProgress:
    """Prefixes each line with the seconds since the build began; safe from any thread."""

    def __init__(self, sink: Optional[ProgressFn] = None) -> None:
        self._sink = sink or print_progress
        self._start = time.monotonic()
        self._lock = threading.Lock()

    @property
    def elapsed_s(self) -> float:
        """Seconds since the build began."""
        return time.monotonic() - self._start

    def emit(self, text: str) -> None:
        """Send '[ elapsed s] text' to the sink."""
        with self._lock:
            self._sink(f'[{self.elapsed_s:6.1f} s] {text}')


@contextmanager
def heartbeat(progress: BuildProgress, label: str,
              period_s: Optional[float] = None) -> Iterator[None]:
    """Emit '<label>: still building' every period while the block runs, then stop."""
    period = HEARTBEAT_S if period_s is None else period_s
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(period):
            progress.emit(f'{label}: still building')

    thread = threading.Thread(target=beat, name='engine-build-heartbeat', daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@dataclass(frozen=True)
class ModelInput:
    """One graph input of the ONNX model; -1 marks a dynamic dimension."""

    name: str
    shape: Tuple[int, ...]
    dtype: str

    @property
    def is_dynamic(self) -> bool:
        """True when some dimension is not fixed in the model."""
        return any(d < 0 for d in self.shape)


@dataclass(frozen=True)
class OnnxFacts:
    """What the build needs to know of the model before TensorRT sees it."""

    inputs: Tuple[ModelInput, ...]
    has_qdq: bool
    sha256: str


@dataclass
class BuildJob:
    """One build's inputs, shared by the backends."""

    onnx_path: Path
    config: BuildConfig
    temp_path: Path
    profiles: Dict[str, ShapeProfile]
    flags: Tuple[str, ...]
    progress: BuildProgress
    trtexec_timeout_s: float
    trt: Any = None
    calibrator: Any = None
    calibration: Optional[CalibrationSource] = None
    flags_in_effect: Tuple[str, ...] = ()


def read_onnx_facts(path: PathLike) -> OnnxFacts:
    """Inputs and Q/DQ presence of an ONNX model; EngineBuildError if it cannot be read."""
    import onnx
    from onnx import helper

    source = Path(path)
    if not source.is_file():
        raise EngineBuildError(f'{source}: ONNX model not found')
    try:
        model = onnx.load(str(source), load_external_data=False)
    except Exception as err:  # noqa: B902 - protobuf's DecodeError has no stable import path
        raise EngineBuildError(f'{source}: not a readable ONNX model: {type(err).__name__}: '
                               f'{err}') from err
    initializers = {t.name for t in model.graph.initializer}
    inputs = []
    for value in model.graph.input:
        if value.name in initializers:
            continue
        tensor_type = value.type.tensor_type
        try:
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)).name
        except (KeyError, TypeError) as err:
            raise EngineBuildError(f'{source}: input {value.name!r} has an unsupported element '
                                   f'type {tensor_type.elem_type}') from err
        shape = tuple(int(d.dim_value) if d.HasField('dim_value') and d.dim_value > 0 else -1
                      for d in tensor_type.shape.dim)
        inputs.append(ModelInput(value.name, shape, dtype))
    if not inputs:
        raise EngineBuildError(f'{source}: the model has no input tensor')
    has_qdq = any(node.op_type in ('QuantizeLinear', 'DequantizeLinear')
                  for node in model.graph.node)
    return OnnxFacts(tuple(inputs), has_qdq, sha256_file(source))


def plan_profiles(facts: OnnxFacts, config: BuildConfig) -> Dict[str, ShapeProfile]:
    """The config's profiles, checked against the model: every dynamic input has one."""
    by_name = {i.name: i for i in facts.inputs}
    unknown = sorted(set(config.profiles) - set(by_name))
    if unknown:
        raise EngineBuildError(f'build config profiles name {unknown}, which are not inputs of '
                               f'the model (inputs: {sorted(by_name)})')
    for model_input in facts.inputs:
        profile = config.profiles.get(model_input.name)
        if profile is None:
            if model_input.is_dynamic:
                raise EngineBuildError(
                    f'input {model_input.name!r} has dynamic shape {model_input.shape}: give '
                    f'profiles.{model_input.name} with min/opt/max shapes')
            continue
        if not model_input.is_dynamic:
            raise EngineBuildError(f'input {model_input.name!r} has static shape '
                                   f'{model_input.shape}; a profile is only for dynamic inputs')
        for label, shape in (('min', profile.min), ('opt', profile.opt), ('max', profile.max)):
            if len(shape) != len(model_input.shape) or any(
                    fixed > 0 and size != fixed for size, fixed in zip(shape,
                                                                      model_input.shape)):
                raise EngineBuildError(
                    f'profiles.{model_input.name}.{label} = {shape} does not fit the input '
                    f'shape {model_input.shape} (rank and fixed dimensions must match)')
    return dict(config.profiles)


def model_contract(facts: OnnxFacts, config: BuildConfig,
                   profiles: Dict[str, ShapeProfile], source: str) -> PreprocessContract:
    """The preprocessing contract of the first input (its opt shape when dynamic)."""
    first = facts.inputs[0]
    shape = profiles[first.name].opt if first.name in profiles else first.shape
    if first.dtype not in SUPPORTED_DTYPES:
        raise EngineBuildError(f'{source}: input {first.name!r} has dtype {first.dtype}')
    spec = TensorSpec(first.name, 'input', first.dtype, tuple(shape))
    try:
        return contract_for_input(spec, source, dict(config.preprocess))
    except ManifestError as err:
        raise EngineBuildError(f'{source}: build config preprocess: {err}') from err


def default_output(onnx_path: PathLike) -> Path:
    """'<model>.engine' beside the ONNX model."""
    return Path(onnx_path).with_suffix('.engine')


def compile_engine(onnx_path: PathLike, build_config: BuildConfig, *,
                   output: Optional[PathLike] = None, trtexec_timeout_s: float = 600.0,
                   progress: Optional[ProgressFn] = None, device_index: int = 0,
                   etc_root: PathLike = '/etc', proc_root: PathLike = '/proc') -> Manifest:
    """Build, describe, rename into place and seal an engine; returns the sealed manifest."""
    if not isinstance(build_config, BuildConfig):
        raise EngineBuildError(f'compile_engine needs a BuildConfig, got '
                               f'{type(build_config).__name__}')
    config = build_config
    source = Path(onnx_path)
    out = Path(output or config.output or default_output(source))
    if out.resolve() == source.resolve():
        raise EngineBuildError(f'the engine output {out} would overwrite the ONNX model')
    facts = read_onnx_facts(source)
    profiles = plan_profiles(facts, config)
    contract = model_contract(facts, config, profiles, str(source))
    _check_int8_source(facts, config, str(source))
    calibration = None
    if config.uses_calibration:
        calibration = _calibration_source(facts, config, contract, profiles,
                                          installed_tensorrt_version())
        if config.backend == 'trtexec' and not calibration.decision.reuse:
            raise EngineBuildError(
                f'trtexec cannot calibrate from images, it only reads a cache '
                f'({calibration.decision.reason}); build the calibration cache with the '
                'builder or polygraphy backend first')
    job = BuildJob(source, config, Path(f'{out}.tmp-{os.getpid()}'), profiles,
                   PRECISION_FLAGS[config.precision], BuildProgress(progress),
                   trtexec_timeout_s, calibration=calibration)
    renamed = False
    try:
        job.progress.emit(f'building {out} from {source} with the {config.backend} backend '
                          f'({config.precision}, workspace {config.workspace_mib} MiB)')
        manifest = _build_and_describe(job, contract, facts, device_index, etc_root, proc_root)
        os.replace(job.temp_path, out)
        renamed = True
        sealed = seal_artifact(out, manifest)
    except BaseException as err:
        _remove_quietly(job.temp_path)
        if renamed:
            for path in (out, sha256_sidecar_path(out), manifest_sidecar_path(out)):
                _remove_quietly(path)
        if isinstance(err, (GpsDeniedInferenceError, KeyboardInterrupt, SystemExit)):
            raise
        raise EngineBuildError(f'building {out} failed: {type(err).__name__}: {err}') from err
    job.progress.emit(f'sealed {out}: sha256 {sealed.artifact_sha256}, '
                      f'{sealed.memory.weights_bytes} B')
    return sealed


def _check_int8_source(facts: OnnxFacts, config: BuildConfig, source: str) -> None:
    if config.int8_source == 'qdq' and not facts.has_qdq:
        raise EngineBuildError(f'{source}: int8_source is qdq but the model has no '
                               'QuantizeLinear/DequantizeLinear nodes; INT8 would silently '
                               'not happen')
    if config.int8_source == 'calibration' and facts.has_qdq:
        raise EngineBuildError(f'{source}: the model is explicitly quantized (Q/DQ nodes), '
                               'TensorRT ignores a calibrator for it: set int8_source to qdq')


def _calibration_source(facts: OnnxFacts, config: BuildConfig, contract: PreprocessContract,
                        profiles: Dict[str, ShapeProfile],
                        tensorrt_version: Optional[str]) -> CalibrationSource:
    if len(facts.inputs) != 1:
        raise CalibrationCacheError(f'calibration feeds one image input; the model has '
                                    f'{len(facts.inputs)} inputs')
    first = facts.inputs[0]
    if first.dtype != contract.dtype:
        raise CalibrationCacheError(f'input {first.name!r} is {first.dtype}, the preprocessing '
                                    f'contract produces {contract.dtype}')
    if config.calibration is None:
        raise CalibrationCacheError('INT8 by calibration needs the calibration settings')
    shape = profiles[first.name].opt if first.name in profiles else first.shape
    return CalibrationSource(config.calibration, contract, tuple(shape), tensorrt_version)


def _build_and_describe(job: BuildJob, contract: PreprocessContract, facts: OnnxFacts,
                        device_index: int, etc_root: PathLike, proc_root: PathLike) -> Manifest:
    trt = import_tensorrt()
    cuda = import_cuda_driver()
    job.trt = trt
    primary = PrimaryContext(cuda, device_index)
    try:
        with primary.current():
            register_tensorrt_plugins(trt)
            if job.calibration is not None and job.config.backend != 'trtexec':
                job.calibrator = make_entropy_calibrator(trt, cuda, job.calibration)
                job.progress.emit(f'calibration: {job.calibration.decision.reason}')
                job.progress.emit('calibration: IInt8EntropyCalibrator2 (implicit INT8, '
                                  'deprecated since TensorRT 10.1 and its only calibrated '
                                  'INT8 in 10.3)')
            try:
                BACKENDS[job.config.backend](job)
                error = getattr(job.calibrator, 'error', None)
                if error is not None:
                    raise CalibrationCacheError(f'INT8 calibration failed: '
                                                f'{type(error).__name__}: {error}') from error
            finally:
                if job.calibrator is not None:
                    job.calibrator.release()
            if not job.temp_path.is_file() or job.temp_path.stat().st_size == 0:
                raise EngineBuildError(f'the {job.config.backend} backend wrote no engine to '
                                       f'{job.temp_path}')
            tensors, activation_bytes = describe_engine_file(trt, job.temp_path)
            device_name, capability = primary.describe()
    finally:
        primary.detach()
    l4t = l4t_release(etc_root)
    first = next(t for t in tensors if t.mode == 'input')
    if first.name != facts.inputs[0].name:
        raise EngineBuildError(f"the engine's first input is {first.name!r}, the model's is "
                               f'{facts.inputs[0].name!r}')
    try:
        return Manifest(
            artifact_sha256='', runtime='tensorrt', runtime_version=str(trt.__version__),
            device=DeviceInfo(name=tegra_model_name(proc_root) or device_name,
                              compute_capability=capability,
                              l4t_release=l4t, jetpack_release=JETPACK_FOR_L4T.get(l4t or '')),
            precision=job.config.precision, tensors=tensors,
            memory=MemoryPrediction(weights_bytes=job.temp_path.stat().st_size,
                                    activation_bytes=activation_bytes,
                                    io_buffer_bytes=sum(t.max_nbytes for t in tensors)),
            preprocess=contract, builder_flags=_builder_flags(job),
            source_onnx_sha256=facts.sha256, build_config_sha256=job.config.sha256,
            extra=_extra(job))
    except ManifestError as err:
        raise EngineBuildError(f'the built engine cannot be described: {err}') from err


def _builder_flags(job: BuildJob) -> Tuple[str, ...]:
    """The builder flags the backend really applied (read back from its config), lower case."""
    flags = [flag.lower() for flag in job.flags_in_effect]
    if job.config.int8_source is not None:
        flags.append(f'int8-{job.config.int8_source}')
    return tuple(flags)


def _extra(job: BuildJob) -> Dict[str, Any]:
    extra: Dict[str, Any] = {'backend': job.config.backend,
                             'tf32': job.config.tf32,
                             'profiling_verbosity': PROFILING_VERBOSITY.lower(),
                             'workspace_mib': job.config.workspace_mib,
                             'build_seconds': round(job.progress.elapsed_s, 1)}
    if job.calibration is not None:
        extra['calibration_dataset_sha256'] = job.calibration.dataset_sha256
        extra['calibration_images'] = len(job.calibration.images)
    return extra


def describe_engine_file(trt: Any, path: Path) -> Tuple[Tuple[TensorSpec, ...], int]:
    """(I/O tensors, activation bytes) of a serialized engine, read back with TensorRT."""
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(path.read_bytes())
    if engine is None:
        raise EngineBuildError(f'{path}: TensorRT cannot deserialize the engine it just built')
    return describe_engine(trt, engine), int(engine.device_memory_size_v2)


def describe_engine(trt: Any, engine: Any) -> Tuple[TensorSpec, ...]:
    """Every I/O tensor of an engine; dynamic outputs get the shapes profile 0 implies."""
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    modes = {n: 'input' if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT else 'output'
             for n in names}
    shapes = {n: tuple(int(d) for d in engine.get_tensor_shape(n)) for n in names}
    dtypes = {n: _dtype_name(trt, engine.get_tensor_dtype(n), n) for n in names}
    profiles: Dict[str, Tuple[Tuple[int, ...], ...]] = {}
    for name in names:
        if modes[name] == 'input' and -1 in shapes[name]:
            profiles[name] = tuple(tuple(int(d) for d in s)
                                   for s in engine.get_tensor_profile_shape(name, 0))
    dynamic_outputs = [n for n in names if modes[n] == 'output' and -1 in shapes[n]]
    if dynamic_outputs:
        profiles.update(_output_profiles(trt, engine, dynamic_outputs, dict(profiles)))
    try:
        return tuple(TensorSpec(n, modes[n], dtypes[n], shapes[n], profiles.get(n))
                     for n in names)
    except ManifestError as err:
        raise EngineBuildError(f'the built engine has an I/O tensor the manifest cannot '
                               f'describe: {err}') from err


def _output_profiles(trt: Any, engine: Any, outputs: List[str],
                     inputs: Dict[str, Tuple[Tuple[int, ...], ...]]
                     ) -> Dict[str, Tuple[Tuple[int, ...], ...]]:
    if not inputs:
        raise EngineBuildError(f'outputs {outputs} have data-dependent shapes; the manifest '
                               'needs every output bounded by the input profile')
    # USER_MANAGED: a context without its activation memory, enough to resolve shapes.
    context = engine.create_execution_context(
        trt.ExecutionContextAllocationStrategy.USER_MANAGED)
    if context is None:
        raise EngineBuildError('TensorRT could not create an execution context to read the '
                               'output shapes')
    found: Dict[str, List[Tuple[int, ...]]] = {n: [] for n in outputs}
    for level in range(3):
        for name, profile in inputs.items():
            if not context.set_input_shape(name, profile[level]):
                raise EngineBuildError(f'TensorRT refused input shape {profile[level]} for '
                                       f'{name!r}')
        for name in outputs:
            shape = tuple(int(d) for d in context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise EngineBuildError(f'output {name!r} has a data-dependent shape {shape}; '
                                       'the manifest needs it bounded by the input profile')
            found[name].append(shape)
    return {n: (s[0], s[1], s[2]) for n, s in found.items()}


def _dtype_name(trt: Any, dtype: Any, name: str) -> str:
    try:
        result = np.dtype(trt.nptype(dtype)).name
    except TypeError as err:
        raise EngineBuildError(f'tensor {name!r} has TensorRT type {dtype}, which has no '
                               'numpy equivalent') from err
    if result not in SUPPORTED_DTYPES:
        raise EngineBuildError(f'tensor {name!r} has dtype {result}, expected one of '
                               f'{", ".join(SUPPORTED_DTYPES)}')
    return result


def _progress_logger(trt: Any, progress: BuildProgress) -> Any:
    """A trt.ILogger that forwards INFO and more severe messages to the progress sink."""
    threshold = int(trt.Logger.INFO)

    class ProgressLogger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: Any, msg: str) -> None:
            if int(severity) <= threshold:
                progress.emit(f'TensorRT {getattr(severity, "name", severity)}: {msg}')

    return ProgressLogger()


def _build_with_builder(job: BuildJob) -> None:
    """The TensorRT builder API (IBuilderConfig)."""
    trt = job.trt
    logger = _progress_logger(trt, job.progress)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(job.onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineBuildError(f'{job.onnx_path}: the TensorRT ONNX parser failed: '
                               + '; '.join(errors or ['no error reported']))
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, job.config.workspace_bytes)
    config.profiling_verbosity = getattr(trt.ProfilingVerbosity, PROFILING_VERBOSITY)
    for flag in job.flags:
        config.set_flag(getattr(trt.BuilderFlag, flag))
    if job.config.tf32:
        config.set_flag(trt.BuilderFlag.TF32)
    else:
        config.clear_flag(trt.BuilderFlag.TF32)  # on by default in TensorRT
    profile = None
    if job.profiles:
        profile = builder.create_optimization_profile()
        for name, shapes in job.profiles.items():
            profile.set_shape(name, shapes.min, shapes.opt, shapes.max)
        config.add_optimization_profile(profile)
    if job.calibrator is not None:
        attach_calibrator(config, job.calibrator, profile)
    cache = None
    if job.config.timing_cache is not None:
        cache = config.create_timing_cache(_read_timing_cache(job.config.timing_cache))
        if cache is None or not config.set_timing_cache(cache, False):
            raise EngineBuildError(f'timing cache {job.config.timing_cache} is not usable by '
                                   'this TensorRT and device')
    job.flags_in_effect = flags_in_effect(trt, config)
    with heartbeat(job.progress, 'TensorRT builder'):
        serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError('the TensorRT builder produced no engine (its errors are in '
                               'the progress output above)')
    _write_file(job.temp_path, memoryview(serialized))
    if cache is not None:
        _write_file(Path(job.config.timing_cache), memoryview(cache.serialize()), atomic=True)


def _build_with_polygraphy(job: BuildJob) -> None:
    """Polygraphy's TensorRT loaders (the same builder, Polygraphy's defaults and checks)."""
    try:
        from polygraphy.backend.trt import (
            CreateConfig,
            EngineBytesFromNetwork,
            NetworkFromOnnxPath,
            Profile,
        )
    except ImportError as err:
        raise EngineBuildError(f'the polygraphy backend needs the Python module '
                               f'"polygraphy", which cannot be imported ({err})') from err
    trt = job.trt
    profiles = [Profile()] if job.profiles else None
    for name, shapes in job.profiles.items():
        profiles[0].add(name, min=shapes.min, opt=shapes.opt, max=shapes.max)
    timing_cache = job.config.timing_cache
    create = CreateConfig(
        tf32=job.config.tf32, fp16='FP16' in job.flags, int8='INT8' in job.flags,
        calibrator=job.calibrator, profiles=profiles,
        profiling_verbosity=getattr(trt.ProfilingVerbosity, PROFILING_VERBOSITY),
        memory_pool_limits={trt.MemoryPoolType.WORKSPACE: job.config.workspace_bytes},
        load_timing_cache=timing_cache if timing_cache and Path(timing_cache).is_file()
        else None)

    def config(builder: Any, network: Any) -> Any:
        """Polygraphy's config, read back so the manifest records what was applied."""
        with _quiet_deprecations():
            created = create(builder, network)
        job.flags_in_effect = flags_in_effect(trt, created)
        return created

    build = EngineBytesFromNetwork(NetworkFromOnnxPath(str(job.onnx_path)), config=config,
                                   save_timing_cache=timing_cache)
    with heartbeat(job.progress, 'Polygraphy'), _quiet_deprecations():
        engine_bytes = build()
    if engine_bytes is None:
        raise EngineBuildError('Polygraphy produced no engine')
    _write_file(job.temp_path, memoryview(engine_bytes))


def trtexec_command(job: BuildJob, executable: str) -> List[str]:
    """The trtexec command line for this job (engine to the temp path, no benchmark run)."""
    config = job.config
    command = [executable, f'--onnx={job.onnx_path}', f'--saveEngine={job.temp_path}',
               f'--memPoolSize=workspace:{config.workspace_mib}M', '--skipInference']
    if not config.tf32:
        command.append('--noTF32')  # trtexec, like TensorRT, enables TF32 by default
    command.append(f'--profilingVerbosity={PROFILING_VERBOSITY.lower()}')
    command += [f'--{flag.lower()}' for flag in job.flags]
    if config.timing_cache is not None:
        command.append(f'--timingCacheFile={config.timing_cache}')
    if job.profiles:
        for label in ('min', 'opt', 'max'):
            listed = ','.join(
                f'{_trtexec_name(name)}:{"x".join(str(d) for d in getattr(profile, label))}'
                for name, profile in job.profiles.items())
            command.append(f'--{label}Shapes={listed}')
    if job.calibration is not None:
        command.append(f'--calib={job.calibration.config.cache}')
    return command


def _trtexec_name(name: str) -> str:
    if ',' in name or "'" in name:
        raise EngineBuildError(f'input name {name!r} cannot be passed to trtexec shapes')
    return f"'{name}'" if ':' in name else name


def _build_with_trtexec(job: BuildJob) -> None:
    """`trtexec` in its own process group, output streamed, killed cleanly on timeout."""
    executable = find_trtexec(job.config.trtexec)
    job.flags_in_effect = job.flags + (('TF32',) if job.config.tf32 else ())
    run_trtexec(trtexec_command(job, executable), job.trtexec_timeout_s, job.progress)


def find_trtexec(name: str, jetpack_path: str = JETPACK_TRTEXEC) -> str:
    """`name` on PATH (or as a path); the default name also at JetPack's location."""
    executable = shutil.which(name)
    if executable is None and name == 'trtexec' and os.access(jetpack_path, os.X_OK):
        executable = jetpack_path
    if executable is None:
        raise EngineBuildError(f'trtexec executable {name!r} not found on PATH (nor at '
                               f'{jetpack_path}, where JetPack installs it)')
    return executable


def flags_in_effect(trt: Any, config: Any) -> Tuple[str, ...]:
    """Names of the builder flags set on an IBuilderConfig, in TensorRT's order."""
    return tuple(name for name, flag in trt.BuilderFlag.__members__.items()
                 if config.get_flag(flag))


def attach_calibrator(config: Any, calibrator: Any, profile: Any) -> None:
    """Implicit INT8 by calibration: the only way TensorRT 10.3 offers, deprecated since 10.1.

    `int8_calibrator` and `set_calibration_profile` warn on every call (DeprecationWarning);
    the build says so once instead (see make_entropy_calibrator).
    """
    with _quiet_deprecations():
        if profile is not None:
            config.set_calibration_profile(profile)
        config.int8_calibrator = calibrator


@contextmanager
def _quiet_deprecations() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)
        yield


def run_trtexec(command: List[str], timeout_s: float, progress: BuildProgress) -> None:
    """Run trtexec, streaming its lines; EngineBuildError on timeout or a non-zero exit."""
    progress.emit('running ' + ' '.join(command))
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   text=True, errors='replace', bufsize=1)
    except OSError as err:
        raise EngineBuildError(f'cannot start {command[0]}: {err}') from err
    lines: 'queue.Queue[Optional[str]]' = queue.Queue()
    reader = threading.Thread(target=_pump_lines, args=(process.stdout, lines),
                              name='trtexec-output', daemon=True)
    reader.start()
    tail: deque = deque(maxlen=TRTEXEC_TAIL_LINES)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _kill_group(process)
                raise EngineBuildError(f'trtexec exceeded trtexec_timeout_s = {timeout_s:g} s '
                                       'and was killed (process group: SIGTERM, then SIGKILL)')
            try:
                line = lines.get(timeout=min(HEARTBEAT_S, remaining))
            except queue.Empty:
                progress.emit('trtexec: still building')
                continue
            if line is None:
                break
            tail.append(line)
            progress.emit(f'trtexec: {line}')
        try:
            code = process.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise EngineBuildError(f'trtexec exceeded trtexec_timeout_s = {timeout_s:g} s '
                                   'after closing its output and was killed') from None
    finally:
        if process.poll() is None:
            _kill_group(process)
        reader.join(timeout=KILL_GRACE_S)
        if process.stdout is not None:
            process.stdout.close()
    if code != 0:
        raise EngineBuildError(f'trtexec exited with status {code}; last output:\n'
                               + '\n'.join(tail))


def _pump_lines(stream: Any, lines: 'queue.Queue[Optional[str]]') -> None:
    try:
        for line in stream:
            lines.put(line.rstrip('\n'))
    except (OSError, ValueError):
        pass
    finally:
        lines.put(None)


def _kill_group(process: 'subprocess.Popen[str]') -> None:
    """SIGTERM the whole process group, SIGKILL it after KILL_GRACE_S, then reap."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(timeout=KILL_GRACE_S)
            try:
                os.killpg(process.pid, signal.SIGKILL)  # children that ignored SIGTERM
            except ProcessLookupError:
                pass
            break
        except subprocess.TimeoutExpired:
            continue
    process.wait()


BACKENDS: Dict[str, Callable[[BuildJob], None]] = {
    'builder': _build_with_builder,
    'polygraphy': _build_with_polygraphy,
    'trtexec': _build_with_trtexec,
}


def _read_timing_cache(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        return b''
    except OSError as err:
        raise EngineBuildError(f'timing cache {path} cannot be read: {err}') from err


def _write_file(path: Path, data: memoryview, atomic: bool = False) -> None:
    target = Path(f'{path}.tmp-{os.getpid()}') if atomic else path
    try:
        with open(target, 'wb') as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if atomic:
            os.replace(target, path)
    except BaseException:
        _remove_quietly(target)
        raise


def _remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass

