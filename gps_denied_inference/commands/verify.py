"""`verify ARTIFACT`: run the engine gate and print one line per check; exit 0 only if none fail.

The runtime follows the suffix (.onnx: onnxruntime; .engine/.plan: tensorrt) unless
`--runtime` says otherwise. For TensorRT the installed version and the device's compute
capability are detected on this host when not given; where they cannot be, the checks that
need them fail and say so (pass `--tensorrt-version` and `--compute-capability` to verify
an engine for another machine).
"""

import argparse
from pathlib import Path
from typing import Any, List, Optional, Tuple

from gps_denied_inference.artifacts.gate import (
    CheckResult,
    EngineGate,
    FAIL,
    format_plan_prefix,
    GateExpectation,
    PLAN_PREFIX_BYTES,
    read_plan_header,
)
from gps_denied_inference.errors import ConfigError, GpsDeniedInferenceError
from gps_denied_inference.runtimes.settings import RUNTIME_LABELS

ENGINE_SUFFIXES = ('.engine', '.plan')


def register(subparsers: Any) -> None:
    """Add the `verify` command."""
    parser = subparsers.add_parser(
        'verify', help='run every engine-gate check on an artifact and report each',
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('artifact', type=Path)
    parser.add_argument('--expect-sha256', metavar='HEX',
                        help='the pinned digest (as the node parameter M.sha256)')
    parser.add_argument('--runtime', choices=RUNTIME_LABELS)
    parser.add_argument('--tensorrt-version', help='default: the installed TensorRT')
    parser.add_argument('--compute-capability', help="default: this host's GPU")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the report; 0 when no check failed, 1 otherwise."""
    expected, note = _expectation(args)
    results = EngineGate().checks(args.artifact, expected)
    print(format_report(args.artifact, expected, results))
    if expected.runtime == 'tensorrt':
        print(plan_prefix_line(args.artifact))
    if note:
        print(f'note: {note}')
    return 1 if any(r.failed for r in results) else 0


def format_report(path: Path, expected: GateExpectation, results: List[CheckResult]) -> str:
    """One line per check, `STATUS  check  reason`, then the verdict."""
    width = max(len(r.check) for r in results)
    lines = [f'verify {path} (runtime {expected.runtime})']
    lines += [f'{r.status:<4}  {r.check:<{width}}  {r.reason}' for r in results]
    failed = [r.check for r in results if r.status == FAIL]
    lines.append(f'REFUSED: {len(failed)} check(s) failed: {", ".join(failed)}' if failed
                 else 'OK: the gate accepts this artifact')
    return '\n'.join(lines)


def plan_prefix_line(path: Path) -> str:
    """The plan's first 32 bytes, to settle the header layout the gate assumes."""
    try:
        prefix = read_plan_header(path, PLAN_PREFIX_BYTES)
    except OSError as err:
        return f'plan bytes 0-{PLAN_PREFIX_BYTES - 1}: unreadable ({err})'
    return (f'plan bytes 0-{len(prefix) - 1}: {format_plan_prefix(prefix)}\n'
            "  (the gate's layout: b'ftrt' at 0-3, TensorRT major.minor.patch at 24-26)")


def _expectation(args: argparse.Namespace) -> Tuple[GateExpectation, Optional[str]]:
    runtime = args.runtime or _runtime_for(args.artifact)
    pinned = args.expect_sha256.lower() if args.expect_sha256 else None
    version, capability, note = args.tensorrt_version, args.compute_capability, None
    device = None
    if runtime == 'tensorrt' and (version is None or capability is None):
        detected, note = _detect_tensorrt()
        if detected is not None:
            version = version or detected.tensorrt_version
            capability = capability or detected.compute_capability
            if args.compute_capability is None:
                device = detected.device_name
    return GateExpectation(runtime=runtime, pinned_sha256=pinned, tensorrt_version=version,
                           compute_capability=capability, device_name=device), note


def _detect_tensorrt() -> Tuple[Optional[GateExpectation], Optional[str]]:
    """This host's TensorRT version and compute capability, or why they are unknown."""
    try:
        from gps_denied_inference.runtimes.device_probe import tensorrt_gate_expectation
        return tensorrt_gate_expectation(pinned_sha256=None), None
    except (ImportError, GpsDeniedInferenceError) as err:
        return None, (f'TensorRT version / compute capability not detected on this host '
                      f'({err}); pass --tensorrt-version and --compute-capability')


def _runtime_for(path: Path) -> str:
    if path.suffix == '.onnx':
        return 'onnxruntime'
    if path.suffix in ENGINE_SUFFIXES:
        return 'tensorrt'
    raise ConfigError(f'verify {path}: cannot tell the runtime from the suffix '
                      f'{path.suffix!r}; pass --runtime')
