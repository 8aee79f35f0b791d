"""The gate refuses every crafted bad artifact at the right check, and passes good ones."""

from dataclasses import replace
import hashlib
import os
import subprocess
import sys

import pytest
from sealed_models import make_sealed_onnx, make_sealed_plan, plan_bytes, plan_manifest

from gps_denied_inference.artifacts import gate as gate_module
from gps_denied_inference.artifacts.gate import (
    CHECKS,
    EngineGate,
    FAIL,
    GateExpectation,
    PASS,
    plan_header_layout,
    plan_header_version,
    SKIP,
)
from gps_denied_inference.artifacts.manifest import Manifest
from gps_denied_inference.artifacts.sealing import (
    manifest_sidecar_path,
    seal_artifact,
    sha256_file,
    sha256_sidecar_path,
)
from gps_denied_inference.errors import ConfigError, EngineGateError

ORT = GateExpectation(runtime='onnxruntime')
TRT = GateExpectation(runtime='tensorrt', tensorrt_version='10.3.0', compute_capability='8.7')


def refusal(path, expected):
    with pytest.raises(EngineGateError) as info:
        EngineGate().validate(path, expected)
    return info.value


def statuses(path, expected):
    return {r.check: r.status for r in EngineGate().checks(path, expected)}


def test_a_good_onnx_artifact_passes_and_returns_its_manifest(tmp_path):
    path = make_sealed_onnx(tmp_path)
    manifest = EngineGate().validate(path, ORT)
    assert manifest == Manifest.from_json(manifest_sidecar_path(path).read_text())
    assert manifest.artifact_sha256 == sha256_file(path)


def test_a_good_plan_passes_every_tensorrt_check(tmp_path):
    path = make_sealed_plan(tmp_path)
    assert EngineGate().validate(path, TRT).runtime == 'tensorrt'
    assert set(statuses(path, TRT).values()) == {PASS, SKIP}
    assert statuses(path, TRT)['plan-header'] == PASS


def test_checks_report_every_check_in_order(tmp_path):
    results = EngineGate().checks(make_sealed_onnx(tmp_path), ORT)
    assert tuple(r.check for r in results) == CHECKS
    assert [r.status for r in results] == [PASS] * 5 + [SKIP, PASS] + [SKIP] * 4
    assert results[5].reason == 'not pinned'
    assert all(r.reason for r in results)


def _flip_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _truncate(path):
    path.write_bytes(path.read_bytes()[:-1])


def _append(path):
    path.write_bytes(path.read_bytes() + b'\0')


@pytest.mark.parametrize('damage', [_flip_byte, _truncate, _append])
def test_an_altered_artifact_fails_the_digest_check(tmp_path, damage):
    path = make_sealed_onnx(tmp_path)
    damage(path)
    error = refusal(path, ORT)
    assert error.check == 'digest'
    assert str(path) in str(error) and sha256_file(path) in str(error)


@pytest.mark.parametrize('damage', [_flip_byte, _truncate, _append])
def test_admit_refuses_an_altered_artifact_at_the_same_check(tmp_path, damage):
    path = make_sealed_onnx(tmp_path)
    damage(path)
    with pytest.raises(EngineGateError) as info:
        EngineGate().admit(path, ORT)
    assert info.value.check == 'digest' and str(path) in str(info.value)


@pytest.mark.parametrize('make, expected', [(make_sealed_onnx, ORT), (make_sealed_plan, TRT)])
def test_admit_returns_the_manifest_and_exactly_the_bytes_it_hashed(tmp_path, make, expected):
    path = make(tmp_path)
    manifest, data = EngineGate().admit(path, expected)
    assert manifest == EngineGate().validate(path, expected)
    assert data == path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == manifest.artifact_sha256


