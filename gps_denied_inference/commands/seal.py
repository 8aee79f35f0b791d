"""`seal ARTIFACT`: write the `.sha256` and `.manifest.json` sidecars beside a model artifact.

An `.onnx` model is described from the file itself (I/O, opset, precision, memory); the
`--preprocess-*` flags override the contract derived from its input. A TensorRT engine
cannot be read without TensorRT and a GPU, so what the manifest needs comes from flags, and
a required flag left out is named in the refusal. The plan header must agree with
`--tensorrt-version` where its layout is known.
"""

import argparse
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from gps_denied_inference.artifacts.gate import (
    PLAN_HEADER_KNOWN_MAJORS,
    plan_header_version,
    read_plan_header,
    version_triple,
)
from gps_denied_inference.artifacts.manifest import (
    DeviceInfo,
    Manifest,
    MemoryPrediction,
    PRECISIONS,
    Shape,
    TensorSpec,
)
from gps_denied_inference.artifacts.sealing import (
    contract_for_input,
    manifest_from_onnx,
    manifest_sidecar_path,
    seal_artifact,
    sha256_file,
    sha256_sidecar_path,
)
from gps_denied_inference.errors import ConfigError, ManifestError
from gps_denied_inference.imaging.contract import (
    COLOR_ORDERS,
    LAYOUTS,
    RESIZE_MODES,
    TENSOR_DTYPES,
)
from gps_denied_inference.runtimes.settings import RUNTIME_LABELS

ENGINE_SUFFIXES = ('.engine', '.plan')
PREPROCESS_FIELDS = ('width', 'height', 'color', 'resize', 'mean', 'std', 'scale', 'layout',
                     'dtype')
FLAGS = {name: f'--preprocess-{name}' for name in PREPROCESS_FIELDS}
ENGINE_FLAGS = ('tensorrt_version', 'compute_capability', 'device_name', 'l4t_release',
                'jetpack_release', 'precision', 'builder_flags', 'tensors', 'activation_bytes',
                'weights_bytes', 'source_onnx', 'build_config')
REQUIRED_ENGINE_FLAGS = ('tensorrt_version', 'compute_capability', 'device_name', 'precision',
                         'tensors', 'activation_bytes')
_FLAG_NAMES = {'tensors': '--tensor', 'builder_flags': '--builder-flag'}


