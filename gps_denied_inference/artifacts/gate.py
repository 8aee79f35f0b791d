"""The engine gate: every artifact is checked, in a fixed order, before anything loads it.

GPU-free and ROS-free: it reads the file, its two sidecars and at most a TensorRT plan's
header, so a truncated, swapped, tampered or wrong-release artifact is refused before any GPU
call. `validate` raises at the first failed check; `admit` also returns the hashed bytes the
runtimes load; `checks` runs every check for `verify`. The plan-header layout is not
documented, so that check refuses only on positive evidence and SKIPs an unknown layout
(docs/tensorrt.md).
"""

from dataclasses import dataclass
import hashlib
import os
from pathlib import Path
import re
import stat
from typing import Callable, List, Optional, Tuple, Union

from gps_denied_inference.artifacts.manifest import Manifest
from gps_denied_inference.artifacts.sealing import (
    manifest_sidecar_path,
    read_sha256_sidecar,
    sha256_file,
    sha256_sidecar_path,
)
from gps_denied_inference.errors import EngineGateError, ManifestError
from gps_denied_inference.runtimes.settings import RUNTIME_LABELS
from gps_denied_inference.validation import require

PASS = 'PASS'
FAIL = 'FAIL'
SKIP = 'SKIP'
CHECKS = ('file', 'sha256-sidecar', 'digest', 'manifest', 'manifest-digest', 'pinned-digest',
          'runtime', 'tensorrt-version', 'compute-capability', 'device', 'plan-header')

PLAN_MAGIC = b'ftrt'
PLAN_VERSION_OFFSET = 24
PLAN_HEADER_BYTES = PLAN_VERSION_OFFSET + 3
PLAN_HEADER_KNOWN_MAJORS = (8, 10)
PLAN_PREFIX_BYTES = 32
# A manifest is a few kB; refusing anything far larger keeps a swapped-in file from
# costing memory in flight.
MAX_MANIFEST_BYTES = 1 << 20

_TRT_VERSION = re.compile(r'^\d+\.\d+\.\d+(\.\d+)?$')
_COMPUTE_CAPABILITY = re.compile(r'^\d+\.\d+$')
_DIGEST = re.compile(r'^[0-9a-f]{64}$')

PathLike = Union[str, Path]


@dataclass(frozen=True)
class GateExpectation:
    """What the loader needs the artifact to be; TensorRT fields describe this host."""

    runtime: str
    pinned_sha256: Optional[str] = None
    tensorrt_version: Optional[str] = None
    compute_capability: Optional[str] = None
    device_name: Optional[str] = None

    def __post_init__(self) -> None:
        owner = 'GateExpectation'
        require(self.runtime in RUNTIME_LABELS, owner, 'runtime', self.runtime,
                'one of ' + ', '.join(RUNTIME_LABELS))
        if self.pinned_sha256 is not None:
            require(isinstance(self.pinned_sha256, str) and bool(_DIGEST.match(
                self.pinned_sha256)), owner, 'pinned_sha256', self.pinned_sha256,
                '64 lowercase hex digits')
        if self.tensorrt_version is not None:
            require(isinstance(self.tensorrt_version, str) and bool(_TRT_VERSION.match(
                self.tensorrt_version)), owner, 'tensorrt_version', self.tensorrt_version,
                'major.minor.patch')
        if self.compute_capability is not None:
            require(isinstance(self.compute_capability, str) and bool(_COMPUTE_CAPABILITY.match(
                self.compute_capability)), owner, 'compute_capability',
                self.compute_capability, 'major.minor')
        if self.device_name is not None:
            require(isinstance(self.device_name, str) and bool(self.device_name.strip()),
                    owner, 'device_name', self.device_name, 'a non-empty device name')