def test_admit_checks_the_plan_header_of_the_bytes_it_returns(tmp_path, monkeypatch):
    """The header comes from the admitted bytes: the file is not opened again for it."""
    path = make_sealed_plan(tmp_path)
    monkeypatch.setattr(gate_module, 'read_plan_header', lambda _: pytest.fail('re-read'))
    manifest, data = EngineGate().admit(path, TRT)
    assert plan_header_version(data[:gate_module.PLAN_HEADER_BYTES]) == (10, 3, 0)


def test_an_artifact_swapped_for_another_model_fails_the_digest_check(tmp_path):
    path = make_sealed_onnx(tmp_path)
    other = make_sealed_onnx(tmp_path, 'other.onnx', 8, 8)
    path.write_bytes(other.read_bytes())
    assert refusal(path, ORT).check == 'digest'


def test_a_missing_sha256_sidecar_is_refused(tmp_path):
    path = make_sealed_onnx(tmp_path)
    sha256_sidecar_path(path).unlink()
    error = refusal(path, ORT)
    assert (error.check, error.found) == ('sha256-sidecar', 'no such file')
    assert 'tiny.onnx.sha256' in str(error.expected)


@pytest.mark.parametrize('content', ['garbage\n', '', 'ab' * 31 + '  tiny.onnx\n',
                                     ('ab' * 32 + '  tiny.onnx\n') * 2])
def test_a_garbled_sha256_sidecar_is_refused(tmp_path, content):
    path = make_sealed_onnx(tmp_path)
    sha256_sidecar_path(path).write_text(content)
    assert refusal(path, ORT).check == 'sha256-sidecar'


def test_a_sha256_sidecar_for_another_file_is_refused(tmp_path):
    path = make_sealed_onnx(tmp_path)
    sha256_sidecar_path(path).write_text(f'{sha256_file(path)}  other.onnx\n')
    error = refusal(path, ORT)
    assert error.check == 'sha256-sidecar'
    assert 'other.onnx' in str(error.found) and 'another file' in str(error)


def test_a_sidecar_naming_the_file_with_a_directory_is_accepted(tmp_path):
    path = make_sealed_onnx(tmp_path)
    sha256_sidecar_path(path).write_text(f'{sha256_file(path)}  ./build/tiny.onnx\n')
    EngineGate().validate(path, ORT)


@pytest.mark.parametrize('content', ['', '{not json', '[]', '{"schema_version": 99}',
                                     '{"schema_version": 1}'])
def test_a_garbled_manifest_is_refused(tmp_path, content):
    path = make_sealed_onnx(tmp_path)
    manifest_sidecar_path(path).write_text(content)
    assert refusal(path, ORT).check == 'manifest'


def test_a_missing_manifest_is_refused(tmp_path):
    path = make_sealed_onnx(tmp_path)
    manifest_sidecar_path(path).unlink()
    assert (refusal(path, ORT).check, refusal(path, ORT).found) == ('manifest', 'no such file')


def test_an_oversized_manifest_is_refused_without_parsing(tmp_path):
    path = make_sealed_onnx(tmp_path)
    manifest_sidecar_path(path).write_bytes(b' ' * (gate_module.MAX_MANIFEST_BYTES + 1))
    assert refusal(path, ORT).check == 'manifest'


def test_a_manifest_for_another_digest_is_refused(tmp_path):
    path = make_sealed_onnx(tmp_path)
    sidecar = manifest_sidecar_path(path)
    other = Manifest.from_json(sidecar.read_text()).with_digest('0' * 64)
    sidecar.write_text(other.to_json())
    error = refusal(path, ORT)
    assert error.check == 'manifest-digest'
    assert '0' * 64 in str(error.found) and sha256_file(path) in str(error.expected)