def register(subparsers: Any) -> None:
    """Add the `seal` command."""
    parser = subparsers.add_parser(
        'seal', help='write the sha256 and manifest sidecars of a model artifact',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('artifact', type=Path, help='.onnx model or TensorRT .engine/.plan')
    parser.add_argument('--runtime', choices=RUNTIME_LABELS,
                        help='default: onnxruntime for .onnx, tensorrt for .engine/.plan')
    contract = parser.add_argument_group('preprocessing contract (override the derived one)')
    contract.add_argument('--preprocess-width', type=int)
    contract.add_argument('--preprocess-height', type=int)
    contract.add_argument('--preprocess-color', choices=COLOR_ORDERS)
    contract.add_argument('--preprocess-resize', choices=RESIZE_MODES)
    contract.add_argument('--preprocess-mean', type=_floats, metavar='M[,M,M]')
    contract.add_argument('--preprocess-std', type=_floats, metavar='S[,S,S]')
    contract.add_argument('--preprocess-scale', type=float)
    contract.add_argument('--preprocess-layout', choices=LAYOUTS)
    contract.add_argument('--preprocess-dtype', choices=TENSOR_DTYPES)
    engine = parser.add_argument_group('TensorRT engine fields (engines only)')
    engine.add_argument('--tensorrt-version', help='TensorRT that built it, major.minor.patch')
    engine.add_argument('--compute-capability', help="the GPU's, major.minor (Orin: 8.7)")
    engine.add_argument('--device-name', help='the device it was built on (Jetson: the model '
                        'string in /proc/device-tree/model)')
    engine.add_argument('--l4t-release')
    engine.add_argument('--jetpack-release')
    engine.add_argument('--precision', choices=PRECISIONS)
    engine.add_argument('--builder-flag', dest='builder_flags', action='append', default=None,
                        metavar='FLAG', help='repeat for each builder flag used')
    engine.add_argument('--tensor', dest='tensors', action='append', default=None,
                        type=_tensor, metavar='NAME:MODE:DTYPE:SHAPE[:MIN/OPT/MAX]',
                        help='repeat per I/O tensor, e.g. image:input:float32:1x1x480x640')
    engine.add_argument('--activation-bytes', type=int,
                        help='execution context memory (trtexec reports it)')
    engine.add_argument('--weights-bytes', type=int, help='default: the engine file size')
    engine.add_argument('--source-onnx', type=Path, help='the ONNX it was built from')
    engine.add_argument('--build-config', type=Path, help='the build config it was built with')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Seal the artifact; print the digest and the sidecars written."""
    path: Path = args.artifact
    runtime = args.runtime or _runtime_for(path)
    preprocess = {name: getattr(args, f'preprocess_{name}') for name in PREPROCESS_FIELDS
                  if getattr(args, f'preprocess_{name}') is not None}
    if runtime == 'onnxruntime':
        given = [_flag(name) for name in ENGINE_FLAGS if getattr(args, name) is not None]
        if given:
            raise ConfigError(f'seal {path}: {", ".join(given)} apply only to TensorRT '
                              'engines; an ONNX model is described from the file itself')
        manifest = manifest_from_onnx(path, preprocess=preprocess, preprocess_labels=FLAGS)
    else:
        manifest = _engine_manifest(path, args, preprocess)
    sealed = seal_artifact(path, manifest)
    print(f'sealed {path} for {sealed.runtime} {sealed.runtime_version}')
    print(f'  sha256    {sealed.artifact_sha256}')
    print(f'  memory    weights {sealed.memory.weights_bytes} B, activations '
          f'{sealed.memory.activation_bytes} B, I/O {sealed.memory.io_buffer_bytes} B')
    print(f'  wrote     {sha256_sidecar_path(path)}')
    print(f'  wrote     {manifest_sidecar_path(path)}')
    return 0


def _flag(name: str) -> str:
    return _FLAG_NAMES.get(name, '--' + name.replace('_', '-'))


def _runtime_for(path: Path) -> str:
    if path.suffix == '.onnx':
        return 'onnxruntime'
    if path.suffix in ENGINE_SUFFIXES:
        return 'tensorrt'
    raise ConfigError(f'seal {path}: cannot tell the runtime from the suffix '
                      f'{path.suffix!r}; pass --runtime')


def _engine_manifest(path: Path, args: argparse.Namespace,
                     preprocess: Dict[str, Any]) -> Manifest:
    missing = [_flag(name) for name in REQUIRED_ENGINE_FLAGS if getattr(args, name) is None]
    if missing:
        raise ConfigError(f'seal {path}: a TensorRT engine cannot be read without TensorRT; '
                          f'give {", ".join(missing)}')
    if not path.is_file():
        raise ManifestError(f'seal {path}: not a regular file')
    _check_plan_header(path, args.tensorrt_version)
    tensors = tuple(args.tensors)
    inputs = [t for t in tensors if t.mode == 'input']
    if not inputs or len(inputs) == len(tensors):
        raise ConfigError(f'seal {path}: --tensor must name at least one input and one output')
    weights = args.weights_bytes if args.weights_bytes is not None else path.stat().st_size
    try:
        return Manifest(
            artifact_sha256='', runtime='tensorrt', runtime_version=args.tensorrt_version,
            device=DeviceInfo(name=args.device_name,
                              compute_capability=args.compute_capability,
                              l4t_release=args.l4t_release,
                              jetpack_release=args.jetpack_release),
            precision=args.precision, tensors=tensors,
            memory=MemoryPrediction(weights_bytes=weights,
                                    activation_bytes=args.activation_bytes,
                                    io_buffer_bytes=sum(t.max_nbytes for t in tensors)),
            preprocess=contract_for_input(inputs[0], str(path), preprocess, FLAGS),
            builder_flags=tuple(args.builder_flags or ()),
            source_onnx_sha256=_digest_of(args.source_onnx),
            build_config_sha256=_digest_of(args.build_config))
    except ConfigError as err:
        raise ManifestError(f'seal {path}: {err}') from err


def _check_plan_header(path: Path, tensorrt_version: str) -> None:
    """Refuse to seal an engine whose plan header names another TensorRT release."""
    try:
        major = version_triple(tensorrt_version)[0]
    except ValueError as err:
        raise ConfigError(f'--tensorrt-version {tensorrt_version!r} is not '
                          'major.minor.patch') from err
    if major not in PLAN_HEADER_KNOWN_MAJORS:
        return
    try:
        embedded = plan_header_version(read_plan_header(path))
    except ValueError as err:
        raise ManifestError(f'seal {path}: not a TensorRT plan: {err}') from err
    if embedded != version_triple(tensorrt_version):
        found = '.'.join(str(v) for v in embedded)
        raise ConfigError(f'seal {path}: --tensorrt-version {tensorrt_version} disagrees with '
                          f'the plan header, which names TensorRT {found}')


def _digest_of(path: Optional[Path]) -> Optional[str]:
    if path is None:
        return None
    if not path.is_file():
        raise ConfigError(f'{path}: not a regular file')
    return sha256_file(path)


def _floats(text: str) -> Tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(','))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f'{text!r} is not a comma-separated list of '
                                         'numbers') from err


def _shape(text: str) -> Shape:
    return tuple(int(d) for d in text.split('x'))


def _tensor(text: str) -> TensorSpec:
    parts = text.split(':')
    if len(parts) not in (4, 5):
        raise argparse.ArgumentTypeError(
            f'{text!r} is not NAME:MODE:DTYPE:SHAPE[:MIN/OPT/MAX] (e.g. '
            'image:input:float32:1x1x480x640)')
    name, mode, dtype, shape = parts[:4]
    try:
        profile: Optional[Tuple[Shape, Shape, Shape]] = None
        if len(parts) == 5:
            shapes: List[Shape] = [_shape(s) for s in parts[4].split('/')]
            if len(shapes) != 3:
                raise ValueError('the profile needs MIN/OPT/MAX')
            profile = (shapes[0], shapes[1], shapes[2])
        return TensorSpec(name=name, mode=mode, dtype=dtype, shape=_shape(shape),
                          profile=profile)
    except (ValueError, ManifestError) as err:
        raise argparse.ArgumentTypeError(f'--tensor {text!r}: {err}') from err