@dataclass(frozen=True)
class CheckResult:
    """One gate check's outcome; expected/found are set on a FAIL."""

    check: str
    status: str
    reason: str
    expected: object = None
    found: object = None
    detail: str = ''

    @property
    def failed(self) -> bool:
        """True for a FAIL (a SKIP is not a failure)."""
        return self.status == FAIL


def version_triple(version: str) -> Tuple[int, ...]:
    """'10.3.0' or '10.3.0.30' -> (10, 3, 0): the build number does not change the format."""
    return tuple(int(part) for part in version.split('.')[:3])


def read_plan_header(path: PathLike, size: int = PLAN_HEADER_BYTES) -> bytes:
    """The first `size` bytes of a file (by default as many as the plan-header check reads)."""
    with open(path, 'rb') as stream:
        return stream.read(size)


def plan_header_layout(header: bytes) -> Optional[Tuple[int, int, int]]:
    """The version a header names if it is in the known layout, else None (layout unknown).

    Known layout: b'ftrt' at bytes 0-3 and a plausible version (major 5-99, minor and patch
    below 100) at bytes 24-26. Anything else is no evidence either way.
    """
    try:
        major, minor, patch = plan_header_version(header)
    except ValueError:
        return None
    if not (5 <= major < 100 and minor < 100 and patch < 100):
        return None
    return major, minor, patch


def format_plan_prefix(data: bytes) -> str:
    """Bytes as 'hex  |ascii|' (dots for unprintable), for `verify` to print."""
    text = ''.join(chr(b) if 32 <= b < 127 else '.' for b in data)
    return f'{data.hex(" ")}  |{text}|'


def plan_header_version(header: bytes) -> Tuple[int, int, int]:
    """The TensorRT version a plan header names; ValueError when it is not a known header."""
    if len(header) < PLAN_HEADER_BYTES:
        raise ValueError(f'{len(header)} B, shorter than a plan header ({PLAN_HEADER_BYTES} B)')
    if header[:len(PLAN_MAGIC)] != PLAN_MAGIC:
        raise ValueError(f'magic {header[:len(PLAN_MAGIC)]!r}, not {PLAN_MAGIC!r}')
    major, minor, patch = header[PLAN_VERSION_OFFSET:PLAN_VERSION_OFFSET + 3]
    return major, minor, patch


class _Inspection:
    """What earlier checks learned, for the later checks that depend on it."""

    def __init__(self, path: Path, expected: GateExpectation, keep_bytes: bool = False) -> None:
        self.path = path
        self.expected = expected
        self.keep_bytes = keep_bytes
        self.file_ok = False
        self.sidecar_digest: Optional[str] = None
        self.digest: Optional[str] = None
        self.data: Optional[bytes] = None
        self.manifest: Optional[Manifest] = None

    @property
    def is_tensorrt(self) -> bool:
        return self.expected.runtime == 'tensorrt'


def _fail(check: str, expected: object, found: object, detail: str = '') -> CheckResult:
    text = f'expected {expected}, found {found}' + (f' ({detail})' if detail else '')
    return CheckResult(check, FAIL, text, expected, found, detail)


def _check_file(run: _Inspection) -> CheckResult:
    path = run.path
    try:
        info = os.stat(path)
    except FileNotFoundError:
        found = 'a dangling symlink' if os.path.islink(path) else 'no such file'
        return _fail('file', 'a regular, readable, non-empty file', found)
    except OSError as err:
        return _fail('file', 'a regular, readable, non-empty file', f'stat failed: {err}')
    if stat.S_ISDIR(info.st_mode):
        return _fail('file', 'a regular, readable, non-empty file', 'a directory')
    if not stat.S_ISREG(info.st_mode):
        return _fail('file', 'a regular, readable, non-empty file',
                     f'not a regular file (mode {stat.filemode(info.st_mode)})')
    if info.st_size == 0:
        return _fail('file', 'a regular, readable, non-empty file', 'an empty file (0 B)')
    try:
        with open(path, 'rb') as stream:
            stream.read(1)
    except OSError as err:
        return _fail('file', 'a regular, readable, non-empty file', f'unreadable: {err}')
    run.file_ok = True
    return CheckResult('file', PASS, f'regular file, {info.st_size} B')


