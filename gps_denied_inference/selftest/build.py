"""Build: the demo model generated, sealed and verified; FP16 engines built on this device.

The ONNX half (generate, seal, `verify`, a flipped byte refused) runs on any host. The engine
half builds the demo model with the builder API (and trtexec / Polygraphy where installed),
prints the plan's first 32 bytes with the gate's verdict on them (this settles the header
layout the gate assumes), reports the gate's device-name check, checks the seal, `verify`,
and that a flipped byte is refused.
"""

import importlib.util
from pathlib import Path
import shutil
import time
from typing import List, Optional, Sequence

from gps_denied_inference.artifacts.gate import (
    CheckResult,
    EngineGate,
    FAIL,
    format_plan_prefix,
    GateExpectation,
    plan_header_layout,
    PLAN_PREFIX_BYTES,
    read_plan_header,
)
from gps_denied_inference.artifacts.manifest import Manifest
from gps_denied_inference.artifacts.sealing import (
    manifest_sidecar_path,
    sha256_file,
    sha256_sidecar_path,
)
from gps_denied_inference.compiler.build_config import BuildConfig
from gps_denied_inference.selftest.report import Report, SKIP
from gps_denied_inference.selftest.session import Session

FAMILY = 'build'
TRTEXEC_PATHS = ('/usr/src/tensorrt/bin/trtexec',)


def run(session: Session, report: Report) -> None:
    """Generate and seal the demo model, then build and check its engines."""
    from gps_denied_inference.demo.models import write_demo_model
    options = session.options
    onnx_path = session.work_dir / 'demo.onnx'
    started = time.monotonic()
    manifest = write_demo_model(onnx_path, height=options.height, width=options.width)
    session.demo_onnx = onnx_path
    report.passed(FAMILY, 'onnx-model', 'demo model generated and sealed',
                  f'{onnx_path.name} {options.height}x{options.width}, sha256 '
                  f'{manifest.artifact_sha256[:12]}, {time.monotonic() - started:.1f} s')
    expected = GateExpectation('onnxruntime')
    check_verify(report, 'onnx-verify', onnx_path, expected)
    check_flipped_byte(report, 'onnx-flipped-byte', onnx_path, expected,
                       session.work_dir / 'flipped-onnx')
    gpu = session.gpu
    engine_checks = ('engine-builder', 'plan-header', 'engine-device', 'engine-sealed',
                     'engine-verify', 'engine-flipped-byte')
    if gpu is None:
        for check in engine_checks + ('engine-trtexec', 'engine-polygraphy'):
            report.unavailable(FAMILY, check, _CRITERIA[check], session.gpu_missing)
        return
    engine = session.work_dir / 'demo_fp16.engine'
    built = build_line(report, 'engine-builder', onnx_path, engine, BuildConfig(),
                       session=session)
    if built is None:
        for check in engine_checks[1:]:
            report.skipped(FAMILY, check, _CRITERIA[check], 'the builder-API build failed')
    else:
        session.demo_engine = engine
        expectation = gpu.expectation()
        check_plan_header(report, engine, expectation)
        check_device_name(report, engine, expectation)
        check_sealed(report, engine)
        check_verify(report, 'engine-verify', engine, expectation)
        check_flipped_byte(report, 'engine-flipped-byte', engine, expectation,
                           session.work_dir / 'flipped-engine')
    trtexec = find_trtexec()
    if trtexec is None:
        report.skipped(FAMILY, 'engine-trtexec', _CRITERIA['engine-trtexec'],
                       'trtexec is not on PATH nor at ' + ', '.join(TRTEXEC_PATHS))
    else:
        build_line(report, 'engine-trtexec', onnx_path,
                   session.work_dir / 'demo_fp16_trtexec.engine',
                   BuildConfig(backend='trtexec', trtexec=trtexec), session=session)
    if importlib.util.find_spec('polygraphy') is None:
        report.skipped(FAMILY, 'engine-polygraphy', _CRITERIA['engine-polygraphy'],
                       'Polygraphy is not installed')
    else:
        build_line(report, 'engine-polygraphy', onnx_path,
                   session.work_dir / 'demo_fp16_polygraphy.engine',
                   BuildConfig(backend='polygraphy'), session=session)


_CRITERIA = {
    'engine-builder': 'FP16 engine built with the builder API',
    'engine-trtexec': 'FP16 engine built with trtexec',
    'engine-polygraphy': 'FP16 engine built with Polygraphy',
    'plan-header': "plan header's first 32 bytes match the gate's expectation",
    'engine-device': "the device named in the engine's manifest is this one (gate's check)",
    'engine-sealed': 'engine sealed: sha256 sidecar and manifest agree with the file',
    'engine-verify': '`verify` accepts the engine on this host',
    'engine-flipped-byte': 'an engine with one flipped byte is refused by the gate',
}


def build_line(report: Report, check: str, onnx_path: Path, out: Path,
               config: BuildConfig, family: str = FAMILY,
               criterion: Optional[str] = None,
               lines: Optional[List[str]] = None,
               session: Optional[Session] = None) -> Optional[Manifest]:
    """Compile one engine; a PASS with its time and size, or a FAIL with the error.

    With a session, the build runs on its device and reads its /etc and /proc (the device
    name the manifest records), as the gate's expectation does.
    """
    from gps_denied_inference.compiler.engine_build import compile_engine
    from gps_denied_inference.errors import GpsDeniedInferenceError
    log: List[str] = [] if lines is None else lines
    started = time.monotonic()
    try:
        places = {} if session is None else {
            'device_index': session.options.device_index,
            'etc_root': session.options.etc_root, 'proc_root': session.options.proc_root}
        manifest = compile_engine(onnx_path, config, output=out, progress=log.append,
                                  **places)
    except GpsDeniedInferenceError as err:
        report.failed(family, check, criterion or _CRITERIA[check], 'build refused or failed',
                      reason=str(err))
        return None
    report.passed(family, check, criterion or _CRITERIA[check],
                  f'{out.name}: {time.monotonic() - started:.1f} s, '
                  f'{manifest.memory.weights_bytes} B, activations '
                  f'{manifest.memory.activation_bytes} B')
    return manifest


