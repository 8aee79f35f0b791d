"""Sealed artifacts: a model file plus its `.sha256` and `.manifest.json` sidecars.

The `.sha256` sidecar is in `sha256sum` format, so `sha256sum -c model.engine.sha256` works
on the drone without this package. Both sidecars are written atomically (temp file, fsync,
os.replace): a power cut while sealing leaves the old sidecar or the new one, never half.
"""

import hashlib
import os
from pathlib import Path
import re
import tempfile
from typing import Any, Dict, Mapping, Optional, Tuple, Union

import numpy as np

from gps_denied_inference.artifacts.manifest import (
    DeviceInfo,
    Manifest,
    MemoryPrediction,
    SUPPORTED_DTYPES,
    TensorSpec,
)
from gps_denied_inference.errors import ConfigError, ManifestError
from gps_denied_inference.imaging.contract import PreprocessContract
from gps_denied_inference.validation import named_as

PathLike = Union[str, Path]
SHA256_SUFFIX = '.sha256'
MANIFEST_SUFFIX = '.manifest.json'
# Big enough for any honest sidecar, small enough that a swapped-in huge file costs nothing.
MAX_SHA256_SIDECAR_BYTES = 4096
_CHUNK_BYTES = 1 << 20
# An ONNX model is not built for a device; its manifest says so instead of naming one.
PORTABLE_DEVICE = 'portable (ONNX)'
# `sha256sum` writes '<hex>  <name>' (text mode) or '<hex> *<name>' (binary mode).
_SIDECAR_LINE = re.compile(r'^([0-9a-fA-F]{64}) [ *](\S.*)$')


def sha256_file(path: PathLike) -> str:
    """Lowercase hex SHA-256 of a file, read in 1 MiB chunks (flat memory for any size)."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for chunk in iter(lambda: stream.read(_CHUNK_BYTES), b''):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_sidecar_path(artifact: PathLike) -> Path:
    """'<artifact>.sha256'."""
    return Path(str(artifact) + SHA256_SUFFIX)


def manifest_sidecar_path(artifact: PathLike) -> Path:
    """'<artifact>.manifest.json'."""
    return Path(str(artifact) + MANIFEST_SUFFIX)


def format_sha256_line(digest: str, file_name: str) -> str:
    """One `sha256sum` line: '<hex>  <file name>' and a newline."""
    return f'{digest}  {file_name}\n'


def parse_sha256_line(text: str, source: str) -> Tuple[str, str]:
    """Parse a sidecar's text into (lowercase hex, file name); ManifestError if malformed."""
    lines = text.splitlines()
    if len(lines) != 1:
        raise ManifestError(f'{source}: expected exactly one line "<sha256>  <file name>", '
                            f'found {len(lines)} lines')
    match = _SIDECAR_LINE.match(lines[0])
    if match is None:
        raise ManifestError(f'{source}: expected "<64 hex digits>  <file name>", '
                            f'found {lines[0][:100]!r}')
    return match.group(1).lower(), match.group(2)


def read_sha256_sidecar(path: PathLike) -> Tuple[str, str]:
    """Read a `.sha256` sidecar into (lowercase hex, file name); ManifestError if malformed."""
    try:
        with open(path, 'rb') as stream:
            raw = stream.read(MAX_SHA256_SIDECAR_BYTES + 1)
    except OSError as err:
        raise ManifestError(f'{path}: cannot read sha256 sidecar: {err}') from err
    if len(raw) > MAX_SHA256_SIDECAR_BYTES:
        raise ManifestError(f'{path}: sha256 sidecar is larger than '
                            f'{MAX_SHA256_SIDECAR_BYTES} B; not a sha256sum line')
    try:
        text = raw.decode('utf-8')
    except UnicodeDecodeError as err:
        raise ManifestError(f'{path}: sha256 sidecar is not UTF-8 text: {err}') from err
    return parse_sha256_line(text, str(path))


def write_atomically(path: PathLike, data: Union[str, bytes]) -> None:
    """Write text or bytes via a temp file in the same directory, fsync, os.replace, fsync dir."""
    target = Path(path)
    payload = data.encode('utf-8') if isinstance(data, str) else data
    fd, temp = tempfile.mkstemp(prefix=f'.{target.name}.', suffix='.tmp', dir=target.parent)
    try:
        with os.fdopen(fd, 'wb') as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, target)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def seal_artifact(artifact: PathLike, manifest: Manifest) -> Manifest:
    """Digest the artifact, write both sidecars, return the manifest naming that digest.

    The manifest is written first and the `.sha256` last, so an interrupted seal leaves
    sidecars that disagree, which the gate refuses.
    """
    path = Path(artifact)
    if not path.is_file():
        raise ManifestError(f'{path}: cannot seal: not a regular file')
    sealed = manifest.with_digest(sha256_file(path))
    write_atomically(manifest_sidecar_path(path), sealed.to_json())
    write_atomically(sha256_sidecar_path(path),
                     format_sha256_line(sealed.artifact_sha256, path.name))
    return sealed


