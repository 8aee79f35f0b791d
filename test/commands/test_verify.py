"""`verify` prints one line per gate check and exits 0 only when none failed."""

from pathlib import Path
import subprocess
import sys

import pytest
from sealed_models import make_sealed_onnx, make_sealed_plan

from gps_denied_inference.artifacts.gate import CHECKS
from gps_denied_inference.artifacts.sealing import sha256_file, sha256_sidecar_path

ROOT = Path(__file__).resolve().parents[2]


def report_lines(out):
    return [line.split(None, 2) for line in out.splitlines()[1:1 + len(CHECKS)]]


def test_a_good_artifact_passes_with_one_line_per_check(tmp_path, cli):
    path = make_sealed_onnx(tmp_path)
    code, out, err = cli('verify', path)
    assert code == 0, out + err
    lines = report_lines(out)
    assert [line[1] for line in lines] == list(CHECKS)
    assert [line[0] for line in lines] == ['PASS'] * 5 + ['SKIP', 'PASS'] + ['SKIP'] * 4
    assert all(len(line) == 3 and line[2] for line in lines)
    assert out.splitlines()[0] == f'verify {path} (runtime onnxruntime)'
    assert out.splitlines()[-1] == 'OK: the gate accepts this artifact'


def test_a_tampered_artifact_fails_with_a_readable_reason(tmp_path, cli):
    path = make_sealed_onnx(tmp_path)
    path.write_bytes(path.read_bytes()[:-3])
    code, out, _ = cli('verify', path)
    assert code == 1
    digest_line = next(line for line in out.splitlines() if ' digest ' in f' {line} ')
    assert digest_line.startswith('FAIL  digest')
    assert sha256_file(path) in digest_line and 'truncated, altered or swapped' in digest_line
    assert out.splitlines()[-1] == 'REFUSED: 2 check(s) failed: digest, manifest-digest'


def test_a_pinned_digest_is_checked(tmp_path, cli):
    path = make_sealed_onnx(tmp_path)
    assert cli('verify', path, '--expect-sha256', sha256_file(path).upper())[0] == 0
    code, out, _ = cli('verify', path, '--expect-sha256', '0' * 64)
    assert code == 1 and 'FAIL  pinned-digest' in out


def test_an_invalid_pinned_digest_is_an_error(tmp_path, cli):
    code, out, err = cli('verify', make_sealed_onnx(tmp_path), '--expect-sha256', 'abc')
    assert code == 1 and 'pinned_sha256' in err and out == ''


def test_an_engine_is_checked_against_the_given_tensorrt_and_device(tmp_path, cli):
    path = make_sealed_plan(tmp_path)
    code, out, _ = cli('verify', path, '--tensorrt-version', '10.3.0',
                       '--compute-capability', '8.7')
    assert code == 0, out
    assert 'PASS  plan-header' in out
    assert ('plan bytes 0-31: 66 74 72 74 ' in out and '|ftrt' in out
            and 'at 24-26' in out)
    code, out, _ = cli('verify', path, '--tensorrt-version', '10.3.1',
                       '--compute-capability', '8.6')
    assert code == 1
    assert 'FAIL  tensorrt-version' in out and 'FAIL  compute-capability' in out


def test_an_engine_on_a_host_without_tensorrt_fails_and_says_what_to_pass(tmp_path, cli):
    path = make_sealed_plan(tmp_path)
    code, out, _ = cli('verify', path)
    if code == 0:
        pytest.skip('this host has TensorRT and a matching GPU')
    assert 'FAIL  tensorrt-version' in out
    assert '--tensorrt-version' in out.splitlines()[-1]


def test_a_missing_artifact_and_sidecars_fail_every_check_they_reach(tmp_path, cli):
    code, out, _ = cli('verify', tmp_path / 'absent.onnx')
    assert code == 1
    assert [line[0] for line in report_lines(out)][:2] == ['FAIL', 'FAIL']


def test_the_runtime_follows_the_suffix_or_the_flag(tmp_path, cli):
    path = make_sealed_onnx(tmp_path)
    code, out, _ = cli('verify', path, '--runtime', 'tensorrt', '--tensorrt-version', '10.3.0',
                       '--compute-capability', '8.7')
    assert code == 1 and 'FAIL  runtime' in out
    odd = tmp_path / 'model.bin'
    code, _, err = cli('verify', odd)
    assert code == 1 and 'pass --runtime' in err


def test_a_garbled_sidecar_is_reported(tmp_path, cli):
    path = make_sealed_onnx(tmp_path)
    sha256_sidecar_path(path).write_text('nonsense\n')
    code, out, _ = cli('verify', path)
    assert code == 1 and 'FAIL  sha256-sidecar' in out and 'SKIP  digest' in out


def test_verify_runs_as_a_module_when_the_whole_cli_is_present(tmp_path):
    if not (ROOT / 'gps_denied_inference' / 'commands' / 'compile.py').exists():
        pytest.skip('commands/compile.py is not in this tree yet; cli.main cannot load')
    path = make_sealed_onnx(tmp_path)
    good = subprocess.run([sys.executable, '-m', 'gps_denied_inference', 'verify', str(path)],
                          capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr
    path.write_bytes(b'x' + path.read_bytes())
    bad = subprocess.run([sys.executable, '-m', 'gps_denied_inference', 'verify', str(path)],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and 'FAIL  digest' in bad.stdout
