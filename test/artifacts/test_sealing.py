"""Sealing writes sha256sum-compatible, atomic sidecars; manifests are read from ONNX files."""

import hashlib
import json
import os
from pathlib import Path
import shutil
import subprocess

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
import pytest
from sealed_models import make_onnx, make_sealed_onnx, plan_manifest

from gps_denied_inference.artifacts import sealing
from gps_denied_inference.artifacts.manifest import Manifest, TensorSpec
from gps_denied_inference.errors import ManifestError

DIGEST = 'ab' * 32


@pytest.mark.parametrize('size', [0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 17])
def test_sha256_file_matches_hashlib_across_chunk_boundaries(tmp_path, size):
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    path = tmp_path / 'blob'
    path.write_bytes(data)
    assert sealing.sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_sidecar_paths_append_to_the_full_file_name():
    assert sealing.sha256_sidecar_path('/m/a.engine') == Path('/m/a.engine.sha256')
    assert sealing.manifest_sidecar_path(Path('/m/a.onnx')) == Path('/m/a.onnx.manifest.json')


def test_seal_writes_both_sidecars_and_returns_the_digest_naming_manifest(tmp_path):
    path = tmp_path / 'model.engine'
    path.write_bytes(b'ftrt' + bytes(200))
    sealed = sealing.seal_artifact(path, plan_manifest())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert sealed.artifact_sha256 == digest
    assert (tmp_path / 'model.engine.sha256').read_text() == f'{digest}  model.engine\n'
    on_disk = Manifest.from_json((tmp_path / 'model.engine.manifest.json').read_text())
    assert on_disk == sealed
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        'model.engine', 'model.engine.manifest.json', 'model.engine.sha256']


def test_resealing_replaces_the_sidecars(tmp_path):
    path = make_sealed_onnx(tmp_path)
    first = sealing.read_sha256_sidecar(sealing.sha256_sidecar_path(path))
    make_onnx(path, 8, 8)
    resealed = sealing.seal_artifact(path, sealing.manifest_from_onnx(path))
    assert sealing.read_sha256_sidecar(sealing.sha256_sidecar_path(path)) == (
        resealed.artifact_sha256, path.name)
    assert resealed.artifact_sha256 != first[0]


