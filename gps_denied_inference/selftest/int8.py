"""INT8: calibration on generated images, its trusted cache, reuse, rebuild, and refusal.

The calibration cache is trusted only when its sha256 sidecar and dataset-hash sidecar agree
and its first line names the installed TensorRT (compiler/calibration.py); here each rule is
exercised on the device: a first build calibrates and writes all three files, a second
reuses them (its log says so), a changed dataset recalibrates, an intact cache whose first
line names another TensorRT recalibrates, and a sidecar that no longer matches the cache
refuses the build.
"""

from pathlib import Path
from typing import List, Optional

from gps_denied_inference.compiler.build_config import BuildConfig, CalibrationConfig
from gps_denied_inference.compiler.calibration import (
    cache_dataset_path,
    cache_header_problem,
    cache_sha256_path,
    dataset_images,
    dataset_sha256,
    decide_cache,
    read_dataset_sidecar,
    write_trusted_cache,
)
from gps_denied_inference.errors import CalibrationCacheError
from gps_denied_inference.runtimes.device_probe import installed_tensorrt_version
from gps_denied_inference.selftest.build import build_line
from gps_denied_inference.selftest.report import Report
from gps_denied_inference.selftest.session import Session

FAMILY = 'int8'
CALIBRATION_IMAGES = 8
# The version line TensorRT 8.6.1 writes: a cache from another release.
OTHER_TENSORRT_LINE = b'TRT-8601-EntropyCalibration2'
CRITERIA = {
    'calibrate': 'INT8 engine calibrated on generated images',
    'cache-sidecars': 'calibration cache and its two sidecars written and trusted',
    'cache-reused': 'a second build reuses the cache (logged)',
    'dataset-changed': 'a changed dataset recalibrates and re-stamps the cache',
    'other-tensorrt': 'an intact cache written by another TensorRT recalibrates',
    'corrupt-sidecar': 'a cache whose sha256 sidecar disagrees is refused',
}


def run(session: Session, report: Report) -> None:
    """Calibrate, reuse, rebuild, refuse."""
    reason = session.gpu_missing or ('' if session.demo_onnx else 'no demo model')
    if reason:
        for check, criterion in CRITERIA.items():
            report.unavailable(FAMILY, check, criterion, reason)
        return
    folder = session.work_dir / 'int8'
    dataset = folder / 'calibration'
    write_calibration_images(session, dataset, CALIBRATION_IMAGES)
    cache = folder / 'demo.calib'
    config = BuildConfig(precision='int8', int8_source='calibration',
                         calibration=CalibrationConfig(str(dataset), str(cache)))
    engine = folder / 'demo_int8.engine'
    log: List[str] = []
    if build_line(report, 'calibrate', session.demo_onnx, engine, config, FAMILY,
                  CRITERIA['calibrate'], log, session) is None:
        for check in list(CRITERIA)[1:]:
            report.skipped(FAMILY, check, CRITERIA[check], 'the first INT8 build failed')
        return
    version = installed_tensorrt_version()
    digest = dataset_sha256(dataset, dataset_images(dataset))
    files = (cache, cache_sha256_path(cache), cache_dataset_path(cache))
    missing = [p.name for p in files if not p.is_file()]
    decision = None if missing else decide_cache(cache, digest, version)
    report.verdict(decision is not None and decision.reuse, FAMILY, 'cache-sidecars',
                   CRITERIA['cache-sidecars'],
                   ', '.join(f'{p.name} {p.stat().st_size} B' for p in files if p.is_file()),
                   f'three files, trusted for this dataset and TensorRT {version}',
                   f'missing {", ".join(missing)}' if decision is None else decision.reason)
    log.clear()
    build_line(report, 'cache-reused', session.demo_onnx, engine, config, FAMILY,
               CRITERIA['cache-reused'], log, session)
    _log_verdict(report, 'cache-reused', log, 'reusing')
    write_calibration_images(session, dataset, CALIBRATION_IMAGES + 1)
    changed = dataset_sha256(dataset, dataset_images(dataset))
    log.clear()
    if build_line(report, 'dataset-changed', session.demo_onnx, engine, config, FAMILY,
                  CRITERIA['dataset-changed'], log, session) is not None:
        recorded = read_dataset_sidecar(cache_dataset_path(cache))
        report.verdict(any('dataset changed' in line for line in log) and recorded == changed,
                       FAMILY, 'dataset-changed-logged', 'the rebuild logged the change and '
                       're-stamped the dataset sidecar', f'sidecar {recorded[:12]}',
                       f'dataset {changed[:12]}', 'no recalibration logged or stale sidecar')
    _check_other_tensorrt(report, session, engine, config, cache, changed, version)
    sidecar = cache_sha256_path(cache)
    sidecar.write_text('0' * 64 + f'  {cache.name}\n', encoding='utf-8')
    _check_refused(report, session, engine, config, cache, changed, version)