def _check_sha256_sidecar(run: _Inspection) -> CheckResult:
    sidecar = sha256_sidecar_path(run.path)
    if not sidecar.is_file():
        return _fail('sha256-sidecar', f'{sidecar.name} beside the artifact', 'no such file')
    try:
        digest, name = read_sha256_sidecar(sidecar)
    except ManifestError as err:
        return _fail('sha256-sidecar', 'one line "<sha256>  <file name>"', 'a malformed file',
                     str(err))
    if os.path.basename(name) != run.path.name:
        return _fail('sha256-sidecar', f'a digest of {run.path.name!r}',
                     f'a digest of {name!r}', 'the sidecar is for another file')
    run.sidecar_digest = digest
    return CheckResult('sha256-sidecar', PASS, f'{sidecar.name} names {name!r}')


def _check_digest(run: _Inspection) -> CheckResult:
    if not run.file_ok:
        return CheckResult('digest', SKIP, 'no readable file to digest')
    try:
        if run.keep_bytes:
            run.data = run.path.read_bytes()
            run.digest = hashlib.sha256(run.data).hexdigest()
        else:
            run.digest = sha256_file(run.path)
    except OSError as err:
        return _fail('digest', 'a readable file', f'read error: {err}')
    if run.sidecar_digest is None:
        return CheckResult('digest', SKIP,
                           f'no usable sidecar to compare; file sha256 is {run.digest}')
    if run.digest != run.sidecar_digest:
        return _fail('digest', f'sha256 {run.sidecar_digest} (sidecar)',
                     f'sha256 {run.digest} (file)',
                     'the file is not the one that was sealed: truncated, altered or swapped')
    return CheckResult('digest', PASS, f'sha256 {run.digest} matches the sidecar')


def _check_manifest(run: _Inspection) -> CheckResult:
    sidecar = manifest_sidecar_path(run.path)
    expected = f'a valid {sidecar.name}'
    if not sidecar.is_file():
        return _fail('manifest', expected, 'no such file')
    try:
        with open(sidecar, 'rb') as stream:
            raw = stream.read(MAX_MANIFEST_BYTES + 1)
    except OSError as err:
        return _fail('manifest', expected, f'unreadable: {err}')
    if len(raw) > MAX_MANIFEST_BYTES:
        return _fail('manifest', f'at most {MAX_MANIFEST_BYTES} B', 'more than that')
    try:
        run.manifest = Manifest.from_json(raw.decode('utf-8'))
    except UnicodeDecodeError as err:
        return _fail('manifest', expected, 'a file that is not UTF-8 text', str(err))
    except ManifestError as err:
        return _fail('manifest', expected, 'an invalid manifest', str(err))
    return CheckResult('manifest', PASS, f'schema v{run.manifest.schema_version}, '
                       f'{run.manifest.runtime} {run.manifest.runtime_version}, '
                       f'{run.manifest.precision}')


def _check_manifest_digest(run: _Inspection) -> CheckResult:
    if run.manifest is None or run.digest is None:
        return CheckResult('manifest-digest', SKIP, 'needs a valid manifest and a file digest')
    if run.manifest.artifact_sha256 != run.digest:
        return _fail('manifest-digest', f'sha256 {run.digest} (file)',
                     f'sha256 {run.manifest.artifact_sha256 or "(none)"} (manifest)',
                     'the manifest describes another artifact')
    return CheckResult('manifest-digest', PASS, 'the manifest names the file digest')