@pytest.mark.skipif(shutil.which('sha256sum') is None, reason='coreutils sha256sum missing')
def test_the_sha256_sidecar_is_accepted_by_sha256sum(tmp_path):
    path = make_sealed_onnx(tmp_path)
    result = subprocess.run(['sha256sum', '-c', path.name + '.sha256'], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize('target', ['missing', 'directory'])
def test_seal_refuses_what_is_not_a_regular_file(tmp_path, target):
    path = tmp_path / target
    if target == 'directory':
        path.mkdir()
    with pytest.raises(ManifestError, match='not a regular file'):
        sealing.seal_artifact(path, plan_manifest())
    assert not sealing.sha256_sidecar_path(path).exists()


@pytest.mark.parametrize('text, expected', [
    (f'{DIGEST}  model.engine\n', (DIGEST, 'model.engine')),
    (f'{DIGEST} *model.engine\n', (DIGEST, 'model.engine')),
    (f'{DIGEST}  model.engine', (DIGEST, 'model.engine')),
    (f'{DIGEST.upper()}  dir/model with space.engine\n', (DIGEST, 'dir/model with space.engine')),
])
def test_read_sha256_sidecar_accepts_sha256sum_lines(tmp_path, text, expected):
    path = tmp_path / 'x.sha256'
    path.write_text(text)
    assert sealing.read_sha256_sidecar(path) == expected


@pytest.mark.parametrize('content', [
    b'',
    b'\n',
    f'{DIGEST}  a\n{DIGEST}  b\n'.encode(),
    f'{DIGEST[:-1]}  model.engine\n'.encode(),
    f'{DIGEST[:-1]}g  model.engine\n'.encode(),
    f'{DIGEST}\n'.encode(),
    f'{DIGEST}  \n'.encode(),
    f'{DIGEST}model.engine\n'.encode(),
    b'\xff\xfe' + DIGEST.encode() + b'  model.engine\n',
    (DIGEST + '  ' + 'x' * 5000 + '\n').encode(),
])
def test_read_sha256_sidecar_refuses_malformed_content(tmp_path, content):
    path = tmp_path / 'x.sha256'
    path.write_bytes(content)
    with pytest.raises(ManifestError, match=str(path)):
        sealing.read_sha256_sidecar(path)


def test_read_sha256_sidecar_refuses_a_missing_file(tmp_path):
    with pytest.raises(ManifestError, match='cannot read'):
        sealing.read_sha256_sidecar(tmp_path / 'absent.sha256')


def test_manifest_from_onnx_reads_io_opset_precision_memory_and_contract(tmp_path):
    import onnxruntime

    path = make_onnx(tmp_path / 'tiny.onnx', 16, 24)
    manifest = sealing.manifest_from_onnx(path)
    assert manifest.artifact_sha256 == ''
    assert manifest.runtime == 'onnxruntime'
    assert manifest.runtime_version == onnxruntime.__version__
    assert manifest.opset == 17
    assert manifest.precision == 'fp32'
    assert [(t.name, t.mode, t.dtype, t.shape) for t in manifest.tensors] == [
        ('image', 'input', 'float32', (1, 1, 16, 24)),
        ('doubled', 'output', 'float32', (1, 1, 16, 24))]
    assert manifest.memory.weights_bytes == 4
    assert manifest.memory.io_buffer_bytes == 2 * 16 * 24 * 4
    contract = manifest.preprocess
    assert (contract.width, contract.height, contract.color, contract.layout,
            contract.dtype) == (24, 16, 'mono', 'NCHW', 'float32')


def _write_model(path, input_shape, input_type=TensorProto.FLOAT, initializers=(),
                 output_shape=None):
    graph = helper.make_graph(
        [helper.make_node('Identity', ['x'], ['y'])], 'g',
        [helper.make_tensor_value_info('x', input_type, input_shape)],
        [helper.make_tensor_value_info('y', input_type, output_shape or input_shape)],
        list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize('shape, dtype, expected', [
    ([1, 3, 32, 48], TensorProto.FLOAT, ('NCHW', 'rgb', 48, 32, 'float32')),
    ([1, 32, 48, 3], TensorProto.UINT8, ('NHWC', 'rgb', 48, 32, 'uint8')),
    ([1, 32, 48, 1], TensorProto.FLOAT16, ('NHWC', 'mono', 48, 32, 'float16')),
])
def test_the_contract_is_derived_from_the_image_input(tmp_path, shape, dtype, expected):
    contract = sealing.manifest_from_onnx(_write_model(tmp_path / 'm.onnx', shape,
                                                       dtype)).preprocess
    assert (contract.layout, contract.color, contract.width, contract.height,
            contract.dtype) == expected
    assert contract.scale == (1.0 if expected[-1] == 'uint8' else 1.0 / 255.0)


def test_preprocess_changes_override_the_derived_contract(tmp_path):
    path = _write_model(tmp_path / 'm.onnx', [1, 3, 32, 48])
    contract = sealing.manifest_from_onnx(path, preprocess={
        'color': 'bgr', 'mean': (0.5, 0.5, 0.5), 'resize': 'letterbox'}).preprocess
    assert (contract.color, contract.mean, contract.resize) == ('bgr', (0.5, 0.5, 0.5),
                                                                'letterbox')


def test_a_non_image_input_is_refused_with_or_without_an_explicit_contract(tmp_path):
    path = _write_model(tmp_path / 'm.onnx', [1, 128])
    with pytest.raises(ManifestError, match='width, height, layout'):
        sealing.manifest_from_onnx(path)
    with pytest.raises(ManifestError, match=r'shape \(1, 1, 1, 128\).*takes float32 \(1, 128\)'):
        sealing.manifest_from_onnx(path, preprocess={'width': 128, 'height': 1,
                                                     'layout': 'NCHW'})


@pytest.mark.parametrize('shape, preprocess', [
    ([1, 4, 64, 64], {'width': 64, 'height': 64, 'layout': 'NCHW'}),
    ([1, 3, 64, 64], {'color': 'mono'}),
    ([1, 1, 64, 64], {'width': 32}),
    ([1, 64, 64, 3], {'layout': 'NCHW'}),
])
def test_a_contract_the_input_cannot_take_is_refused(tmp_path, shape, preprocess):
    """Sealed, such a model would configure and then fail every frame."""
    path = _write_model(tmp_path / 'm.onnx', shape)
    with pytest.raises(ManifestError, match=rf"input 'x': the preprocessing makes .* but the "
                       rf"input takes float32 \({', '.join(map(str, shape))}\)"):
        sealing.manifest_from_onnx(path, preprocess=preprocess)


def test_a_contract_that_matches_a_dynamic_profile_is_taken():
    spec = TensorSpec('x', 'input', 'float32', (1, 3, -1, -1),
                      profile=((1, 3, 32, 32), (1, 3, 64, 64), (1, 3, 128, 128)))
    contract = sealing.contract_for_input(spec, 'm.engine', {'width': 96, 'height': 64})
    assert contract.input_shape == (1, 3, 64, 96)
    with pytest.raises(ManifestError, match=r'profile min \(1, 3, 32, 32\), max'):
        sealing.contract_for_input(spec, 'm.engine', {'width': 256, 'height': 64})


def test_an_invalid_contract_override_is_refused_by_name(tmp_path):
    path = _write_model(tmp_path / 'm.onnx', [1, 3, 32, 48])
    with pytest.raises(ManifestError, match=r"preprocess\.color = 'cmyk' is invalid"):
        sealing.manifest_from_onnx(path, preprocess={'color': 'cmyk'})
    with pytest.raises(ManifestError, match=r'--preprocess-mean = \(1\.0, 2\.0\) is invalid'):
        sealing.manifest_from_onnx(path, preprocess={'mean': (1.0, 2.0)},
                                   preprocess_labels={'mean': '--preprocess-mean'})


def test_dynamic_io_dimensions_are_refused_naming_the_tensor(tmp_path):
    path = _write_model(tmp_path / 'm.onnx', ['batch', 1, 16, 16])
    with pytest.raises(ManifestError, match=r"input 'x' dimension 0 is dynamic \(batch\)"):
        sealing.manifest_from_onnx(path)


@pytest.mark.parametrize('dtype, expected', [
    (np.float32, 'fp32'), (np.float16, 'fp16'), (np.int8, 'int8')])
def test_precision_follows_the_initializers(tmp_path, dtype, expected):
    weight = numpy_helper.from_array(np.ones(4, dtype=dtype), 'w')
    path = _write_model(tmp_path / 'm.onnx', [1, 1, 8, 8], initializers=[weight])
    manifest = sealing.manifest_from_onnx(path)
    assert manifest.precision == expected
    assert manifest.memory.weights_bytes == 4 * np.dtype(dtype).itemsize


def test_external_data_is_refused_because_the_seal_would_not_cover_it(tmp_path):
    weight = numpy_helper.from_array(np.ones(1024, dtype=np.float32), 'w')
    path = _write_model(tmp_path / 'm.onnx', [1, 1, 8, 8], initializers=[weight])
    model = onnx.load(str(path))
    onnx.save(model, str(path), save_as_external_data=True, location='m.data',
              size_threshold=0)
    with pytest.raises(ManifestError, match='external data'):
        sealing.manifest_from_onnx(path)


@pytest.mark.parametrize('content', [b'', b'not an onnx model at all', bytes(range(256))])
def test_a_file_that_is_not_onnx_is_refused(tmp_path, content):
    path = tmp_path / 'bad.onnx'
    path.write_bytes(content)
    with pytest.raises(ManifestError, match=str(path)):
        sealing.manifest_from_onnx(path)


def test_activation_estimate_counts_intermediate_tensors(tmp_path):
    graph = helper.make_graph(
        [helper.make_node('Relu', ['x'], ['a']), helper.make_node('Relu', ['a'], ['b']),
         helper.make_node('Relu', ['b'], ['y'])], 'g',
        [helper.make_tensor_value_info('x', TensorProto.FLOAT, [1, 1, 10, 10])],
        [helper.make_tensor_value_info('y', TensorProto.FLOAT, [1, 1, 10, 10])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / 'm.onnx'))
    manifest = sealing.manifest_from_onnx(tmp_path / 'm.onnx')
    assert manifest.memory.activation_bytes == 2 * 100 * 4
    assert '2 intermediate tensors' in manifest.extra['activation_estimate']


def test_write_atomically_leaves_no_temp_file_on_failure(tmp_path, monkeypatch):
    def refuse(src, dst):
        raise OSError('disk full')

    monkeypatch.setattr(os, 'replace', refuse)
    with pytest.raises(OSError, match='disk full'):
        sealing.write_atomically(tmp_path / 'x.json', json.dumps({}))
    assert list(tmp_path.iterdir()) == []
