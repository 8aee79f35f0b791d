"""`selftest`: one line per check, a summary, the JSON report; exit 0 only when nothing failed."""

import json
from pathlib import Path
import subprocess
import sys

from fakes import gpu
import pytest

from gps_denied_inference.selftest.report import validate_report_dict

ROOT = Path(__file__).resolve().parents[2]
SMALL = ('--height', '96', '--width', '128', '--loads', '1', '--infer-runs', '1', '--cycles',
         '1')


@pytest.fixture
def no_gpu():
    with gpu.installed() as device:
        device.blocked.update({'tensorrt', 'pycuda', 'polygraphy'})
        yield device


def test_without_a_gpu_it_skips_the_device_checks_and_writes_the_json(no_gpu, cli, tmp_path):
    out_json = tmp_path / 'reports' / 'selftest.json'
    code, out, err = cli('selftest', *SMALL, '--json', out_json,
                         '--work-dir', tmp_path / 'work')
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[-1].startswith('selftest: PASS (')
    assert any(line.startswith('PASS  load/load-onnxruntime  ') for line in lines)
    assert any(line.startswith('SKIP  load/load-tensorrt  ') for line in lines)
    data = json.loads(out_json.read_text())
    assert validate_report_dict(data) == []
    assert len(data['checks']) == len(lines) - 1
    assert data['options']['cycles'] == 1
    assert (tmp_path / 'work' / 'demo.onnx').is_file()


def test_require_gpu_fails_without_one(no_gpu, cli, tmp_path):
    code, out, err = cli('selftest', *SMALL, '--require-gpu')
    assert code == 1
    assert out.splitlines()[-1].startswith('selftest: FAIL (')
    assert 'FAIL  build/engine-builder  ' in out


def test_latency_limits_per_model_and_default(no_gpu, cli):
    code, out, _ = cli('selftest', *SMALL, '--latency-limit-ms', 'demo_onnxruntime=1e-9',
                       '--latency-limit-ms', '50')
    assert code == 1
    assert 'FAIL  inference/latency-demo_onnxruntime  ' in out
    assert 'limit p95 <= 1e-09 ms' in out


@pytest.mark.parametrize('argv, message', [
    (('--latency-limit-ms', 'fast'), "--latency-limit-ms 'fast' is invalid"),
    (('--latency-limit-ms', 'm=0'), "--latency-limit-ms 'm=0' is invalid"),
    (('--cycles', '0'), '--cycles = 0 is invalid'),
    (('--params', 'nowhere.yaml'), 'no such file'),
])
def test_bad_arguments_are_refused_by_name(cli, argv, message):
    code, out, err = cli('selftest', *argv)
    assert code == 1
    assert message in err
    assert out == ''


def test_the_module_entry_point_offers_the_command():
    result = subprocess.run([sys.executable, '-m', 'gps_denied_inference', 'selftest', '--help'],
                            cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert '--require-gpu' in result.stdout and '--json OUT.json' in result.stdout
