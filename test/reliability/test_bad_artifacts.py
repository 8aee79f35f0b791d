"""Bad model artifacts: configure is refused with the failed check named, nothing leaked.

Each refusal is a FAILURE (not a fault): the log names the check that failed, and the node is
left unconfigured exactly as before.
"""

import importlib.util
import json
import shutil

from node_harness import model_parameters
import numpy as np
from onnx import helper, numpy_helper, TensorProto
import pytest
from reliability_support import footprint, make_sealed_graph, settled_footprint
from sealed_models import make_sealed_onnx, make_sealed_plan

from gps_denied_inference.artifacts.manifest import Manifest
from gps_denied_inference.artifacts.sealing import (
    manifest_sidecar_path,
    seal_artifact,
    sha256_sidecar_path,
)


def _flip_one_byte(tmp_path, model):
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    return model, {}


def _truncate(tmp_path, model):
    model.write_bytes(model.read_bytes()[:-7])
    return model, {}


def _empty(tmp_path, model):
    model.write_bytes(b'')
    return model, {}


def _directory(tmp_path, model):
    directory = tmp_path / 'dir.onnx'
    directory.mkdir()
    return directory, {}


def _dangling_symlink(tmp_path, model):
    link = tmp_path / 'link.onnx'
    link.symlink_to(tmp_path / 'gone.onnx')
    return link, {}


def _missing_file(tmp_path, model):
    return tmp_path / 'absent.onnx', {}


def _missing_sha256_sidecar(tmp_path, model):
    sha256_sidecar_path(model).unlink()
    return model, {}


def _missing_manifest(tmp_path, model):
    manifest_sidecar_path(model).unlink()
    return model, {}


def _garbled_sha256_sidecar(tmp_path, model):
    sha256_sidecar_path(model).write_text('not a digest  tiny.onnx\n')
    return model, {}


def _garbled_manifest(tmp_path, model):
    manifest_sidecar_path(model).write_text('{"schema_version": 1, "runtime": ')
    return model, {}


def _binary_manifest(tmp_path, model):
    manifest_sidecar_path(model).write_bytes(bytes(range(128, 256)))
    return model, {}


def _other_model(tmp_path, name='tiny.onnx'):
    other_dir = tmp_path / 'other'
    other_dir.mkdir()
    return make_sealed_onnx(other_dir, name, height=8, width=8)


def _sidecars_of_another_model(tmp_path, model):
    other = _other_model(tmp_path, 'other.onnx')
    shutil.copy(sha256_sidecar_path(other), sha256_sidecar_path(model))
    shutil.copy(manifest_sidecar_path(other), manifest_sidecar_path(model))
    return model, {}


def _sidecars_swapped_same_file_name(tmp_path, model):
    other = _other_model(tmp_path)
    shutil.copy(sha256_sidecar_path(other), sha256_sidecar_path(model))
    shutil.copy(manifest_sidecar_path(other), manifest_sidecar_path(model))
    return model, {}


def _manifest_swapped(tmp_path, model):
    shutil.copy(manifest_sidecar_path(_other_model(tmp_path)), manifest_sidecar_path(model))
    return model, {}


def _manifest_for_another_digest(tmp_path, model):
    path = manifest_sidecar_path(model)
    document = json.loads(path.read_text())
    document['artifact_sha256'] = 'ab' * 32
    path.write_text(json.dumps(document))
    return model, {}


def _pinned_digest_mismatch(tmp_path, model):
    return model, {'sha256': 'cd' * 32}


def _tensorrt_artifact_for_onnxruntime(tmp_path, model):
    return make_sealed_plan(tmp_path), {}


def _not_onnx(tmp_path, model):
    manifest = json.loads(manifest_sidecar_path(model).read_text())
    model.write_bytes(b'\x08\x07 this is not a protobuf ONNX model \xff\xfe' * 16)
    manifest['artifact_sha256'] = ''
    seal_artifact(model, Manifest.from_json(json.dumps(manifest)))
    return model, {}


def _int64_output(tmp_path, model):
    path = make_sealed_graph(
        tmp_path / 'int64.onnx', [helper.make_node('Cast', ['image'], ['counts'],
                                                   to=TensorProto.INT64)],
        [helper.make_tensor_value_info('counts', TensorProto.INT64, [1, 1, 16, 16])])
    return path, {}


def _rank4_output(tmp_path, model):
    shape = numpy_helper.from_array(np.array([2, 2, 8, 8], dtype=np.int64), 'shape')
    path = make_sealed_graph(
        tmp_path / 'rank4.onnx', [helper.make_node('Reshape', ['image', 'shape'], ['cube'])],
        [helper.make_tensor_value_info('cube', TensorProto.FLOAT, [2, 2, 8, 8])], [shape])
    return path, {}


