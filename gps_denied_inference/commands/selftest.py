"""`selftest`: prove the GPU path on this machine, criterion by criterion (docs/selftest.md).

Generates the demo model, builds FP16 and INT8 engines with TensorRT, checks the gate,
load time, budgets against the device, inference latency, threads, release, FP16 against
ONNX Runtime and the CPU cost of a stream synchronize. Prints one line per check:
`STATUS  family/check  criterion | measured ... | limit ...`. Where TensorRT, PyCUDA or a
GPU is missing, those checks are SKIP with the reason (FAIL with --require-gpu); the ONNX
Runtime checks still run. Exit code 0 only when no check failed.
"""

import argparse
from pathlib import Path
import sys
import tempfile
from typing import Any, Dict, List

from gps_denied_inference.errors import ConfigError
from gps_denied_inference.selftest.runner import run_selftest
from gps_denied_inference.selftest.session import SelftestOptions


def register(subparsers: Any) -> None:
    """Add the `selftest` command."""
    defaults = SelftestOptions(work_dir=Path('.'))
    parser = subparsers.add_parser(
        'selftest', help='check the real GPU path on this machine, criterion by criterion',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--params', type=Path, metavar='PARAMS.yaml',
                        help="the node's params file: its models are timed under its budgets "
                             '(default: the demo model on each runtime)')
    parser.add_argument('--json', type=Path, metavar='OUT.json', dest='json_out',
                        help='also write the report as JSON (schema in docs/selftest.md)')
    parser.add_argument('--work-dir', type=Path,
                        help='where models and engines are written (default: a temporary '
                             'folder, removed afterwards)')
    parser.add_argument('--require-gpu', action='store_true',
                        help='a check that cannot run for want of TensorRT, PyCUDA or a GPU '
                             'is a FAIL, not a SKIP (use this on the drone)')
    parser.add_argument('--latency-limit-ms', action='append', default=[],
                        metavar='[NAME=]MS',
                        help='infer p95 limit, for one model (NAME=MS) or the default (MS); '
                             f'repeatable (default {defaults.latency_limit_ms:g} ms)')
    parser.add_argument('--loads', type=int, default=defaults.loads,
                        help='loads timed (default %(default)s)')
    parser.add_argument('--infer-runs', type=int, default=defaults.infer_runs,
                        help='inferences timed per model (default %(default)s)')
    parser.add_argument('--cycles', type=int, default=defaults.cycles,
                        help='load/release cycles (default %(default)s)')
    parser.add_argument('--height', type=int, default=defaults.height,
                        help='demo model input height (default %(default)s)')
    parser.add_argument('--width', type=int, default=defaults.width,
                        help='demo model input width (default %(default)s)')
    parser.add_argument('--device', type=int, default=0, help='CUDA device index')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run every check, print each line as it comes, write the JSON; 0 if nothing failed."""
    for name in ('loads', 'infer_runs', 'cycles'):
        if getattr(args, name) < 1:
            raise ConfigError(f'selftest --{name.replace("_", "-")} = {getattr(args, name)} '
                              'is invalid: must be >= 1')
    default_limit, limits = parse_latency_limits(args.latency_limit_ms)
    if args.params is not None and not args.params.is_file():
        raise ConfigError(f'selftest --params {args.params}: no such file')
    with tempfile.TemporaryDirectory(prefix='gdi-selftest-') as scratch:
        options = SelftestOptions(
            work_dir=args.work_dir or Path(scratch), params=args.params,
            device_index=args.device, height=args.height, width=args.width, loads=args.loads,
            infer_runs=args.infer_runs, cycles=args.cycles,
            latency_limit_ms=default_limit if default_limit is not None
            else SelftestOptions(work_dir=Path('.')).latency_limit_ms,
            latency_limits_ms=limits, require_gpu=args.require_gpu)
        report = run_selftest(options, echo=lambda line: print(line, flush=True))
    print(report.summary_line())
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(report.to_json(), encoding='utf-8')
        print(f'wrote {args.json_out}', file=sys.stderr)
    return report.exit_code


def parse_latency_limits(values: List[str]) -> tuple:
    """(default ms or None, {model: ms}) from '--latency-limit-ms' values."""
    default = None
    limits: Dict[str, float] = {}
    for value in values:
        name, _, number = value.rpartition('=')
        try:
            limit = float(number)
        except ValueError:
            limit = -1.0
        if not limit > 0:
            raise ConfigError(f'selftest --latency-limit-ms {value!r} is invalid: expected MS '
                              'or NAME=MS with MS > 0')
        if name:
            limits[name] = limit
        else:
            default = limit
    return default, limits

