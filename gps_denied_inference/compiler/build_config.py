"""How an engine is compiled: one validated, immutable build config, loaded from JSON.

Example (paths are relative to the config file):

    {"backend": "builder", "precision": "mixed", "int8_source": "calibration",
     "workspace_mib": 1024, "timing_cache": "cache/orin.timing",
     "calibration": {"dataset_dir": "calib/", "cache": "superpoint.calib", "batch_size": 1},
     "profiles": {"image": {"min": [1, 1, 240, 320], "opt": [1, 1, 480, 640],
                            "max": [1, 1, 720, 1280]}},
     "preprocess": {"mean": [0.0], "std": [1.0]}}

`precision`: fp32, fp16, int8 or mixed (INT8 with FP16 fallback). INT8 comes from
calibration over a dataset of images (`int8_source` "calibration", which needs
`calibration.dataset_dir`) or from a model with Q/DQ nodes ("qdq", no calibrator).
`tf32` (default false, as Polygraphy): whether FP32 layers may run as TF32; every backend
applies the same choice.
"""

from dataclasses import asdict, dataclass, field
import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple, Union

from gps_denied_inference.errors import ConfigError
from gps_denied_inference.validation import require

BACKENDS = ('builder', 'polygraphy', 'trtexec')
PRECISIONS = ('fp32', 'fp16', 'int8', 'mixed')
INT8_PRECISIONS = ('int8', 'mixed')
INT8_SOURCES = ('calibration', 'qdq')
MAX_CONFIG_BYTES = 1 << 20
PREPROCESS_KEYS = ('width', 'height', 'color', 'resize', 'mean', 'std', 'scale', 'layout',
                   'dtype', 'pad_value')

Shape = Tuple[int, ...]
PathLike = Union[str, Path]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class CalibrationConfig:
    """Where INT8 calibration images come from and where its trusted cache lives."""

    dataset_dir: str
    cache: str
    batch_size: int = 1
    max_batches: Optional[int] = None

    def __post_init__(self) -> None:
        owner = 'calibration'
        require(isinstance(self.dataset_dir, str) and bool(self.dataset_dir), owner,
                'dataset_dir', self.dataset_dir, 'a directory of calibration images')
        require(isinstance(self.cache, str) and bool(self.cache), owner, 'cache', self.cache,
                'a calibration cache path')
        require(_is_int(self.batch_size) and self.batch_size > 0, owner, 'batch_size',
                self.batch_size, 'an integer > 0')
        if self.max_batches is not None:
            require(_is_int(self.max_batches) and self.max_batches > 0, owner, 'max_batches',
                    self.max_batches, 'an integer > 0 or absent')


@dataclass(frozen=True)
class ShapeProfile:
    """One dynamic input's min/opt/max shapes (min <= opt <= max, axis by axis)."""

    min: Shape
    opt: Shape
    max: Shape

    def check(self, owner: str) -> None:
        """Refuse shapes of mixed rank, non-positive dims or a non-ordered range."""
        shapes = (self.min, self.opt, self.max)
        require(all(isinstance(s, tuple) and s and all(_is_int(d) and d > 0 for d in s)
                    for s in shapes), owner, 'min/opt/max', shapes,
                'three shapes of positive integers')
        require(len({len(s) for s in shapes}) == 1, owner, 'min/opt/max', shapes,
                'shapes of one rank')
        require(all(a <= b <= c for a, b, c in zip(*shapes)), owner, 'min/opt/max', shapes,
                'ordered min <= opt <= max on every axis')


@dataclass(frozen=True)
class BuildConfig:
    """Everything compile_engine needs besides the ONNX model; refuses contradictions."""

    backend: str = 'builder'
    precision: str = 'fp16'
    int8_source: Optional[str] = None
    workspace_mib: int = 1024
    timing_cache: Optional[str] = None
    calibration: Optional[CalibrationConfig] = None
    profiles: Mapping[str, ShapeProfile] = field(default_factory=dict)
    preprocess: Mapping[str, Any] = field(default_factory=dict)
    output: Optional[str] = None
    trtexec: str = 'trtexec'
    tf32: bool = False
    source_sha256: Optional[str] = None

    def __post_init__(self) -> None:
        owner = 'BuildConfig'
        require(self.backend in BACKENDS, owner, 'backend', self.backend,
                'one of ' + ', '.join(BACKENDS))
        require(self.precision in PRECISIONS, owner, 'precision', self.precision,
                'one of ' + ', '.join(PRECISIONS))
        if self.precision in INT8_PRECISIONS:
            require(self.int8_source in INT8_SOURCES, owner, 'int8_source', self.int8_source,
                    f'one of {", ".join(INT8_SOURCES)} for precision {self.precision}')
        else:
            require(self.int8_source is None, owner, 'int8_source', self.int8_source,
                    f'absent for precision {self.precision} (no INT8)')
        if self.int8_source == 'calibration':
            require(self.calibration is not None, owner, 'calibration', self.calibration,
                    'given (dataset_dir, cache) for INT8 by calibration')
        else:
            require(self.calibration is None, owner, 'calibration', self.calibration,
                    'absent unless int8_source is calibration')
        require(_is_int(self.workspace_mib) and self.workspace_mib > 0, owner, 'workspace_mib',
                self.workspace_mib, 'an integer > 0')
        for name in ('timing_cache', 'output'):
            value = getattr(self, name)
            require(value is None or (isinstance(value, str) and bool(value)), owner, name,
                    value, 'a non-empty path or absent')
        require(isinstance(self.tf32, bool), owner, 'tf32', self.tf32, 'true or false')
        require(isinstance(self.trtexec, str) and bool(self.trtexec), owner, 'trtexec',
                self.trtexec, 'the trtexec executable (name on PATH or path)')
        require(isinstance(self.profiles, Mapping), owner, 'profiles', self.profiles,
                'a mapping of input name to min/opt/max')
        for name, profile in self.profiles.items():
            require(isinstance(profile, ShapeProfile), owner, f'profiles.{name}', profile,
                    'a ShapeProfile')
            profile.check(f'profiles.{name}')
        unknown = sorted(set(self.preprocess) - set(PREPROCESS_KEYS))
        require(isinstance(self.preprocess, Mapping) and not unknown, owner, 'preprocess',
                dict(self.preprocess), 'a mapping with keys among ' + ', '.join(PREPROCESS_KEYS))

    @property
    def workspace_bytes(self) -> int:
        """The workspace memory-pool limit in bytes."""
        return self.workspace_mib << 20

    @property
    def uses_calibration(self) -> bool:
        """True when INT8 scales come from calibrating over a dataset."""
        return self.int8_source == 'calibration'

    @property
    def sha256(self) -> str:
        """The loaded file's digest, else a digest of the canonical JSON of these fields."""
        if self.source_sha256 is not None:
            return self.source_sha256
        fields = asdict(self)
        fields.pop('source_sha256')
        text = json.dumps(fields, sort_keys=True, separators=(',', ':'))
        return hashlib.sha256(text.encode('utf-8')).hexdigest()