CASES = [
    (_flip_one_byte, 'digest check failed'),
    (_truncate, 'digest check failed'),
    (_empty, 'file check failed: expected a regular, readable, non-empty file, found an '
             'empty file (0 B)'),
    (_directory, 'file check failed: expected a regular, readable, non-empty file, found a '
                 'directory'),
    (_dangling_symlink, 'found a dangling symlink'),
    (_missing_file, 'found no such file'),
    (_missing_sha256_sidecar, 'sha256-sidecar check failed: expected tiny.onnx.sha256 beside '
                              'the artifact, found no such file'),
    (_missing_manifest, 'manifest check failed: expected a valid tiny.onnx.manifest.json, '
                        'found no such file'),
    (_garbled_sha256_sidecar, 'sha256-sidecar check failed: expected one line'),
    (_garbled_manifest, 'manifest check failed: expected a valid tiny.onnx.manifest.json, '
                        'found an invalid manifest'),
    (_binary_manifest, 'found a file that is not UTF-8 text'),
    (_sidecars_of_another_model, "found a digest of 'other.onnx' (the sidecar is for another "
                                 'file)'),
    (_sidecars_swapped_same_file_name, 'digest check failed'),
    (_manifest_swapped, 'manifest-digest check failed'),
    (_manifest_for_another_digest, 'manifest-digest check failed'),
    (_pinned_digest_mismatch, 'pinned-digest check failed: expected sha256 ' + 'cd' * 32),
    (_tensorrt_artifact_for_onnxruntime, "runtime check failed: expected runtime "
                                         "'onnxruntime', found runtime 'tensorrt'"),
    (_not_onnx, 'model tiny: ONNX Runtime could not create a session for'),
    (_int64_output, 'dtype int64 has no sensor_msgs/Image encoding'),
    (_rank4_output, 'has rank 4 after dropping leading 1-dims'),
]


@pytest.mark.parametrize('corrupt, reason', CASES, ids=[c[0].__name__[1:] for c in CASES])
def test_bad_artifact_is_refused_with_its_reason_and_leaves_nothing(
        start, model, tmp_path, capfd, corrupt, reason):
    path, extra = corrupt(tmp_path, model)
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(path), **extra)})
    before = footprint(harness)
    assert before.state == 'unconfigured' and not before.configured
    assert not harness.lifecycle.change('configure')
    after = settled_footprint(harness, before)
    assert after == before
    log = capfd.readouterr().err
    refusal = [line for line in log.splitlines() if 'configure refused:' in line]
    assert len(refusal) == 1, log
    assert reason in refusal[0]
    assert 'failed with a fault' not in log


def test_one_bad_model_of_two_refuses_both_and_loads_neither(start, model, tmp_path, capfd):
    good = make_sealed_onnx(tmp_path, 'good.onnx')
    _flip_one_byte(tmp_path, model)
    harness = start({'models': ['good', 'tiny'], **model_parameters('good', str(good)),
                     **model_parameters('tiny', str(model), topic='/camera2/image_raw')})
    before = footprint(harness)
    assert not harness.lifecycle.change('configure')
    assert settled_footprint(harness, before) == before
    assert 'tiny.onnx: digest check failed' in capfd.readouterr().err


def test_refused_configure_can_be_retried_once_the_artifact_is_fixed(start, model, tmp_path):
    pristine = model.read_bytes()
    _truncate(tmp_path, model)
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(model))})
    for _ in range(3):
        assert not harness.lifecycle.change('configure')
    model.write_bytes(pristine)
    assert harness.lifecycle.change('configure')
    assert harness.lifecycle.state() == 'inactive'


@pytest.mark.skipif(importlib.util.find_spec('tensorrt') is not None,
                    reason='this host has TensorRT: the refusal under test cannot happen here')
def test_tensorrt_engine_on_a_host_without_tensorrt_is_refused(start, tmp_path, capfd):
    engine = make_sealed_plan(tmp_path)
    harness = start({'models': ['tiny'], 'tiny.engine_path': str(engine),
                     'tiny.input_topic': '/camera/image_raw', 'tiny.runtime': 'tensorrt'})
    before = footprint(harness)
    assert not harness.lifecycle.change('configure')
    assert settled_footprint(harness, before) == before
    refusal = [line for line in capfd.readouterr().err.splitlines()
               if 'configure refused:' in line]
    assert len(refusal) == 1 and 'TensorRT is not installed on this host' in refusal[0]
