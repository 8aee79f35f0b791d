"""Validated, immutable configuration: a bad value fails here, naming the field and the rule."""

from dataclasses import dataclass, field
import math
from typing import Optional, Tuple

from gps_denied_inference.errors import ConfigError

GIB = 1024 ** 3
RUNTIME_LABELS = ('tensorrt', 'onnxruntime')
COLOR_ORDERS = ('mono', 'rgb', 'bgr')
RESIZE_MODES = ('stretch', 'letterbox')
LAYOUTS = ('NCHW', 'NHWC')
TENSOR_DTYPES = ('float32', 'float16', 'uint8')
INPUT_QOS = ('sensor_data', 'reliable')


def require(ok: bool, owner: str, name: str, value: object, rule: str) -> None:
    """Raise ConfigError naming `owner.name`, its value and the rule it broke, unless ok."""
    if not ok:
        raise ConfigError(f'{owner}.{name} = {value!r} is invalid: must be {rule}')


def _positive_int(owner: str, name: str, value: object) -> None:
    require(isinstance(value, int) and not isinstance(value, bool) and value > 0,
            owner, name, value, 'an integer > 0')


def _positive_number(owner: str, name: str, value: object) -> None:
    require(isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and value > 0, owner, name, value, 'a finite number > 0')


def _one_of(owner: str, name: str, value: object, allowed: Tuple[str, ...]) -> None:
    require(value in allowed, owner, name, value, 'one of ' + ', '.join(allowed))


@dataclass(frozen=True)
class RuntimeConfig:
    """Budgets and limits every inference strategy obeys."""

    gpu_memory_budget_bytes: int = 4 * GIB
    host_memory_budget_bytes: int = 3 * GIB // 2
    trtexec_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        _positive_int('RuntimeConfig', 'gpu_memory_budget_bytes', self.gpu_memory_budget_bytes)
        _positive_int('RuntimeConfig', 'host_memory_budget_bytes',
                      self.host_memory_budget_bytes)
        _positive_number('RuntimeConfig', 'trtexec_timeout_s', self.trtexec_timeout_s)


@dataclass(frozen=True)
class PreprocessContract:
    """What a model expects of its input: out = ((pixel * scale) - mean) / std, in layout."""

    width: int
    height: int
    color: str = 'mono'
    resize: str = 'stretch'
    mean: Tuple[float, ...] = (0.0,)
    std: Tuple[float, ...] = (1.0,)
    scale: float = 1.0 / 255.0
    layout: str = 'NCHW'
    dtype: str = 'float32'
    pad_value: int = 0

    def __post_init__(self) -> None:
        owner = 'PreprocessContract'
        _positive_int(owner, 'width', self.width)
        _positive_int(owner, 'height', self.height)
        _one_of(owner, 'color', self.color, COLOR_ORDERS)
        _one_of(owner, 'resize', self.resize, RESIZE_MODES)
        _one_of(owner, 'layout', self.layout, LAYOUTS)
        _one_of(owner, 'dtype', self.dtype, TENSOR_DTYPES)
        _positive_number(owner, 'scale', self.scale)
        require(isinstance(self.pad_value, int) and 0 <= self.pad_value <= 255,
                owner, 'pad_value', self.pad_value, 'an integer in [0, 255]')
        for name in ('mean', 'std'):
            values = getattr(self, name)
            require(isinstance(values, tuple) and len(values) in (1, self.channels)
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                            and math.isfinite(v) for v in values),
                    owner, name, values,
                    f'a tuple of 1 or {self.channels} finite numbers')
        require(all(v > 0 for v in self.std), owner, 'std', self.std, 'all > 0')

    @property
    def channels(self) -> int:
        """Number of colour channels the model input has."""
        return 1 if self.color == 'mono' else 3

    @property
    def input_shape(self) -> Tuple[int, int, int, int]:
        """The batch-1 tensor shape this contract produces."""
        if self.layout == 'NCHW':
            return (1, self.channels, self.height, self.width)
        return (1, self.height, self.width, self.channels)


@dataclass(frozen=True)
class ThermalConfig:
    """Where thermal zones are read and when they count as hot (when the board has no trips)."""

    root: str = '/sys/class/thermal'
    warn_c: float = 85.0
    critical_c: float = 95.0
    throttle: bool = False
    poll_period_s: float = 1.0

    def __post_init__(self) -> None:
        owner = 'ThermalConfig'
        require(isinstance(self.root, str) and bool(self.root), owner, 'root', self.root,
                'a non-empty path')
        _positive_number(owner, 'warn_c', self.warn_c)
        _positive_number(owner, 'critical_c', self.critical_c)
        require(self.critical_c > self.warn_c, owner, 'critical_c', self.critical_c,
                f'greater than warn_c ({self.warn_c})')
        require(isinstance(self.throttle, bool), owner, 'throttle', self.throttle, 'a bool')
        _positive_number(owner, 'poll_period_s', self.poll_period_s)


@dataclass(frozen=True)
class PreprocessOverrides:
    """Per-model parameters that override the manifest's preprocessing contract."""

    width: Optional[int] = None
    height: Optional[int] = None
    color: Optional[str] = None
    resize: Optional[str] = None
    mean: Optional[Tuple[float, ...]] = None
    std: Optional[Tuple[float, ...]] = None

    def __post_init__(self) -> None:
        owner = 'PreprocessOverrides'
        for name in ('width', 'height'):
            if getattr(self, name) is not None:
                _positive_int(owner, name, getattr(self, name))
        if self.color is not None:
            _one_of(owner, 'color', self.color, COLOR_ORDERS)
        if self.resize is not None:
            _one_of(owner, 'resize', self.resize, RESIZE_MODES)

    def apply(self, contract: PreprocessContract) -> PreprocessContract:
        """Return the contract with every set override applied (validated again)."""
        changes = {k: v for k, v in vars(self).items() if v is not None}
        return PreprocessContract(**{**vars(contract), **changes})


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

    def __post_init__(self) -> None:
        owner = f'models.{self.name}'
        require(isinstance(self.name, str) and self.name.isidentifier(), 'models', 'name',
                self.name, 'an identifier (letters, digits, underscores)')
        require(isinstance(self.engine_path, str) and bool(self.engine_path), owner,
                'engine_path', self.engine_path, 'a non-empty path')
        require(isinstance(self.input_topic, str) and bool(self.input_topic), owner,
                'input_topic', self.input_topic, 'a non-empty topic name')
        _one_of(owner, 'runtime', self.runtime, RUNTIME_LABELS)
        if self.sha256 is not None:
            require(isinstance(self.sha256, str) and len(self.sha256) == 64
                    and all(c in '0123456789abcdef' for c in self.sha256), owner, 'sha256',
                    self.sha256, '64 lowercase hex digits')
        require(isinstance(self.providers, tuple) and len(self.providers) > 0
                and all(isinstance(p, str) and p for p in self.providers), owner, 'providers',
                self.providers, 'a non-empty list of execution provider names')