def find_trtexec() -> Optional[str]:
    """Trtexec on PATH, else JetPack's /usr/src/tensorrt/bin/trtexec, else None."""
    found = shutil.which('trtexec')
    if found:
        return found
    return next((path for path in TRTEXEC_PATHS if Path(path).is_file()), None)


def gate_verdict(path: Path, expectation: GateExpectation, check: str) -> CheckResult:
    """The gate's own result of one of its checks on the file (as `verify` runs them)."""
    return next(r for r in EngineGate().checks(path, expectation) if r.check == check)


def describe_plan_prefix(path: Path) -> str:
    """The plan's first 32 bytes (as `verify` prints them) and what the gate's layout reads."""
    prefix = read_plan_header(path, PLAN_PREFIX_BYTES)
    layout = plan_header_layout(prefix)
    found = ('not the known layout' if layout is None else
             f"b'ftrt' at 0-3, TensorRT {'.'.join(str(v) for v in layout)} at 24-26")
    return f'{format_plan_prefix(prefix)} ({found})'


def report_gate_verdict(report: Report, check: str, verdict: CheckResult, measured: str,
                        limit: str) -> None:
    """A gate check as a line: its SKIP stays a SKIP, its reason is the line's reason."""
    if verdict.status == SKIP:
        report.add_line(FAMILY, check, SKIP, _CRITERIA[check], measured, limit,
                        f'gate: {verdict.reason}')
    else:
        report.verdict(verdict.status != FAIL, FAMILY, check, _CRITERIA[check], measured,
                       limit, f'gate: {verdict.reason}')


def check_plan_header(report: Report, engine: Path, expectation: GateExpectation) -> None:
    """Print the header and report the gate's verdict on it."""
    report_gate_verdict(report, 'plan-header', gate_verdict(engine, expectation, 'plan-header'),
                        describe_plan_prefix(engine),
                        f'TensorRT {expectation.tensorrt_version}')


def check_device_name(report: Report, engine: Path, expectation: GateExpectation) -> None:
    """The device the manifest says built the engine against this one, as the gate sees it."""
    built = Manifest.from_json(manifest_sidecar_path(engine).read_text(encoding='utf-8'))
    report_gate_verdict(report, 'engine-device', gate_verdict(engine, expectation, 'device'),
                        f'manifest {built.device.name!r}, this device '
                        f'{expectation.device_name!r}',
                        'the same device (a name that cannot tell it apart is a SKIP)')


def check_sealed(report: Report, engine: Path) -> None:
    """Both sidecars present and naming the engine's actual digest."""
    criterion = _CRITERIA['engine-sealed']
    digest = sha256_file(engine)
    sidecars = (sha256_sidecar_path(engine), manifest_sidecar_path(engine))
    missing = [p.name for p in sidecars if not p.is_file()]
    if missing:
        report.failed(FAMILY, 'engine-sealed', criterion, f'missing {", ".join(missing)}',
                      'both sidecars')
        return
    recorded = Manifest.from_json(sidecars[1].read_text(encoding='utf-8')).artifact_sha256
    listed = sidecars[0].read_text(encoding='utf-8').split()[0]
    report.verdict(recorded == digest == listed, FAMILY, 'engine-sealed', criterion,
                   f'file {digest[:12]}, sidecar {listed[:12]}, manifest {recorded[:12]}',
                   'all three equal', 'the seal does not match the file')


def check_verify(report: Report, check: str, path: Path, expected: GateExpectation,
                 family: str = FAMILY) -> bool:
    """Every gate check (as `verify` runs them): PASS when none fails."""
    results = EngineGate().checks(path, expected)
    failed = [r for r in results if r.failed]
    report.verdict(not failed, family, check, f'`verify {path.name}` accepts it',
                   _summarise(results), 'no gate check fails',
                   '; '.join(f'{r.check}: {r.reason}' for r in failed))
    return not failed


def check_flipped_byte(report: Report, check: str, path: Path, expected: GateExpectation,
                       folder: Path, family: str = FAMILY) -> None:
    """A sealed copy with one byte flipped must fail the gate's digest check."""
    copy = flipped_copy(path, folder)
    results = EngineGate().checks(copy, expected)
    refused = [r.check for r in results if r.failed]
    report.verdict('digest' in refused, family, check,
                   f'{path.name} with byte {copy.stat().st_size // 2} flipped is refused',
                   f'refused by {", ".join(refused)}' if refused else 'accepted',
                   'digest check fails', 'the gate accepted a modified artifact')


def flipped_copy(path: Path, folder: Path) -> Path:
    """Copy the artifact and its two sidecars into `folder`, flip the middle byte."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / path.name
    for source, target in ((path, copy),
                           (sha256_sidecar_path(path), sha256_sidecar_path(copy)),
                           (manifest_sidecar_path(path), manifest_sidecar_path(copy))):
        shutil.copyfile(source, target)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    return copy


def _summarise(results: Sequence[CheckResult]) -> str:
    counts = {status: sum(1 for r in results if r.status == status)
              for status in ('PASS', 'FAIL', 'SKIP')}
    return ', '.join(f'{count} {status}' for status, count in counts.items() if count)
