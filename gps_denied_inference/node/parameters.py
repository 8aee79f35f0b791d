"""The node's parameters as one validated NodeConfig, built from plain values (ROS-free).

lifecycle_node.py reads the ROS parameters into a flat {name: value} dict and calls
node_config_from_values; every wrong type, missing or contradictory value becomes a
ConfigError naming the parameter, so a bad parameter fails `configure` and never the process.
"""

from dataclasses import dataclass, field
import difflib
import math
import os
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from gps_denied_inference.errors import ConfigError
from gps_denied_inference.imaging.contract import override_labels, PreprocessOverrides
from gps_denied_inference.resources.thermal import ThermalConfig
from gps_denied_inference.runtimes.settings import (
    CUDA_CONTEXT_OVERHEAD_BYTES,
    RUNTIME_LABELS,
    RuntimeConfig,
)
from gps_denied_inference.validation import GIB, named_as, one_of, positive_number, require

INPUT_QOS = ('sensor_data', 'reliable')


@dataclass(frozen=True)
class ModelConfig:
    """One model the node serves: where its artifact is, how it runs, what it listens to."""

    name: str
    engine_path: str
    input_topic: str
    runtime: str = 'tensorrt'
    sha256: Optional[str] = None
    providers: Tuple[str, ...] = ('CPUExecutionProvider',)
    overrides: PreprocessOverrides = field(default_factory=PreprocessOverrides)
    camera_info_topic: Optional[str] = None
    latency_limit_ms: Optional[float] = None

    def __post_init__(self) -> None:
        owner = self.name
        require(isinstance(self.name, str) and self.name.isidentifier(), 'models', 'name',
                self.name, 'an identifier (letters, digits, underscores)')
        require(isinstance(self.engine_path, str) and bool(self.engine_path), owner,
                'engine_path', self.engine_path, 'a non-empty path')
        require(isinstance(self.input_topic, str) and bool(self.input_topic), owner,
                'input_topic', self.input_topic, 'a non-empty topic name')
        one_of(owner, 'runtime', self.runtime, RUNTIME_LABELS)
        if self.sha256 is not None:
            require(isinstance(self.sha256, str) and len(self.sha256) == 64
                    and all(c in '0123456789abcdef' for c in self.sha256), owner, 'sha256',
                    self.sha256, '64 lowercase hex digits')
        require(isinstance(self.providers, tuple) and len(self.providers) > 0
                and all(isinstance(p, str) and p for p in self.providers), owner, 'providers',
                self.providers, 'a non-empty list of execution provider names')
        if self.latency_limit_ms is not None:
            positive_number(owner, 'latency_limit_ms', self.latency_limit_ms)
        if self.camera_info_topic is not None:
            require(isinstance(self.camera_info_topic, str) and bool(self.camera_info_topic),
                    owner, 'camera_info_topic', self.camera_info_topic,
                    'a non-empty topic name (leave it unset for the one beside input_topic)')