def write_calibration_images(session: Session, folder: Path, count: int) -> None:
    """Frames 0..count-1 of the demo scene as PNGs (rewritten identically each time)."""
    import cv2
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        cv2.imwrite(str(folder / f'frame_{index:03d}.png'), session.demo_frame(index * 10))


def _log_verdict(report: Report, check: str, log: List[str], needle: str) -> None:
    lines = [line for line in log if 'calibration:' in line]
    report.verdict(any(needle in line for line in lines), FAMILY, f'{check}-logged',
                   f'the build log says "{needle}"', lines[0] if lines else 'no calibration line',
                   needle, 'the cache decision was not logged as expected')


def _check_other_tensorrt(report: Report, session: Session, engine: Path, config: BuildConfig,
                          cache: Path, digest: str, version: Optional[str]) -> None:
    """Re-seal the cache under another TensorRT's version line; the build must recalibrate."""
    data = cache.read_bytes()
    rest = data.split(b'\n', 1)[1] if b'\n' in data else b''
    write_trusted_cache(cache, OTHER_TENSORRT_LINE + b'\n' + rest, digest)
    log: List[str] = []
    if build_line(report, 'other-tensorrt', session.demo_onnx, engine, config, FAMILY,
                  CRITERIA['other-tensorrt'], log, session) is None:
        return
    first_line = cache.read_bytes().split(b'\n', 1)[0].decode('ascii', errors='replace')
    restamped = cache_header_problem(cache.read_bytes(), version) is None
    report.verdict(any('not from this TensorRT' in line for line in log) and restamped,
                   FAMILY, 'other-tensorrt-logged', 'the rebuild logged the foreign cache and '
                   f'rewrote its first line for TensorRT {version}', f'first line {first_line}',
                   f'names TensorRT {version}', 'the foreign cache was trusted or kept')


def _check_refused(report: Report, session: Session, engine: Path, config: BuildConfig,
                   cache: Path, digest: str, version: Optional[str]) -> None:
    from gps_denied_inference.compiler.engine_build import compile_engine
    criterion = CRITERIA['corrupt-sidecar']
    try:
        decide_cache(cache, digest, version)
    except CalibrationCacheError:
        pass
    else:
        report.failed(FAMILY, 'corrupt-sidecar', criterion, 'decide_cache trusted it',
                      'refused', 'a corrupt sidecar was trusted')
        return
    try:
        compile_engine(session.demo_onnx, config, output=engine.with_name('refused.engine'),
                       progress=lambda line: None, device_index=session.options.device_index,
                       etc_root=session.options.etc_root, proc_root=session.options.proc_root)
    except CalibrationCacheError as err:
        report.passed(FAMILY, 'corrupt-sidecar', criterion, f'refused: {err}', 'refused')
        return
    report.failed(FAMILY, 'corrupt-sidecar', criterion, 'the build went ahead', 'refused',
                  'an engine was built from an untrusted cache')
