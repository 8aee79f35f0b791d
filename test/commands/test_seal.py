"""`seal` describes an .onnx from the file and an engine from flags, and the gate accepts both."""

import pytest
from sealed_models import make_onnx, plan_bytes

from gps_denied_inference.artifacts.gate import EngineGate, GateExpectation
from gps_denied_inference.artifacts.manifest import Manifest
from gps_denied_inference.artifacts.sealing import (
    manifest_sidecar_path,
    sha256_file,
    sha256_sidecar_path,
)

ENGINE_FLAGS = ('--tensorrt-version', '10.3.0', '--compute-capability', '8.7',
                '--device-name', 'Jetson AGX Orin', '--precision', 'fp16',
                '--tensor', 'image:input:float32:1x1x480x640',
                '--tensor', 'keypoints:output:float32:1x1x480x640',
                '--activation-bytes', '1048576')
TRT = GateExpectation('tensorrt', None, '10.3.0', '8.7')


def sealed(path):
    return Manifest.from_json(manifest_sidecar_path(path).read_text())


def test_an_onnx_model_is_sealed_from_the_file(tmp_path, cli):
    path = make_onnx(tmp_path / 'm.onnx', 32, 48)
    code, out, err = cli('seal', path)
    assert code == 0, err
    digest = sha256_file(path)
    assert digest in out and str(sha256_sidecar_path(path)) in out
    manifest = EngineGate().validate(path, GateExpectation('onnxruntime'))
    assert manifest.preprocess.width == 48 and manifest.opset == 17


def test_preprocess_flags_override_the_derived_contract(tmp_path, cli):
    path = make_onnx(tmp_path / 'm.onnx')
    code, _, err = cli('seal', path, '--preprocess-resize', 'letterbox',
                       '--preprocess-mean', '0.25', '--preprocess-std', '0.5',
                       '--preprocess-scale', '1')
    assert code == 0, err
    contract = sealed(path).preprocess
    assert (contract.resize, contract.mean, contract.std, contract.scale) == (
        'letterbox', (0.25,), (0.5,), 1.0)


def test_engine_flags_are_refused_for_an_onnx_model(tmp_path, cli):
    path = make_onnx(tmp_path / 'm.onnx')
    code, _, err = cli('seal', path, '--tensorrt-version', '10.3.0')
    assert code == 1 and '--tensorrt-version apply only to TensorRT engines' in err
    assert not sha256_sidecar_path(path).exists()


def test_an_engine_is_sealed_from_flags_and_passes_the_gate(tmp_path, cli):
    path = tmp_path / 'sp.engine'
    path.write_bytes(plan_bytes((10, 3, 0)))
    source = make_onnx(tmp_path / 'sp.onnx')
    code, out, err = cli('seal', path, *ENGINE_FLAGS, '--builder-flag', 'fp16',
                         '--l4t-release', '36.4.3', '--jetpack-release', '6.2',
                         '--source-onnx', source)
    assert code == 0, err
    manifest = EngineGate().validate(path, TRT)
    assert manifest.device.name == 'Jetson AGX Orin'
    assert manifest.device.jetpack_release == '6.2'
    assert manifest.builder_flags == ('fp16',)
    assert manifest.source_onnx_sha256 == sha256_file(source)
    assert manifest.memory.weights_bytes == path.stat().st_size
    assert manifest.memory.io_buffer_bytes == 2 * 480 * 640 * 4
    assert (manifest.preprocess.width, manifest.preprocess.height) == (640, 480)


def test_missing_engine_flags_are_all_named(tmp_path, cli):
    path = tmp_path / 'sp.engine'
    path.write_bytes(plan_bytes())
    code, _, err = cli('seal', path, '--tensorrt-version', '10.3.0')
    assert code == 1
    assert ('give --compute-capability, --device-name, --precision, --tensor, '
            '--activation-bytes') in err
    assert not sha256_sidecar_path(path).exists()