def _check_pinned_digest(run: _Inspection) -> CheckResult:
    pinned = run.expected.pinned_sha256
    if pinned is None:
        return CheckResult('pinned-digest', SKIP, 'not pinned')
    if run.digest is None:
        return _fail('pinned-digest', f'sha256 {pinned} (pinned)', 'no file digest')
    if run.digest != pinned:
        return _fail('pinned-digest', f'sha256 {pinned} (pinned)', f'sha256 {run.digest}',
                     'the artifact was replaced, sidecars included')
    return CheckResult('pinned-digest', PASS, 'equals the pinned digest')


def _check_runtime(run: _Inspection) -> CheckResult:
    if run.manifest is None:
        return CheckResult('runtime', SKIP, 'needs a valid manifest')
    if run.manifest.runtime != run.expected.runtime:
        return _fail('runtime', f'runtime {run.expected.runtime!r}',
                     f'runtime {run.manifest.runtime!r}', 'built for another inference runtime')
    return CheckResult('runtime', PASS, f'{run.manifest.runtime}')


def _needs_tensorrt_manifest(run: _Inspection, check: str) -> Optional[CheckResult]:
    """The SKIP of a TensorRT-only check when the artifact or its manifest is not TensorRT's."""
    if not run.is_tensorrt:
        return CheckResult(check, SKIP, 'not a TensorRT artifact')
    if run.manifest is None or run.manifest.runtime != 'tensorrt':
        return CheckResult(check, SKIP, 'needs a valid TensorRT manifest')
    return None


def _check_tensorrt_version(run: _Inspection) -> CheckResult:
    skipped = _needs_tensorrt_manifest(run, 'tensorrt-version')
    if skipped is not None:
        return skipped
    installed = run.expected.tensorrt_version
    built = run.manifest.runtime_version
    if installed is None:
        return _fail('tensorrt-version', f'TensorRT {built} installed',
                     'no installed TensorRT version', 'cannot prove the plan will load')
    if not _TRT_VERSION.match(built):
        return _fail('tensorrt-version', 'a manifest version major.minor.patch', repr(built))
    if version_triple(built) != version_triple(installed):
        return _fail('tensorrt-version', f'TensorRT {installed} (installed)',
                     f'TensorRT {built} (manifest)', 'plans load only in the release that '
                     'built them')
    return CheckResult('tensorrt-version', PASS, f'built with TensorRT {built}, installed '
                       f'{installed}')


def _check_compute_capability(run: _Inspection) -> CheckResult:
    skipped = _needs_tensorrt_manifest(run, 'compute-capability')
    if skipped is not None:
        return skipped
    device = run.expected.compute_capability
    built = run.manifest.device.compute_capability
    if device is None:
        return _fail('compute-capability', f'compute capability {built} on this device',
                     'no device compute capability', 'cannot prove the plan will run')
    if built != device:
        return _fail('compute-capability', f'compute capability {device} (device)',
                     f'compute capability {built} (manifest)', 'built for another GPU')
    return CheckResult('compute-capability', PASS, f'{built} ({run.manifest.device.name})')


def _check_device(run: _Inspection) -> CheckResult:
    """Orin AGX, NX and Nano are all 8.7: the device's name tells them apart.

    Refused only on evidence: a manifest name with a word this device's name lacks ('Orin
    NX' on an 'AGX Orin'); a less specific one ('Orin', CUDA's name for every Orin) is a SKIP.
    """
    skipped = _needs_tensorrt_manifest(run, 'device')
    if skipped is not None:
        return skipped
    device = run.expected.device_name
    built = run.manifest.device.name
    if device is None:
        return CheckResult('device', SKIP, f"built on {built!r}; this device's name is not "
                           'known')
    if built.strip() == device.strip():
        return CheckResult('device', PASS, f'built on {built!r}')
    if set(built.lower().split()) <= set(device.lower().split()):
        return CheckResult('device', SKIP, f'built on {built!r}, which cannot tell this '
                           f'{device!r} from its siblings (no evidence either way)')
    return _fail('device', f'an engine built on {device!r} (this device)',
                 f'one built on {built!r} (manifest)', 'TensorRT tunes an engine for the '
                 'device that built it; rebuild it on this device')