def test_replacing_file_and_sidecars_is_caught_only_by_the_pinned_digest(tmp_path):
    path = make_sealed_onnx(tmp_path)
    pinned = sha256_file(path)
    (tmp_path / 'elsewhere').mkdir()
    replacement = make_sealed_onnx(tmp_path / 'elsewhere', 'tiny.onnx', 8, 8)
    for source in (replacement, sha256_sidecar_path(replacement),
                   manifest_sidecar_path(replacement)):
        (tmp_path / source.name).write_bytes(source.read_bytes())
    EngineGate().validate(path, ORT)
    error = refusal(path, replace(ORT, pinned_sha256=pinned))
    assert error.check == 'pinned-digest'
    assert pinned in str(error.expected) and sha256_file(path) in str(error.found)


def test_a_matching_pinned_digest_passes(tmp_path):
    path = make_sealed_onnx(tmp_path)
    expected = replace(ORT, pinned_sha256=sha256_file(path))
    EngineGate().validate(path, expected)
    assert statuses(path, expected)['pinned-digest'] == PASS


@pytest.mark.parametrize('maker, expected', [
    (make_sealed_onnx, TRT), (make_sealed_plan, ORT)])
def test_an_artifact_for_another_runtime_is_refused(tmp_path, maker, expected):
    error = refusal(maker(tmp_path), expected)
    assert error.check == 'runtime'
    assert expected.runtime in str(error.expected)


@pytest.mark.parametrize('installed', ['10.3.1', '10.0.0', '8.6.1'])
def test_a_tensorrt_version_mismatch_is_refused(tmp_path, installed):
    path = make_sealed_plan(tmp_path)
    error = refusal(path, replace(TRT, tensorrt_version=installed))
    assert error.check == 'tensorrt-version'
    assert installed in str(error.expected) and '10.3.0' in str(error.found)


def test_a_build_number_does_not_change_the_tensorrt_version(tmp_path):
    path = make_sealed_plan(tmp_path, tensorrt_version='10.3.0.30')
    EngineGate().validate(path, replace(TRT, tensorrt_version='10.3.0.26'))


def test_an_unknown_installed_tensorrt_version_is_a_refusal(tmp_path):
    error = refusal(make_sealed_plan(tmp_path), replace(TRT, tensorrt_version=None))
    assert error.check == 'tensorrt-version'


@pytest.mark.parametrize('device', ['8.6', '7.2', '9.0', None])
def test_a_compute_capability_mismatch_is_refused(tmp_path, device):
    error = refusal(make_sealed_plan(tmp_path), replace(TRT, compute_capability=device))
    assert error.check == 'compute-capability'
    assert '8.7' in str(error)


def test_a_manifest_without_compute_capability_is_refused_for_tensorrt(tmp_path):
    path = tmp_path / 'model.engine'
    path.write_bytes(plan_bytes())
    manifest = plan_manifest()
    seal_artifact(path, replace(manifest, device=replace(manifest.device,
                                                         compute_capability=None)))
    assert refusal(path, TRT).check == 'compute-capability'


def test_a_plan_header_naming_another_release_is_refused(tmp_path):
    path = make_sealed_plan(tmp_path, header_version=(10, 0, 1))
    error = refusal(path, TRT)
    assert error.check == 'plan-header'
    assert '10.0.1' in str(error.found) and '10.3.0' in str(error.expected)


@pytest.mark.parametrize('content', [
    b'\x08\x07\x12\x00' + bytes(100),  # another magic
    b'ftrt' + bytes(10),  # too short to hold a version
    b'FTRT' + bytes(100),
    b'ftrt' + bytes(20) + b'\x00\x00\x00' + bytes(100),  # no plausible version at 24-26
    b'ftrt' + bytes(20) + b'\xff\x03\x00' + bytes(100)])
def test_a_header_in_an_unknown_layout_is_a_reported_skip_not_a_refusal(tmp_path, content):
    path = tmp_path / 'model.engine'
    path.write_bytes(content)
    seal_artifact(path, plan_manifest())
    EngineGate().validate(path, TRT)
    result = {r.check: r for r in EngineGate().checks(path, TRT)}['plan-header']
    assert result.status == SKIP and 'not in the known layout' in result.reason
    assert statuses(path, TRT)['tensorrt-version'] == PASS  # still compared