def test_an_engine_whose_header_names_another_release_is_not_sealed(tmp_path, cli):
    path = tmp_path / 'sp.engine'
    path.write_bytes(plan_bytes((10, 0, 1)))
    code, _, err = cli('seal', path, *ENGINE_FLAGS)
    assert code == 1 and 'plan header, which names TensorRT 10.0.1' in err
    assert not manifest_sidecar_path(path).exists()


def test_a_file_that_is_not_a_plan_is_not_sealed_as_an_engine(tmp_path, cli):
    path = make_onnx(tmp_path / 'm.engine')
    code, _, err = cli('seal', path, *ENGINE_FLAGS)
    assert code == 1 and 'not a TensorRT plan' in err


@pytest.mark.parametrize('tensor, message', [
    ('image:input:float32', 'NAME:MODE:DTYPE:SHAPE'),
    ('image:input:float64x:1x1x4x4', 'dtype'),
    ('image:sideways:float32:1x1x4x4', 'mode'),
    ('image:input:float32:1x1xHx4', 'invalid literal'),
    ('image:input:float32:1x1x-1x4', 'profile'),
])
def test_malformed_tensor_flags_are_refused(tmp_path, cli, capsys, tensor, message):
    path = tmp_path / 'sp.engine'
    path.write_bytes(plan_bytes())
    with pytest.raises(SystemExit):
        cli('seal', path, '--tensor', tensor)
    assert message in capsys.readouterr().err


def test_a_dynamic_tensor_takes_a_profile(tmp_path, cli):
    path = tmp_path / 'sp.engine'
    path.write_bytes(plan_bytes())
    flags = list(ENGINE_FLAGS)
    flags[flags.index('image:input:float32:1x1x480x640')] = (
        'image:input:float32:1x1x-1x-1:1x1x240x320/1x1x480x640/1x1x960x1280')
    code, _, err = cli('seal', path, *flags, '--preprocess-width', '640',
                       '--preprocess-height', '480')
    assert code == 0, err
    image = sealed(path).inputs[0]
    assert image.profile[2] == (1, 1, 960, 1280)
    assert sealed(path).memory.io_buffer_bytes == (960 * 1280 + 480 * 640) * 4


def test_a_tensor_set_without_an_output_is_refused(tmp_path, cli):
    path = tmp_path / 'sp.engine'
    path.write_bytes(plan_bytes())
    flags = list(ENGINE_FLAGS)
    flags[flags.index('keypoints:output:float32:1x1x480x640')] = 'other:input:float32:1x4'
    code, _, err = cli('seal', path, *flags)
    assert code == 1 and 'at least one input and one output' in err


def test_a_refused_preprocess_flag_is_named_as_the_flag(tmp_path, cli):
    path = make_onnx(tmp_path / 'm.onnx')
    code, _, err = cli('seal', path, '--preprocess-mean', '1,2')
    assert code == 1 and '--preprocess-mean = (1.0, 2.0) is invalid' in err, err


def test_flags_the_model_input_cannot_take_are_refused(tmp_path, cli):
    path = make_onnx(tmp_path / 'm.onnx')
    code, _, err = cli('seal', path, '--preprocess-color', 'rgb')
    assert code == 1 and '3 channel(s) for color rgb' in err, err
    assert '(given: --preprocess-color)' in err
    assert not sha256_sidecar_path(path).exists()


def test_an_unknown_suffix_needs_the_runtime_flag(tmp_path, cli):
    path = make_onnx(tmp_path / 'model.bin')
    code, _, err = cli('seal', path)
    assert code == 1 and 'pass --runtime' in err
    assert cli('seal', path, '--runtime', 'onnxruntime')[0] == 0


def test_a_release_with_an_unknown_header_layout_is_sealed_from_flags(tmp_path, cli):
    path = tmp_path / 'future.engine'
    path.write_bytes(b'\0' * 64)
    flags = list(ENGINE_FLAGS)
    flags[1] = '11.0.0'
    assert cli('seal', path, *flags)[0] == 0
    assert sealed(path).runtime_version == '11.0.0'
