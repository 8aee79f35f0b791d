"""`compile MODEL.onnx BUILD_CONFIG.json`: build a TensorRT engine and seal it beside itself.

The build config (JSON) chooses the backend (builder, polygraphy or trtexec), the precision
(fp32, fp16, int8, mixed), INT8 by calibration or from a Q/DQ model, workspace, timing cache
and dynamic-shape profiles; it is validated before anything is built. Progress (elapsed time
and the backend's own output) goes to stderr. The engine goes to `--output`, else the
config's `output`, else MODEL.engine; with its `.sha256` and `.manifest.json` sidecars.
"""

import argparse
from pathlib import Path
from typing import Any

from gps_denied_inference.artifacts.sealing import manifest_sidecar_path, sha256_sidecar_path
from gps_denied_inference.compiler.build_config import load_build_config
from gps_denied_inference.compiler.engine_build import compile_engine, default_output
from gps_denied_inference.runtimes.settings import RuntimeConfig


def register(subparsers: Any) -> None:
    """Add the `compile` command."""
    parser = subparsers.add_parser(
        'compile', help='build a TensorRT engine from ONNX and seal it',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('model', type=Path, help='the ONNX model')
    parser.add_argument('build_config', type=Path, help='the JSON build config')
    parser.add_argument('--output', type=Path, help='engine path (default: see above)')
    parser.add_argument('--trtexec-timeout-s', type=float,
                        default=RuntimeConfig().trtexec_timeout_s,
                        help='kill trtexec after this many seconds (default: %(default)s)')
    parser.add_argument('--device', type=int, default=0, help='CUDA device index')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate the config, build, seal; print what was written."""
    config = load_build_config(args.build_config)
    limits = RuntimeConfig(trtexec_timeout_s=args.trtexec_timeout_s)
    output = args.output or (Path(config.output) if config.output else
                             default_output(args.model))
    manifest = compile_engine(args.model, config, output=output,
                              trtexec_timeout_s=limits.trtexec_timeout_s,
                              device_index=args.device)
    print(f'compiled {output} with TensorRT {manifest.runtime_version} for '
          f'{manifest.device.name} (compute capability {manifest.device.compute_capability})')
    print(f'  precision {manifest.precision} ({", ".join(manifest.builder_flags) or "fp32"})')
    print(f'  sha256    {manifest.artifact_sha256}')
    print(f'  memory    weights {manifest.memory.weights_bytes} B, activations '
          f'{manifest.memory.activation_bytes} B, I/O {manifest.memory.io_buffer_bytes} B')
    for tensor in manifest.tensors:
        profile = '' if tensor.profile is None else ' profile ' + ' / '.join(
            'x'.join(str(d) for d in shape) for shape in tensor.profile)
        print(f'  {tensor.mode:<6}    {tensor.name} {tensor.dtype} '
              f'{"x".join(str(d) for d in tensor.shape)}{profile}')
    print(f'  wrote     {sha256_sidecar_path(output)}')
    print(f'  wrote     {manifest_sidecar_path(output)}')
    return 0