def test_an_unknown_layout_still_refuses_a_manifest_of_another_release(tmp_path):
    path = tmp_path / 'model.engine'
    path.write_bytes(b'\x08\x07\x12\x00' + bytes(100))
    seal_artifact(path, plan_manifest('10.0.1'))
    assert refusal(path, TRT).check == 'tensorrt-version'


@pytest.mark.parametrize('header, layout', [
    (plan_bytes((10, 3, 0)), (10, 3, 0)), (plan_bytes((8, 6, 1)), (8, 6, 1)),
    (b'ftrt' + bytes(40), None), (b'xtrt' + bytes(40), None), (b'ftrt', None)])
def test_plan_header_layout_names_a_version_only_for_the_known_layout(header, layout):
    assert plan_header_layout(header) == layout


def test_the_device_name_tells_orins_apart(tmp_path):
    path = make_sealed_plan(tmp_path)  # built on 'Orin'
    assert statuses(path, TRT)['device'] == SKIP
    assert statuses(path, replace(TRT, device_name='Orin'))['device'] == PASS
    vague = statuses(path, replace(TRT, device_name='NVIDIA Jetson AGX Orin Developer Kit'))
    assert vague['device'] == SKIP  # 'Orin' (CUDA's name) cannot tell AGX from NX
    manifest = plan_manifest()
    seal_artifact(path, replace(manifest, device=replace(
        manifest.device, name='NVIDIA Jetson Orin NX Developer Kit')))
    error = refusal(path, replace(TRT, device_name='NVIDIA Jetson AGX Orin Developer Kit'))
    assert error.check == 'device' and 'rebuild it on this device' in str(error)


def test_a_release_with_an_unknown_header_layout_is_skipped_with_the_reason(tmp_path):
    path = make_sealed_plan(tmp_path, header_version=(0, 0, 0), tensorrt_version='11.0.0')
    expected = replace(TRT, tensorrt_version='11.0.0')
    EngineGate().validate(path, expected)
    result = EngineGate().checks(path, expected)[-1]
    assert (result.check, result.status) == ('plan-header', SKIP)
    assert 'not known for TensorRT 11.x' in result.reason


@pytest.mark.parametrize('header, expected', [
    (plan_bytes((10, 3, 0)), (10, 3, 0)), (plan_bytes((8, 6, 1)), (8, 6, 1))])
def test_plan_header_version_reads_the_version_bytes(header, expected):
    assert plan_header_version(header[:27]) == expected


@pytest.mark.parametrize('header', [b'', b'ftrt', plan_bytes()[:26], b'xtrt' + bytes(30)])
def test_plan_header_version_refuses_what_is_not_a_plan_header(header):
    with pytest.raises(ValueError):
        plan_header_version(header)


def _directory(tmp_path):
    path = tmp_path / 'model.onnx'
    path.mkdir()
    return path


def _empty(tmp_path):
    path = tmp_path / 'model.onnx'
    path.write_bytes(b'')
    seal_artifact(path, plan_manifest(runtime='onnxruntime', runtime_version='1.20.0'))
    return path


def _dangling(tmp_path):
    path = tmp_path / 'model.onnx'
    path.symlink_to(tmp_path / 'gone.onnx')
    return path


def _fifo(tmp_path):
    path = tmp_path / 'model.onnx'
    os.mkfifo(path)
    return path


@pytest.mark.parametrize('make, found', [
    (_directory, 'a directory'), (_empty, 'an empty file (0 B)'),
    (_dangling, 'a dangling symlink'), (lambda p: p / 'absent.onnx', 'no such file'),
    (_fifo, 'not a regular file (mode prw')])