def load_build_config(path: PathLike) -> BuildConfig:
    """Parse and validate a JSON build config; relative paths resolve against its directory."""
    source = Path(path)
    try:
        raw = source.read_bytes()
    except OSError as err:
        raise ConfigError(f'{source}: cannot read build config: {err}') from err
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f'{source}: build config is larger than {MAX_CONFIG_BYTES} B')
    try:
        data = json.loads(raw.decode('utf-8'))
    except (UnicodeDecodeError, ValueError) as err:
        raise ConfigError(f'{source}: build config is not valid JSON: {err}') from err
    try:
        return build_config_from_dict(data, base_dir=source.parent,
                                      source_sha256=hashlib.sha256(raw).hexdigest())
    except ConfigError as err:
        raise ConfigError(f'{source}: {err}') from err


def build_config_from_dict(data: object, *, base_dir: PathLike = '.',
                           source_sha256: Optional[str] = None) -> BuildConfig:
    """A BuildConfig from parsed JSON; unknown keys and wrong types are refused by name."""
    if not isinstance(data, Mapping):
        raise ConfigError(f'build config must be a JSON object, found {type(data).__name__}')
    known = set(BuildConfig.__dataclass_fields__) - {'source_sha256'}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f'build config keys {unknown} are unknown: expected some of '
                          f'{", ".join(sorted(known))}')
    fields: Dict[str, Any] = dict(data)
    base = Path(base_dir)
    for name in ('timing_cache', 'output'):
        if isinstance(fields.get(name), str) and fields[name]:
            fields[name] = str(base / fields[name])
    trtexec = fields.get('trtexec')
    if isinstance(trtexec, str) and '/' in trtexec:
        fields['trtexec'] = str(base / trtexec)
    if 'calibration' in fields and fields['calibration'] is not None:
        fields['calibration'] = _calibration(fields['calibration'], base)
    fields['profiles'] = _profiles(fields.get('profiles', {}))
    if not isinstance(fields.get('preprocess', {}), Mapping):
        raise ConfigError(f'build config preprocess = {fields["preprocess"]!r} is invalid: '
                          'must be an object')
    preprocess = dict(fields.get('preprocess', {}))
    for key in ('mean', 'std'):
        if isinstance(preprocess.get(key), list):
            preprocess[key] = tuple(preprocess[key])
    fields['preprocess'] = preprocess
    return BuildConfig(**fields, source_sha256=source_sha256)


def _calibration(data: object, base: Path) -> CalibrationConfig:
    if not isinstance(data, Mapping):
        raise ConfigError(f'build config calibration = {data!r} is invalid: must be an object '
                          'with dataset_dir and cache')
    known = set(CalibrationConfig.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    missing = sorted({'dataset_dir', 'cache'} - set(data))
    if unknown or missing:
        raise ConfigError(f'build config calibration: unknown keys {unknown}, missing keys '
                          f'{missing} (expected {", ".join(sorted(known))})')
    fields = dict(data)
    for name in ('dataset_dir', 'cache'):
        if isinstance(fields[name], str) and fields[name]:
            fields[name] = str(base / fields[name])
    return CalibrationConfig(**fields)


def _profiles(data: object) -> Dict[str, ShapeProfile]:
    if not isinstance(data, Mapping):
        raise ConfigError(f'build config profiles = {data!r} is invalid: must map input '
                          'names to {"min": [...], "opt": [...], "max": [...]}')
    profiles = {}
    for name, shapes in data.items():
        if not isinstance(shapes, Mapping) or set(shapes) != {'min', 'opt', 'max'} or not all(
                isinstance(shapes[k], list) for k in ('min', 'opt', 'max')):
            raise ConfigError(f'build config profiles.{name} = {shapes!r} is invalid: must be '
                              '{"min": [...], "opt": [...], "max": [...]}')
        profiles[name] = ShapeProfile(tuple(shapes['min']), tuple(shapes['opt']),
                                      tuple(shapes['max']))
    return profiles