def onnxruntime_version() -> str:
    """The installed ONNX Runtime's version, read from package metadata (nothing imported)."""
    from importlib import metadata
    for distribution in ('onnxruntime', 'onnxruntime-gpu'):
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    raise ManifestError('cannot record the ONNX Runtime version: neither onnxruntime nor '
                        'onnxruntime-gpu is installed')


def manifest_from_onnx(path: PathLike, *, preprocess: Optional[Mapping[str, Any]] = None,
                       extra: Optional[Mapping[str, Any]] = None,
                       preprocess_labels: Optional[Mapping[str, str]] = None) -> Manifest:
    """Describe an ONNX model for the `onnxruntime` runtime, reading everything from the file.

    I/O tensors, opset and precision come from the model; the preprocessing contract is
    derived from the first input's shape and dtype, with `preprocess` overriding any of
    its fields (named in refusals by `preprocess_labels`). Memory: weights are the
    initializer bytes; activations are the sum of every intermediate tensor whose shape
    inference gives a static shape (no buffer reuse assumed, so an upper bound); I/O buffers
    are the I/O tensor bytes. Returns the unsealed manifest (empty digest): pass it to
    seal_artifact. Dynamic I/O dimensions are refused, because a manifest needs their
    min/opt/max profile and an ONNX file does not carry one.
    """
    import onnx

    source = str(path)
    try:
        model = onnx.load(source, load_external_data=False)
        _refuse_external_data(model, source)
        onnx.checker.check_model(model)
    except ManifestError:
        raise
    except (OSError, ValueError, onnx.checker.ValidationError) as err:
        raise ManifestError(f'{source}: not a valid ONNX model: {err}') from err
    except Exception as err:  # noqa: B902 - protobuf's DecodeError has no stable import path
        raise ManifestError(f'{source}: cannot parse ONNX model: {type(err).__name__}: '
                            f'{err}') from err
    graph = model.graph
    initializer_names = {t.name for t in graph.initializer}
    tensors = tuple(
        [_onnx_tensor_spec(v, 'input', source) for v in graph.input
         if v.name not in initializer_names]
        + [_onnx_tensor_spec(v, 'output', source) for v in graph.output])
    opset = next((o.version for o in model.opset_import if o.domain in ('', 'ai.onnx')), None)
    weights = _onnx_weight_bytes(model)
    activations, counted, unknown = _onnx_activation_bytes(model, source)
    inputs = [t for t in tensors if t.mode == 'input']
    if not inputs:
        raise ManifestError(f'{source}: the model has no input tensor')
    contract = contract_for_input(inputs[0], source, dict(preprocess or {}), preprocess_labels)
    notes = {'activation_estimate': (
        f'sum of {counted} intermediate tensors with a static inferred shape, no buffer reuse '
        f'assumed; {unknown} of unknown shape not counted'),
        'producer': f'{model.producer_name} {model.producer_version}'.strip()}
    notes.update(extra or {})
    try:
        return Manifest(
            artifact_sha256='', runtime='onnxruntime', runtime_version=onnxruntime_version(),
            device=DeviceInfo(name=PORTABLE_DEVICE), precision=_onnx_precision(model),
            tensors=tensors,
            memory=MemoryPrediction(weights_bytes=weights, activation_bytes=activations,
                                    io_buffer_bytes=sum(t.max_nbytes for t in tensors)),
            preprocess=contract, opset=opset, extra=notes)
    except ConfigError as err:
        raise ManifestError(f'{source}: {err}') from err


def _refuse_external_data(model: Any, source: str) -> None:
    import onnx

    external = [t.name for t in model.graph.initializer
                if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise ManifestError(f'{source}: initializers {external[:5]} are stored as external '
                            'data, which a seal over the .onnx file alone would not cover')


def _onnx_tensor_spec(value: Any, mode: str, source: str) -> TensorSpec:
    from onnx import helper

    tensor_type = value.type.tensor_type
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)).name
    except (KeyError, TypeError) as err:
        raise ManifestError(f'{source}: {mode} {value.name!r} has an unsupported element '
                            f'type {tensor_type.elem_type}') from err
    if dtype not in SUPPORTED_DTYPES:
        raise ManifestError(f'{source}: {mode} {value.name!r} has dtype {dtype}, expected one '
                            f'of {", ".join(SUPPORTED_DTYPES)}')
    shape = []
    for axis, dim in enumerate(tensor_type.shape.dim):
        if not dim.HasField('dim_value') or dim.dim_value <= 0:
            raise ManifestError(
                f'{source}: {mode} {value.name!r} dimension {axis} is dynamic '
                f'({dim.dim_param or "unnamed"}); seal needs static I/O shapes (export the '
                'model with fixed shapes)')
        shape.append(int(dim.dim_value))
    return TensorSpec(name=value.name, mode=mode, dtype=dtype, shape=tuple(shape))