def _check_plan_header(run: _Inspection) -> CheckResult:
    if not run.is_tensorrt:
        return CheckResult('plan-header', SKIP, 'not a TensorRT artifact')
    if run.manifest is None or run.manifest.runtime != 'tensorrt' or not run.file_ok:
        return CheckResult('plan-header', SKIP,
                           'needs a readable file and a valid TensorRT manifest')
    built = run.manifest.runtime_version
    if not _TRT_VERSION.match(built):
        return CheckResult('plan-header', SKIP, f'manifest version {built!r} is not '
                           'major.minor.patch')
    triple = version_triple(built)
    if triple[0] not in PLAN_HEADER_KNOWN_MAJORS:
        return CheckResult('plan-header', SKIP, f'header layout is not known for TensorRT '
                           f'{triple[0]}.x (known: '
                           f'{", ".join(str(m) for m in PLAN_HEADER_KNOWN_MAJORS)})')
    try:
        header = (run.data[:PLAN_HEADER_BYTES] if run.data is not None
                  else read_plan_header(run.path))
    except OSError as err:
        return _fail('plan-header', 'a readable plan header', f'read error: {err}')
    embedded = plan_header_layout(header)
    if embedded is None:
        return CheckResult('plan-header', SKIP, 'the header is not in the known layout '
                           f"({PLAN_MAGIC!r} at 0-3, version at {PLAN_VERSION_OFFSET}-"
                           f'{PLAN_VERSION_OFFSET + 2}); no evidence either way, the manifest '
                           "version was compared instead (see `verify`'s first 32 bytes)")
    if embedded != triple:
        found = '.'.join(str(v) for v in embedded)
        return _fail('plan-header', f'TensorRT {built} in the plan header',
                     f'TensorRT {found}', 'the plan was built by another release')
    return CheckResult('plan-header', PASS, f'plan header names TensorRT '
                       f'{".".join(str(v) for v in embedded)}')


_SEQUENCE: Tuple[Callable[[_Inspection], CheckResult], ...] = (
    _check_file, _check_sha256_sidecar, _check_digest, _check_manifest,
    _check_manifest_digest, _check_pinned_digest, _check_runtime, _check_tensorrt_version,
    _check_compute_capability, _check_device, _check_plan_header)


class EngineGate:
    """Checks an artifact without loading it; stateless, safe to share between threads."""

    def validate(self, path: PathLike, expected: GateExpectation) -> Manifest:
        """Run the checks in order; raise EngineGateError at the first FAIL, else the manifest."""
        return self._passed(_Inspection(Path(path), expected)).manifest

    def admit(self, path: PathLike, expected: GateExpectation) -> Tuple[Manifest, bytes]:
        """`validate`, reading the artifact once: the manifest and exactly the bytes hashed.

        Runtimes load from these bytes rather than re-opening the file, so a file swapped or
        altered after its digest was checked is never what gets deserialized, and the file is
        read and hashed once instead of twice.
        """
        run = self._passed(_Inspection(Path(path), expected, keep_bytes=True))
        return run.manifest, run.data

    @staticmethod
    def _passed(run: _Inspection) -> _Inspection:
        for check in _SEQUENCE:
            result = check(run)
            if result.failed:
                raise EngineGateError(str(run.path), result.check, result.expected,
                                      result.found, result.detail or None)
        if run.manifest is None or (run.keep_bytes and run.data is None):
            # Unreachable: passing 'manifest' and 'digest' checks set them.
            raise EngineGateError(str(run.path), 'manifest', 'a parsed manifest', 'none')
        return run

    def checks(self, path: PathLike, expected: GateExpectation) -> List[CheckResult]:
        """Run every check (later ones SKIP when what they need failed), for `verify`."""
        run = _Inspection(Path(path), expected)
        return [check(run) for check in _SEQUENCE]