def test_what_is_not_a_regular_non_empty_file_fails_the_file_check(tmp_path, make, found):
    path = make(tmp_path)
    error = refusal(path, ORT)
    assert error.check == 'file'
    assert str(error.found).startswith(found)
    assert str(path) in str(error)


def test_a_symlink_to_a_sealed_artifact_passes(tmp_path):
    (tmp_path / 'store').mkdir()
    target = make_sealed_onnx(tmp_path / 'store')
    link = tmp_path / 'tiny.onnx'
    link.symlink_to(target)
    for sidecar in (sha256_sidecar_path, manifest_sidecar_path):
        sidecar(link).symlink_to(sidecar(target))
    EngineGate().validate(link, ORT)


@pytest.mark.skipif(os.geteuid() == 0, reason='root reads any file')
def test_an_unreadable_file_fails_the_file_check(tmp_path):
    path = make_sealed_onnx(tmp_path)
    path.chmod(0)
    assert refusal(path, ORT).check == 'file'


def test_checks_go_on_after_a_failure_and_skip_what_depends_on_it(tmp_path):
    path = make_sealed_onnx(tmp_path)
    sha256_sidecar_path(path).unlink()
    results = {r.check: r for r in EngineGate().checks(path, ORT)}
    assert results['sha256-sidecar'].status == FAIL
    assert results['digest'].status == SKIP and sha256_file(path) in results['digest'].reason
    assert results['manifest'].status == PASS
    assert results['manifest-digest'].status == PASS


def test_checks_of_a_missing_file_fail_once_and_skip_the_rest(tmp_path):
    results = EngineGate().checks(tmp_path / 'absent.engine', TRT)
    assert [r.status for r in results[:3]] == [FAIL, FAIL, SKIP]
    assert results[-1].status == SKIP


def test_the_error_names_file_check_expected_and_found(tmp_path):
    path = make_sealed_plan(tmp_path)
    error = refusal(path, replace(TRT, compute_capability='8.6'))
    text = str(error)
    assert text.startswith(f'{path}: compute-capability check failed: expected ')
    assert 'found compute capability 8.7 (manifest)' in text
    assert error.path == str(path)


@pytest.mark.parametrize('fields', [
    {'runtime': 'tflite'},
    {'runtime': 'onnxruntime', 'pinned_sha256': 'AB' * 32},
    {'runtime': 'onnxruntime', 'pinned_sha256': 'ab' * 31},
    {'runtime': 'tensorrt', 'tensorrt_version': '10.3'},
    {'runtime': 'tensorrt', 'tensorrt_version': 'ten'},
    {'runtime': 'tensorrt', 'compute_capability': '87'},
])
def test_an_invalid_expectation_is_refused_by_field(fields):
    with pytest.raises(ConfigError, match='GateExpectation'):
        GateExpectation(**fields)


def test_the_gate_imports_and_touches_no_gpu_or_inference_library(tmp_path):
    onnx_path = make_sealed_onnx(tmp_path)
    plan_path = make_sealed_plan(tmp_path)
    code = (
        'import sys\n'
        'from gps_denied_inference.artifacts.gate import EngineGate, GateExpectation\n'
        f'EngineGate().validate({str(onnx_path)!r}, GateExpectation("onnxruntime"))\n'
        f'EngineGate().validate({str(plan_path)!r}, GateExpectation("tensorrt", None, '
        '"10.3.0", "8.7"))\n'
        'bad = [m for m in ("tensorrt", "pycuda", "onnxruntime", "cupy", "torch", "pynvml", '
        '"onnx") if m in sys.modules]\n'
        'print(bad)\n'
        'sys.exit(1 if bad else 0)\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_onnx_manifest_checked_as_tensorrt_fails_only_the_runtime_check(tmp_path):
    results = statuses(make_sealed_onnx(tmp_path), TRT)
    assert [c for c, s in results.items() if s == FAIL] == ['runtime']
    assert results['tensorrt-version'] == results['plan-header'] == SKIP
