"""The sealed-artifact manifest: what a model was built with, for, and what it needs.

Written beside every artifact as `<artifact>.manifest.json`. Parsing is strict: an unknown
schema version, a missing field or a wrong type is a ManifestError, never a guess.
"""

from dataclasses import asdict, dataclass, field, replace
import json
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from gps_denied_inference.errors import ConfigError, ManifestError
from gps_denied_inference.imaging.contract import PreprocessContract
from gps_denied_inference.runtimes.settings import RUNTIME_LABELS

SCHEMA_VERSION = 1
PRECISIONS = ('fp32', 'fp16', 'int8', 'mixed')
TENSOR_MODES = ('input', 'output')
SUPPORTED_DTYPES = ('float32', 'float16', 'int32', 'int64', 'int8', 'uint8', 'bool')

Shape = Tuple[int, ...]


@dataclass(frozen=True)
class TensorSpec:
    """One I/O tensor; -1 in `shape` marks a dynamic dimension bounded by `profile`."""

    name: str
    mode: str
    dtype: str
    shape: Shape
    profile: Optional[Tuple[Shape, Shape, Shape]] = None

    def __post_init__(self) -> None:
        _check(isinstance(self.name, str) and bool(self.name), 'tensor.name', self.name)
        _check(self.mode in TENSOR_MODES, f'tensor {self.name}.mode', self.mode)
        _check(self.dtype in SUPPORTED_DTYPES, f'tensor {self.name}.dtype', self.dtype)
        _check(all(isinstance(d, int) and (d > 0 or d == -1) for d in self.shape),
               f'tensor {self.name}.shape', self.shape)
        if self.profile is not None:
            _check(len(self.profile) == 3 and all(len(s) == len(self.shape)
                                                  for s in self.profile),
                   f'tensor {self.name}.profile', self.profile)
        else:
            _check(self.is_static, f'tensor {self.name}.profile', 'missing for dynamic shape')

    @property
    def is_static(self) -> bool:
        """True when no dimension is dynamic."""
        return all(d > 0 for d in self.shape)

    @property
    def max_shape(self) -> Shape:
        """The largest shape this tensor can take (the profile's max when dynamic)."""
        return self.shape if self.profile is None else tuple(self.profile[2])

    @property
    def max_nbytes(self) -> int:
        """Bytes of the largest buffer this tensor needs."""
        return int(np.prod(self.max_shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class DeviceInfo:
    """The device an artifact was built for; compute capability as 'major.minor'."""

    name: str
    compute_capability: Optional[str] = None
    l4t_release: Optional[str] = None
    jetpack_release: Optional[str] = None


@dataclass(frozen=True)
class MemoryPrediction:
    """Predicted bytes: weights (~ engine size), activations (context memory), I/O buffers."""

    weights_bytes: int
    activation_bytes: int
    io_buffer_bytes: int

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            _check(isinstance(value, int) and value >= 0, f'memory.{name}', value)

    @property
    def total_bytes(self) -> int:
        """Everything an active engine holds."""
        return self.weights_bytes + self.activation_bytes + self.io_buffer_bytes


@dataclass(frozen=True)
class Manifest:
    """Everything the gate, the budget and I/O setup need to know without loading the model."""

    artifact_sha256: str
    runtime: str
    runtime_version: str
    device: DeviceInfo
    precision: str
    tensors: Tuple[TensorSpec, ...]
    memory: MemoryPrediction
    preprocess: PreprocessContract
    opset: Optional[int] = None
    builder_flags: Tuple[str, ...] = ()
    source_onnx_sha256: Optional[str] = None
    build_config_sha256: Optional[str] = None
    schema_version: int = SCHEMA_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.schema_version == SCHEMA_VERSION, 'schema_version', self.schema_version)
        _check(_is_digest(self.artifact_sha256) or self.artifact_sha256 == '',
               'artifact_sha256', self.artifact_sha256)
        _check(self.runtime in RUNTIME_LABELS, 'runtime', self.runtime)
        _check(isinstance(self.runtime_version, str) and bool(self.runtime_version),
               'runtime_version', self.runtime_version)
        _check(self.precision in PRECISIONS, 'precision', self.precision)
        for name in ('source_onnx_sha256', 'build_config_sha256'):
            value = getattr(self, name)
            _check(value is None or _is_digest(value), name, value)
        names = [t.name for t in self.tensors]
        _check(len(names) == len(set(names)), 'tensors', 'duplicate tensor names')
        _check(any(t.mode == 'input' for t in self.tensors), 'tensors', 'no input tensor')
        _check(any(t.mode == 'output' for t in self.tensors), 'tensors', 'no output tensor')

    @property
    def inputs(self) -> Tuple[TensorSpec, ...]:
        """Input tensors in declaration order."""
        return tuple(t for t in self.tensors if t.mode == 'input')

    @property
    def outputs(self) -> Tuple[TensorSpec, ...]:
        """Output tensors in declaration order."""
        return tuple(t for t in self.tensors if t.mode == 'output')

    def with_digest(self, sha256: str) -> 'Manifest':
        """Return a copy naming the sealed artifact's digest."""
        return replace(self, artifact_sha256=sha256)

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON-ready dict (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))

    def to_json(self) -> str:
        """Stable, human-readable JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + '\n'

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> 'Manifest':
        """Parse strictly; any missing field or wrong type raises ManifestError."""
        try:
            if not isinstance(data, Mapping):
                raise ManifestError(f'manifest must be a JSON object, found {type(data).__name__}')
            if data.get('schema_version') != SCHEMA_VERSION:
                raise ManifestError(f"manifest schema_version: expected {SCHEMA_VERSION}, "
                                    f"found {data.get('schema_version')!r}")
            fields = dict(data)
            fields['device'] = DeviceInfo(**fields['device'])
            fields['memory'] = MemoryPrediction(**fields['memory'])
            fields['tensors'] = tuple(_tensor_from_dict(t) for t in fields['tensors'])
            pre = dict(fields['preprocess'])
            pre['mean'] = tuple(pre['mean'])
            pre['std'] = tuple(pre['std'])
            fields['preprocess'] = PreprocessContract(**pre)
            fields['builder_flags'] = tuple(fields.get('builder_flags', ()))
            return cls(**fields)
        except ManifestError:
            raise
        except (KeyError, TypeError, ValueError, ConfigError) as err:
            raise ManifestError(f'manifest is malformed: {type(err).__name__}: {err}') from err

    @classmethod
    def from_json(cls, text: str) -> 'Manifest':
        """Parse a manifest file's text."""
        try:
            data = json.loads(text)
        except ValueError as err:
            raise ManifestError(f'manifest is not valid JSON: {err}') from err
        return cls.from_dict(data)


def _tensor_from_dict(data: Mapping[str, Any]) -> TensorSpec:
    fields = dict(data)
    fields['shape'] = tuple(fields['shape'])
    if fields.get('profile') is not None:
        fields['profile'] = tuple(tuple(s) for s in fields['profile'])
    return TensorSpec(**fields)


def _is_digest(value: object) -> bool:
    return (isinstance(value, str) and len(value) == 64
            and all(c in '0123456789abcdef' for c in value))


def _check(ok: bool, name: str, value: object) -> None:
    if not ok:
        raise ManifestError(f'manifest field {name} is invalid: {value!r}')