def _tensor_proto_bytes(tensor: Any) -> int:
    from onnx import helper

    count = int(np.prod(tensor.dims, dtype=np.int64)) if len(tensor.dims) else 1
    return count * np.dtype(helper.tensor_dtype_to_np_dtype(tensor.data_type)).itemsize


def _onnx_weight_bytes(model: Any) -> int:
    total = sum(_tensor_proto_bytes(t) for t in model.graph.initializer)
    for node in model.graph.node:
        if node.op_type == 'Constant':
            total += sum(_tensor_proto_bytes(a.t) for a in node.attribute if a.name == 'value')
    return total


def _onnx_activation_bytes(model: Any, source: str) -> Tuple[int, int, int]:
    import onnx
    from onnx import helper

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except Exception as err:  # noqa: B902 - onnx raises its own InferenceError subclasses
        raise ManifestError(f'{source}: ONNX shape inference failed: {err}') from err
    io_names = {v.name for v in model.graph.input} | {v.name for v in model.graph.output}
    total = counted = unknown = 0
    for value in inferred.graph.value_info:
        if value.name in io_names:
            continue
        tensor_type = value.type.tensor_type
        dims = [d.dim_value if d.HasField('dim_value') else -1 for d in tensor_type.shape.dim]
        if not tensor_type.HasField('shape') or any(d <= 0 for d in dims):
            unknown += 1
            continue
        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)).itemsize
        total += int(np.prod(dims, dtype=np.int64)) * itemsize
        counted += 1
    return total, counted, unknown


def _onnx_precision(model: Any) -> str:
    import onnx

    kinds = {t.data_type for t in model.graph.initializer}
    floats = kinds & {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16}
    if kinds & {onnx.TensorProto.INT8, onnx.TensorProto.UINT8}:
        return 'int8'
    if floats == {onnx.TensorProto.FLOAT16}:
        return 'fp16'
    if len(floats) > 1:
        return 'mixed'
    return 'fp32'


def contract_for_input(spec: TensorSpec, source: str, changes: Dict[str, Any],
                       labels: Optional[Mapping[str, str]] = None) -> PreprocessContract:
    """The preprocessing contract an image input implies; `changes` override any field.

    A refused change is named by `labels` (field -> the user's name for it; default
    `preprocess.<field>`), and a contract whose tensors the input cannot take is refused.
    """
    labels = labels or {name: f'preprocess.{name}' for name in changes}
    shape = spec.shape
    derived: Dict[str, Any] = {}
    if len(shape) == 4 and shape[1] in (1, 3):
        derived.update(layout='NCHW', height=shape[2], width=shape[3], channels=shape[1])
    elif len(shape) == 4 and shape[3] in (1, 3):
        derived.update(layout='NHWC', height=shape[1], width=shape[2], channels=shape[3])
    channels = derived.pop('channels', None)
    if channels is not None:
        derived['color'] = 'mono' if channels == 1 else 'rgb'
    derived['dtype'] = spec.dtype
    if spec.dtype == 'uint8':
        derived['scale'] = 1.0
    fields = {**derived, **changes}
    missing = [name for name in ('width', 'height', 'layout') if name not in fields]
    if missing:
        raise ManifestError(f'{source}: input {spec.name!r} shape {shape} is not a batch-1 '
                            f'image (N,1|3,H,W or N,H,W,1|3), the only tensors the node makes; '
                            f'export the model with such an input, or where a dimension is '
                            f'dynamic give the preprocessing {", ".join(missing)} explicitly')
    try:
        with named_as(labels, changes):
            contract = PreprocessContract(**fields)
    except (ConfigError, TypeError) as err:
        raise ManifestError(f'{source}: preprocessing contract for input {spec.name!r}: '
                            f'{err}') from err
    why = contract.mismatch(spec.shape, spec.dtype, spec.profile)
    if why is not None:
        given = ', '.join(labels.get(name, name) for name in changes)
        raise ManifestError(f'{source}: input {spec.name!r}: {why}'
                            + (f' (given: {given})' if given else ''))
    return contract
