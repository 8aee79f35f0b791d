"""`compile MODEL.onnx BUILD_CONFIG.json` through the real CLI, on the TensorRT fakes."""

import json
import sys

from fakes import gpu
from fakes.engines import TRT
import pytest
from sealed_models import make_onnx

from gps_denied_inference.artifacts.gate import EngineGate


@pytest.fixture
def fake():
    with gpu.installed() as device:
        yield device


def write_config(tmp_path, data):
    path = tmp_path / 'build.json'
    path.write_text(json.dumps(data))
    return path


def test_compile_builds_seals_and_reports(tmp_path, fake, cli):
    model = make_onnx(tmp_path / 'model.onnx')
    code, out, err = cli('compile', model, write_config(tmp_path, {'precision': 'fp16'}))
    assert code == 0, err
    engine = tmp_path / 'model.engine'
    manifest = EngineGate().validate(engine, TRT)
    assert f'compiled {engine} with TensorRT 10.3.0 for Orin (fake)' in out
    assert manifest.artifact_sha256 in out
    assert 'input     image float32 1x1x16x16' in out
    assert 'TensorRT INFO: fake builder: building' in err and '[' in err.splitlines()[0]


def test_output_flag_and_config_output(tmp_path, fake, cli):
    model = make_onnx(tmp_path / 'model.onnx')
    config = write_config(tmp_path, {'output': 'engines/from-config.engine'})
    (tmp_path / 'engines').mkdir()
    assert cli('compile', model, config)[0] == 0
    assert (tmp_path / 'engines' / 'from-config.engine').is_file()
    assert cli('compile', model, config, '--output', tmp_path / 'flag.engine')[0] == 0
    assert (tmp_path / 'flag.engine.sha256').is_file()


@pytest.mark.parametrize('data,message', [
    ({'precision': 'int8', 'int8_source': 'calibration'},
     'calibration = None is invalid: must be given (dataset_dir, cache)'),
    ({'precision': 'int8'}, 'int8_source'),
    ({'backend': 'tensorflow'}, 'backend'),
    ({'workspace': 1024}, "keys ['workspace'] are unknown"),
])
def test_an_invalid_build_config_is_refused_with_a_clear_error(tmp_path, fake, cli, data,
                                                              message):
    model = make_onnx(tmp_path / 'model.onnx')
    code, out, err = cli('compile', model, write_config(tmp_path, data))
    assert code == 1 and out == ''
    assert err.startswith('error: ') and message in err and 'build.json' in err
    assert fake.events() == []


def test_a_missing_library_is_named(tmp_path, fake, cli):
    fake.blocked.add('tensorrt')
    model = make_onnx(tmp_path / 'model.onnx')
    code, _, err = cli('compile', model, write_config(tmp_path, {}))
    assert code == 1 and 'TensorRT is not installed' in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['build.json', 'model.onnx']


def test_a_trtexec_timeout_comes_from_the_flag(tmp_path, fake, cli, monkeypatch):
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    script = bin_dir / 'trtexec'
    script.write_text(f'#!{sys.executable}\nimport time\nprint("building", flush=True)\n'
                      'time.sleep(30)\n')
    script.chmod(0o755)
    monkeypatch.setenv('PATH', f'{bin_dir}:/usr/bin:/bin')
    model = make_onnx(tmp_path / 'model.onnx')
    # Time for the fake to start Python and print on a loaded machine; it sleeps far longer.
    code, _, err = cli('compile', model, write_config(tmp_path, {'backend': 'trtexec'}),
                       '--trtexec-timeout-s', '5')
    assert code == 1 and 'trtexec_timeout_s = 5 s' in err and 'trtexec: building' in err
