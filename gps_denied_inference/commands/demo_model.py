"""`demo-model OUT.onnx`: generate and seal the demo corner detector (or the heavy benchmark).

The default is a Harris corner detector expressed as a CNN (keypoint scores and per-cell
gradient descriptors for a grayscale image); `--superpoint` builds a SuperPoint-sized
network with seeded random weights and the same inputs and outputs. Both end in a top-K
selection: `keypoints` [1, K, 3] rows (x, y, score), strongest first, zero rows padding,
and `descriptors` [1, K, C]. `--dense` builds the SuperPoint-sized network exported as
SuperPoint usually is, its dense heads as outputs: `semi` [1, 65, H/8, W/8] (detector logits)
and `desc` [1, 256, H/8, W/8] (6.2 MB per 640x480 frame). Nothing is downloaded.
"""

import argparse
from pathlib import Path
import sys
from typing import Any

from gps_denied_inference.artifacts.sealing import manifest_sidecar_path, sha256_sidecar_path
from gps_denied_inference.demo.models import MAX_KEYPOINTS, write_demo_model


def register(subparsers: Any) -> None:
    """Add the `demo-model` command."""
    parser = subparsers.add_parser(
        'demo-model', help='generate and seal a demo or benchmark ONNX model',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('out', type=Path, metavar='OUT.onnx')
    parser.add_argument('--height', type=int, default=480, help='input height (default 480)')
    parser.add_argument('--width', type=int, default=640, help='input width (default 640)')
    parser.add_argument('--superpoint', action='store_true',
                        help='SuperPoint-sized network with random weights, for benchmarks')
    parser.add_argument('--dense', action='store_true',
                        help='SuperPoint-sized network with its dense heads semi and desc as '
                             'outputs (megabytes per frame), for benchmarks')
    parser.add_argument('--seed', type=int, default=0,
                        help='weights seed for --superpoint and --dense')
    parser.add_argument('--max-keypoints', type=int, default=MAX_KEYPOINTS,
                        help=f'keypoint rows K (default {MAX_KEYPOINTS}; at most H x W; '
                             'TensorRT builds take at most 3840)')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write and seal the model; print what was written."""
    if args.dense and args.superpoint:
        print('demo-model: --dense and --superpoint are two different models; choose one',
              file=sys.stderr)
        return 2
    manifest = write_demo_model(args.out, height=args.height, width=args.width,
                                superpoint=args.superpoint, seed=args.seed,
                                max_keypoints=args.max_keypoints, dense=args.dense)
    print(f'wrote {args.out} ({manifest.extra["model"]}, {args.height}x{args.width}, '
          f'opset {manifest.opset})')
    print(f'  sha256    {manifest.artifact_sha256}')
    print('  outputs   ' + ', '.join(f'{t.name} {list(t.shape)}' for t in manifest.outputs))
    print(f'  wrote     {sha256_sidecar_path(args.out)}')
    print(f'  wrote     {manifest_sidecar_path(args.out)}')
    return 0