# name -> (default, description); the node declares each with its default's type.
GLOBAL_PARAMETERS: Dict[str, Tuple[Any, str]] = {
    'models': ([''], 'model names; per model M: M.engine_path, M.input_topic, M.runtime, ...'),
    'model_dir': ('', 'directory that relative M.engine_path values are resolved against'),
    'gpu_memory_budget_bytes': (4 * GIB, 'GPU memory the node may hold while active'),
    'host_memory_budget_bytes': (3 * GIB // 2, 'host memory the node may hold while active'),
    'cuda_context_overhead_bytes': (CUDA_CONTEXT_OVERHEAD_BYTES, 'GPU memory reserved for the '
                                    'CUDA context while a TensorRT engine is loaded'),
    'diagnostics_period_s': (1.0, 'period of /diagnostics publication'),
    'thermal.root': ('/sys/class/thermal', 'sysfs thermal root'),
    'thermal.warn_c': (85.0, 'WARN threshold (deg C) where the board has no trip points'),
    'thermal.critical_c': (95.0, 'CRITICAL threshold (deg C) where the board has no trip points'),
    'thermal.throttle': (False, 'halve every worker rate while thermal level is CRITICAL'),
    'autostart': (False, 'configure and activate at start-up (no lifecycle manager)'),
    'input_qos': ('sensor_data', 'input subscription QoS: sensor_data or reliable'),
    'output_depth': (5, 'keep-last depth of the reliable output publishers'),
    'starvation_timeout_s': (2.0, 'WARN when matched publishers deliver no frame this long'),
    'persistent_fault_frames': (5, 'consecutive failed frames that raise a model to ERROR'),
}

REQUIRED = object()

# M.<key> -> default; REQUIRED must be given, None means "take it from the manifest".
# Per-model parameters come from the params file (declared from overrides), never declared
# with defaults, so an unset override stays unset instead of posing as a value.
MODEL_PARAMETERS: Dict[str, Any] = {
    'engine_path': REQUIRED,
    'input_topic': REQUIRED,
    'runtime': 'tensorrt',
    'sha256': None,
    'providers': ['CPUExecutionProvider'],
    'input_width': None,
    'input_height': None,
    'color': None,
    'resize': None,
    'mean': None,
    'std': None,
    'camera_info_topic': None,
    'latency_limit_ms': None,
}

# Parameters rclpy declares on every node (use_sim_time; Jazzy on: the type description
# service; QoS overrides) and the one bondpy declares on its node: never the node's to refuse.
ROS_PARAMETERS = ('use_sim_time', 'start_type_description_service',
                  '/bond_disable_heartbeat_timeout')
ROS_PARAMETER_PREFIXES = ('qos_overrides.',)


@dataclass(frozen=True)
class NodeConfig:
    """Everything the node needs for one configure -> cleanup cycle."""

    models: Tuple[ModelConfig, ...]
    runtime: RuntimeConfig
    thermal: ThermalConfig
    diagnostics_period_s: float = 1.0
    autostart: bool = False
    input_qos: str = 'sensor_data'
    output_depth: int = 5
    starvation_timeout_s: float = 2.0
    persistent_fault_frames: int = 5

    def __post_init__(self) -> None:
        require(len(self.models) > 0, '', 'models', self.models,
                'a non-empty list of model names')
        for name in ('diagnostics_period_s', 'starvation_timeout_s'):
            value = getattr(self, name)
            require(_is_number(value) and value > 0, '', name, value, 'a number > 0')
        require(self.input_qos in INPUT_QOS, '', 'input_qos', self.input_qos,
                'one of ' + ', '.join(INPUT_QOS))
        for name in ('output_depth', 'persistent_fault_frames'):
            value = getattr(self, name)
            require(_is_int(value) and value > 0, '', name, value, 'an integer > 0')


def node_config_from_values(values: Mapping[str, Any]) -> NodeConfig:
    """Build and validate a NodeConfig from flat parameter values (missing ones default)."""
    def get(name: str, kind: str) -> Any:
        value = values.get(name, GLOBAL_PARAMETERS[name][0])
        _check_kind(name, value, kind)
        return value

    names = [n for n in get('models', 'strings') if n]
    require(len(names) > 0, '', 'models', list(get('models', 'strings')),
            'a non-empty list of model names')
    duplicates = sorted({n for n in names if names.count(n) > 1})
    require(not duplicates, '', 'models', names,
            f'free of duplicates (listed twice: {", ".join(duplicates)})')
    for name in names:
        require(name.isidentifier(), '', 'models', name,
                'model names that are identifiers (letters, digits, underscores)')
    refuse_unknown_parameters(values.keys(), names)
    model_dir = get('model_dir', 'str')
    models = tuple(_model_config(name, values, model_dir) for name in names)
    runtime_fields = ('gpu_memory_budget_bytes', 'host_memory_budget_bytes',
                      'cuda_context_overhead_bytes')
    with named_as({name: name for name in runtime_fields}, runtime_fields):
        runtime = RuntimeConfig(**{name: get(name, 'int') for name in runtime_fields})
    thermal_fields = ('root', 'warn_c', 'critical_c', 'throttle')
    with named_as({name: f'thermal.{name}' for name in thermal_fields}, thermal_fields):
        thermal = ThermalConfig(root=get('thermal.root', 'str'),
                                warn_c=float(get('thermal.warn_c', 'number')),
                                critical_c=float(get('thermal.critical_c', 'number')),
                                throttle=get('thermal.throttle', 'bool'))
    return NodeConfig(models=models, runtime=runtime, thermal=thermal,
                      diagnostics_period_s=float(get('diagnostics_period_s', 'number')),
                      autostart=get('autostart', 'bool'),
                      input_qos=get('input_qos', 'str'),
                      output_depth=get('output_depth', 'int'),
                      starvation_timeout_s=float(get('starvation_timeout_s', 'number')),
                      persistent_fault_frames=get('persistent_fault_frames', 'int'))


def refuse_unknown_parameters(given: Iterable[str], models: List[str]) -> None:
    """Refuse every given name that is neither the node's nor ROS's, naming the closest.

    Every override is declared on the node, so a misspelt key (`M.sha265`) would otherwise
    configure fine with its setting silently ignored (for sha256: the digest never checked).
    """
    known = list(GLOBAL_PARAMETERS) + [f'{m}.{key}' for m in models for key in MODEL_PARAMETERS]
    unknown = sorted(name for name in given if name not in known and name not in ROS_PARAMETERS
                     and not name.startswith(ROS_PARAMETER_PREFIXES))
    if unknown:
        raise ConfigError('unknown parameter(s): ' + '; '.join(
            _unknown_parameter(name, known, models) for name in unknown))


def _unknown_parameter(name: str, known: List[str], models: List[str]) -> str:
    model, _, key = name.rpartition('.')
    closest = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    why = f'did you mean {closest[0]}?' if closest else 'no known parameter is close'
    if model and model not in models and key in MODEL_PARAMETERS:
        why = f'model {model!r} is not listed in models ({", ".join(models)})'
    return f'{name} ({why})'


def _model_config(name: str, values: Mapping[str, Any], model_dir: str) -> ModelConfig:
    def get(key: str, kind: str) -> Any:
        full = f'{name}.{key}'
        value = values.get(full, MODEL_PARAMETERS[key])
        if value is REQUIRED:
            raise ConfigError(f'parameter {full} is missing: it is required for model {name!r}')
        if value is not None:
            _check_kind(full, value, kind)
        return value

    engine_path = get('engine_path', 'str')
    require(bool(engine_path), '', f'{name}.engine_path', engine_path, 'non-empty')
    if not os.path.isabs(engine_path):
        require(bool(model_dir), '', f'{name}.engine_path', engine_path,
                'absolute, or relative with model_dir set')
        engine_path = os.path.join(model_dir, engine_path)
    sha256 = get('sha256', 'str')
    labels = override_labels(name)
    with named_as(labels, labels):
        overrides = PreprocessOverrides(
            width=get('input_width', 'int'), height=get('input_height', 'int'),
            color=get('color', 'str'), resize=get('resize', 'str'),
            mean=_floats(get('mean', 'numbers')), std=_floats(get('std', 'numbers')))
    return ModelConfig(name=name, engine_path=engine_path,
                       input_topic=get('input_topic', 'str'), runtime=get('runtime', 'str'),
                       sha256=sha256.lower() if sha256 else None,
                       providers=tuple(get('providers', 'strings')), overrides=overrides,
                       camera_info_topic=get('camera_info_topic', 'str'),
                       latency_limit_ms=_float(get('latency_limit_ms', 'number')))


def camera_info_topic_beside(image_topic: str) -> str:
    """The CameraInfo topic image_transport pairs with a resolved image topic.

    `camera_info` in the image topic's namespace: /camera/image_raw -> /camera/camera_info.
    """
    namespace = [part for part in image_topic.split('/') if part][:-1]
    return '/' + '/'.join(namespace + ['camera_info'])


def _float(value: Optional[Any]) -> Optional[float]:
    return None if value is None else float(value)


def _floats(values: Optional[Any]) -> Optional[Tuple[float, ...]]:
    return None if values is None else tuple(float(v) for v in values)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


_KINDS = {
    'str': ('a string', lambda v: isinstance(v, str)),
    'int': ('an integer', _is_int),
    'number': ('a number', _is_number),
    'bool': ('a bool', lambda v: isinstance(v, bool)),
    'strings': ('a list of strings',
                lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v)),
    'numbers': ('a list of numbers',
                lambda v: isinstance(v, (list, tuple)) and all(_is_number(x) for x in v)),
}


def _check_kind(name: str, value: Any, kind: str) -> None:
    description, ok = _KINDS[kind]
    if not ok(value):
        raise ConfigError(f'parameter {name} = {value!r} has the wrong type: must be '
                          f'{description}, found {type(value).__name__}')
