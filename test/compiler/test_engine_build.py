"""compile_engine on the fakes (builder API, Polygraphy) and a fake `trtexec` (a real process).

Every refusal that needs no GPU happens before TensorRT is imported; every failure leaves no
engine, temp file or sidecar behind; trtexec is killed with its whole process group.
"""

import json
import os
from pathlib import Path
import shutil
import stat
import sys
import time

import cv2
from fakes import gpu
from fakes.engines import make_dynamic_onnx, TRT
import numpy as np
import pytest
from sealed_models import make_onnx

from gps_denied_inference.artifacts.gate import EngineGate
from gps_denied_inference.artifacts.sealing import sha256_file
from gps_denied_inference.compiler import engine_build as trt_build
from gps_denied_inference.compiler.build_config import build_config_from_dict
from gps_denied_inference.compiler.calibration import cache_dataset_path, cache_sha256_path
from gps_denied_inference.errors import (
    CalibrationCacheError,
    EngineBuildError,
    GpsDeniedInferenceError,
    ManifestError,
)

PROFILE = {'image': {'min': [1, 1, 8, 8], 'opt': [1, 1, 16, 16], 'max': [1, 1, 32, 32]}}


@pytest.fixture
def fake():
    with gpu.installed() as device:
        yield device


@pytest.fixture
def onnx_path(tmp_path):
    return make_onnx(tmp_path / 'model.onnx')


def config(base=None, **fields):
    return build_config_from_dict(fields, base_dir=base or '.')


def compile_quietly(onnx, build_config, lines=None, **kwargs):
    sink = (lambda line: None) if lines is None else lines.append
    return trt_build.compile_engine(onnx, build_config, progress=sink, **kwargs)


def files_in(directory):
    return sorted(p.name for p in Path(directory).iterdir() if p.is_file())


def make_qdq_onnx(path):
    import onnx
    from onnx import helper, numpy_helper, TensorProto

    graph = helper.make_graph(
        [helper.make_node('QuantizeLinear', ['image', 'scale', 'zero'], ['q']),
         helper.make_node('DequantizeLinear', ['q', 'scale', 'zero'], ['doubled'])], 'qdq',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 1, 16, 16])],
        [helper.make_tensor_value_info('doubled', TensorProto.FLOAT, [1, 1, 16, 16])],
        [numpy_helper.from_array(np.array(0.05, dtype=np.float32), 'scale'),
         numpy_helper.from_array(np.array(0, dtype=np.int8), 'zero')])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def make_dataset(directory, count=4, size=(24, 20)):
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    for index in range(count):
        cv2.imwrite(str(directory / f'frame{index:03d}.png'),
                    rng.integers(0, 256, size, dtype=np.uint8))
    return directory


def calibration_config(tmp_path, backend='builder', **calibration):
    return config(tmp_path, backend=backend, precision='int8', int8_source='calibration',
                  calibration={'dataset_dir': 'calib', 'cache': 'model.calib', **calibration})


# -- the builder API backend -----------------------------------------------------------------

def test_the_builder_backend_builds_describes_and_seals(onnx_path, fake, tmp_path):
    manifest = compile_quietly(onnx_path, config(precision='fp16', workspace_mib=256))
    engine = tmp_path / 'model.engine'
    assert files_in(tmp_path) == ['model.engine', 'model.engine.manifest.json',
                                  'model.engine.sha256', 'model.onnx']
    assert EngineGate().validate(engine, TRT) == manifest
    assert manifest.runtime == 'tensorrt' and manifest.runtime_version == '10.3.0'
    assert (manifest.device.name, manifest.device.compute_capability) == ('Orin (fake)', '8.7')
    assert [(t.name, t.mode, t.dtype, t.shape) for t in manifest.tensors] == [
        ('image', 'input', 'float32', (1, 1, 16, 16)),
        ('doubled', 'output', 'float32', (1, 1, 16, 16))]
    assert manifest.memory.activation_bytes == 65536  # the engine's device_memory_size_v2
    assert manifest.memory.weights_bytes == engine.stat().st_size
    assert manifest.memory.io_buffer_bytes == 2 * 16 * 16 * 4
    assert manifest.source_onnx_sha256 == sha256_file(onnx_path)
    assert manifest.precision == 'fp16' and manifest.builder_flags == ('fp16',)
    assert (manifest.preprocess.width, manifest.preprocess.height) == (16, 16)
    limit = fake.calls_of('IBuilderConfig.set_memory_pool_limit')[0].detail
    assert limit[0].name == 'WORKSPACE' and limit[1] == 256 << 20
    assert fake.retained == 0 and fake.stack() == [] and fake.live_allocations == 0


@pytest.mark.parametrize('precision,source,flags', [
    ('fp32', None, []),
    ('fp16', None, ['FP16']),
    ('int8', 'qdq', ['INT8']),
    ('mixed', 'qdq', ['INT8', 'FP16']),
])
def test_precision_sets_the_builder_flags(tmp_path, fake, precision, source, flags):
    model = make_qdq_onnx(tmp_path / 'model.onnx') if source else make_onnx(
        tmp_path / 'model.onnx')
    fields = {'precision': precision} if source is None else {'precision': precision,
                                                              'int8_source': source}
    manifest = compile_quietly(model, config(**fields))
    assert [c.detail[0] for c in fake.calls_of('IBuilderConfig.set_flag')] == flags
    assert manifest.precision == precision
    assert 'calibration.batches' not in fake.events()  # Q/DQ needs no calibrator


def test_the_build_config_digest_is_the_config_file_digest(onnx_path, fake, tmp_path):
    path = tmp_path / 'build.json'
    path.write_text(json.dumps({'precision': 'fp16'}))
    from gps_denied_inference.compiler.build_config import load_build_config
    manifest = compile_quietly(onnx_path, load_build_config(path))
    assert manifest.build_config_sha256 == sha256_file(path)


def test_progress_shows_elapsed_time_backend_output_and_a_heartbeat(onnx_path, fake,
                                                                    monkeypatch):
    monkeypatch.setattr(trt_build, 'HEARTBEAT_S', 0.05)
    fake.build_delay_s = 0.4
    lines = []
    compile_quietly(onnx_path, config(), lines)
    assert all(line.startswith('[') and ' s] ' in line for line in lines)
    assert any('TensorRT INFO: fake builder: building' in line for line in lines)
    assert any('TensorRT builder: still building' in line for line in lines)
    assert 'sealed' in lines[-1]


def test_a_dynamic_input_is_built_with_its_profile(tmp_path, fake):
    model = make_dynamic_onnx(tmp_path / 'model.onnx')
    manifest = compile_quietly(model, config(profiles=PROFILE))
    assert fake.calls_of('IOptimizationProfile.set_shape')[0].detail == (
        'image', (1, 1, 8, 8), (1, 1, 16, 16), (1, 1, 32, 32))
    image, doubled = manifest.tensors
    assert image.shape == (1, 1, -1, -1) and doubled.shape == (1, 1, -1, -1)
    assert image.profile == doubled.profile == ((1, 1, 8, 8), (1, 1, 16, 16), (1, 1, 32, 32))
    assert manifest.memory.io_buffer_bytes == 2 * 32 * 32 * 4
    assert (manifest.preprocess.width, manifest.preprocess.height) == (16, 16)  # opt shape


def test_the_timing_cache_is_created_then_reused(onnx_path, fake, tmp_path):
    build = config(tmp_path, timing_cache='orin.timing')
    compile_quietly(onnx_path, build)
    first = (tmp_path / 'orin.timing').read_bytes()
    compile_quietly(onnx_path, build)
    assert (tmp_path / 'orin.timing').read_bytes() == first + b'tactic\n'


def test_an_unusable_timing_cache_is_refused_and_kept(onnx_path, fake, tmp_path):
    (tmp_path / 'orin.timing').write_bytes(b'from another device')
    with pytest.raises(EngineBuildError, match='timing cache'):
        compile_quietly(onnx_path, config(tmp_path, timing_cache='orin.timing'))
    assert (tmp_path / 'orin.timing').read_bytes() == b'from another device'
    assert files_in(tmp_path) == ['model.onnx', 'orin.timing']


# -- refusals before TensorRT, and nothing left behind ---------------------------------------

@pytest.mark.parametrize('dynamic,fields,message', [
    (True, {}, 'give profiles.image'),
    (False, {'profiles': PROFILE}, 'only for dynamic inputs'),
    (True, {'profiles': {'image': {'min': [1, 8, 8], 'opt': [1, 16, 16],
                                   'max': [1, 32, 32]}}}, 'does not fit'),
    (True, {'profiles': {'image': {'min': [1, 3, 8, 8], 'opt': [1, 3, 16, 16],
                                   'max': [1, 3, 32, 32]}}}, 'does not fit'),
    (True, {'profiles': {**PROFILE, 'mask': PROFILE['image']}}, 'not inputs of the model'),
    (False, {'precision': 'int8', 'int8_source': 'qdq'}, 'no QuantizeLinear'),
    (False, {'preprocess': {'color': 'rgb'}}, 'preprocess'),
])
def test_config_and_model_disagreements_are_refused_before_tensorrt(tmp_path, fake, dynamic,
                                                                    fields, message):
    model = (make_dynamic_onnx if dynamic else make_onnx)(tmp_path / 'model.onnx')
    with pytest.raises(EngineBuildError, match=message):
        compile_quietly(model, config(**fields))
    assert fake.events() == []
    assert files_in(tmp_path) == ['model.onnx']


def test_a_calibrator_for_an_explicitly_quantized_model_is_refused(tmp_path, fake):
    make_dataset(tmp_path / 'calib')
    model = make_qdq_onnx(tmp_path / 'model.onnx')
    with pytest.raises(EngineBuildError, match='set int8_source to qdq'):
        compile_quietly(model, calibration_config(tmp_path))
    assert fake.events() == []


@pytest.mark.parametrize('problem', ['missing', 'not onnx', 'overwrite'])
def test_unusable_inputs_are_refused(tmp_path, fake, problem):
    model = tmp_path / 'model.onnx'
    output = None
    if problem == 'not onnx':
        model.write_bytes(b'\x08\x01garbage' * 10)
    elif problem == 'overwrite':
        make_onnx(model)
        output = model
    with pytest.raises(EngineBuildError):
        compile_quietly(model, config(), output=output)
    assert fake.events() == []


def fail_sealing(monkeypatch):
    real = trt_build.seal_artifact

    def seal_then_fail(path, manifest):
        real(path, manifest)
        raise ManifestError('disk full (injected) after both sidecars were written')

    monkeypatch.setattr(trt_build, 'seal_artifact', seal_then_fail)


@pytest.mark.parametrize('stage', ['parse', 'build', 'deserialize', 'context', 'seal',
                                   'interrupt'])
def test_a_failed_build_leaves_no_engine_temp_file_or_sidecar(onnx_path, fake, tmp_path,
                                                              monkeypatch, stage):
    if stage == 'parse':
        fake.fail('OnnxParser.parse_from_file', soft=True)
    elif stage == 'build':
        fake.fail('Builder.build_serialized_network', soft=True)
    elif stage == 'deserialize':
        fake.fail('Runtime.deserialize_cuda_engine', soft=True)
    elif stage == 'context':
        fake.fail('Context.push', after=0)
    elif stage == 'seal':
        fail_sealing(monkeypatch)
    else:
        fake.fail('Builder.build_serialized_network', KeyboardInterrupt())
    expected = KeyboardInterrupt if stage == 'interrupt' else GpsDeniedInferenceError
    with pytest.raises(expected) as info:
        compile_quietly(onnx_path, config())
    if stage in ('parse', 'build', 'deserialize'):
        assert isinstance(info.value, EngineBuildError)
    if stage == 'parse':
        assert 'UNSUPPORTED_NODE' in str(info.value)
    assert files_in(tmp_path) == ['model.onnx']
    assert fake.retained == 0 and fake.stack() == []


def test_a_failed_build_leaves_an_earlier_engine_untouched(onnx_path, fake, tmp_path):
    compile_quietly(onnx_path, config())
    before = {name: (tmp_path / name).read_bytes() for name in files_in(tmp_path)}
    fake.fail('Builder.build_serialized_network', soft=True)
    with pytest.raises(EngineBuildError):
        compile_quietly(onnx_path, config())
    assert {name: (tmp_path / name).read_bytes() for name in files_in(tmp_path)} == before


# -- INT8 calibration ------------------------------------------------------------------------

def test_int8_calibration_feeds_the_dataset_and_seals_its_cache(onnx_path, fake, tmp_path):
    make_dataset(tmp_path / 'calib', count=5)
    manifest = compile_quietly(onnx_path, calibration_config(tmp_path, batch_size=1,
                                                             max_batches=4))
    assert fake.calls_of('calibration.batches')[0].detail == (4, 1)
    cache = tmp_path / 'model.calib'
    assert cache.read_bytes().startswith(b'TRT-100300-EntropyCalibration2')
    assert cache_sha256_path(cache).read_text().split()[0] == sha256_file(cache)
    digest = cache_dataset_path(cache).read_text().strip()
    assert manifest.extra['calibration_dataset_sha256'] == digest
    assert manifest.builder_flags == ('int8', 'int8-calibration')
    assert fake.live_allocations == 0  # the calibrator's device buffer was freed


def test_a_trusted_cache_is_reused_and_a_changed_dataset_recalibrates(onnx_path, fake,
                                                                       tmp_path):
    make_dataset(tmp_path / 'calib')
    build = calibration_config(tmp_path)
    compile_quietly(onnx_path, build)
    cache = (tmp_path / 'model.calib').read_bytes()
    fake.calls.clear()
    compile_quietly(onnx_path, build)
    assert 'calibration.cache_used' in fake.events()
    assert 'calibration.batches' not in fake.events()
    cv2.imwrite(str(tmp_path / 'calib' / 'frame000.png'), np.zeros((24, 20), np.uint8))
    fake.calls.clear()
    compile_quietly(onnx_path, build)
    assert fake.calls_of('calibration.batches')[0].detail == (4, 1)
    assert (tmp_path / 'model.calib').read_bytes() != cache


def test_a_corrupt_cache_stops_the_build_before_tensorrt_and_is_kept(onnx_path, fake,
                                                                    tmp_path):
    make_dataset(tmp_path / 'calib')
    compile_quietly(onnx_path, calibration_config(tmp_path))
    cache = tmp_path / 'model.calib'
    cache.write_bytes(cache.read_bytes() + b'tampered')
    damaged = cache.read_bytes()
    for name in ('model.engine', 'model.engine.sha256', 'model.engine.manifest.json'):
        (tmp_path / name).unlink()
    fake.calls.clear()
    gpu.unload()
    with pytest.raises(CalibrationCacheError, match='corrupt'):
        compile_quietly(onnx_path, calibration_config(tmp_path))
    assert fake.events() == [] and cache.read_bytes() == damaged
    assert 'model.engine' not in files_in(tmp_path)


def test_an_undecodable_calibration_image_fails_the_build_cleanly(onnx_path, fake, tmp_path):
    make_dataset(tmp_path / 'calib')
    (tmp_path / 'calib' / 'frame002.png').write_bytes(b'not a png')
    with pytest.raises(CalibrationCacheError, match='frame002.png'):
        compile_quietly(onnx_path, calibration_config(tmp_path))
    assert files_in(tmp_path) == ['model.onnx']
    assert fake.live_allocations == 0


def test_an_empty_dataset_is_refused_before_tensorrt(onnx_path, fake, tmp_path):
    (tmp_path / 'calib').mkdir()
    with pytest.raises(CalibrationCacheError, match='no images'):
        compile_quietly(onnx_path, calibration_config(tmp_path))
    assert fake.events() == []


# -- Polygraphy ------------------------------------------------------------------------------

def test_the_polygraphy_backend_builds_the_same_engine(tmp_path, fake):
    model = make_dynamic_onnx(tmp_path / 'model.onnx')
    make_dataset(tmp_path / 'calib')
    build = config(tmp_path, backend='polygraphy', precision='mixed',
                   int8_source='calibration', timing_cache='orin.timing', profiles=PROFILE,
                   calibration={'dataset_dir': 'calib', 'cache': 'model.calib'})
    manifest = compile_quietly(model, build)
    assert fake.calls_of('polygraphy.CreateConfig')[0].detail == (True, True, True, None)
    assert fake.calls_of('polygraphy.EngineBytesFromNetwork')[0].detail == (
        str(tmp_path / 'orin.timing'),)
    assert [c.detail[0] for c in fake.calls_of('IBuilderConfig.set_flag')] == ['FP16', 'INT8']
    assert fake.calls_of('calibration.batches')[0].detail == (4, 1)
    assert EngineGate().validate(tmp_path / 'model.engine', TRT) == manifest
    assert manifest.extra['backend'] == 'polygraphy'


def test_polygraphy_missing_is_named_and_leaves_nothing(onnx_path, fake, tmp_path):
    fake.blocked.add('polygraphy')
    with pytest.raises(EngineBuildError, match='polygraphy'):
        compile_quietly(onnx_path, config(backend='polygraphy'))
    assert files_in(tmp_path) == ['model.onnx']


# -- trtexec (a real subprocess) -------------------------------------------------------------

def write_trtexec(directory, body):
    """A fake `trtexec` on PATH: records its argv, then runs `body` (Python)."""
    directory.mkdir(exist_ok=True)
    script = directory / 'trtexec'
    script.write_text(f'#!{sys.executable}\n'
                      'import json, os, signal, subprocess, sys, time\n'
                      'here = os.path.dirname(os.path.abspath(__file__))\n'
                      'json.dump(sys.argv[1:], open(os.path.join(here, "argv.json"), "w"))\n'
                      'args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if "=" in a)\n'
                      + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture
def trtexec_dir(tmp_path, monkeypatch):
    directory = tmp_path / 'bin'
    directory.mkdir()
    monkeypatch.setenv('PATH', f'{directory}{os.pathsep}{os.environ["PATH"]}')
    return directory


@pytest.fixture
def reference_plan(tmp_path, fake):
    """Engine bytes the fake TensorRT can read, for the fake trtexec to 'build'."""
    source = tmp_path / 'reference'
    source.mkdir()
    make_onnx(source / 'model.onnx')
    compile_quietly(source / 'model.onnx', config())
    plan = tmp_path / 'reference.plan'
    plan.write_bytes((source / 'model.engine').read_bytes())
    shutil.rmtree(source)
    fake.calls.clear()
    return plan


def succeeding_body(plan):
    return ('print("&&&& RUNNING TensorRT.trtexec [TensorRT v100300]", flush=True)\n'
            'print("[I] Engine built in 1.2 sec.", flush=True)\n'
            f'open(args["saveEngine"], "wb").write(open({str(plan)!r}, "rb").read())\n'
            'print("&&&& PASSED", flush=True)\n')


def test_trtexec_builds_with_the_configured_command_line(onnx_path, fake, tmp_path,
                                                         trtexec_dir, reference_plan):
    write_trtexec(trtexec_dir, succeeding_body(reference_plan))
    lines = []
    manifest = compile_quietly(onnx_path, config(tmp_path, backend='trtexec',
                                                 precision='fp16', workspace_mib=512,
                                                 timing_cache='orin.timing'), lines)
    argv = json.loads((trtexec_dir / 'argv.json').read_text())
    engine = tmp_path / 'model.engine'
    assert argv == [f'--onnx={onnx_path}', f'--saveEngine={engine}.tmp-{os.getpid()}',
                    '--memPoolSize=workspace:512M', '--skipInference', '--noTF32',
                    '--profilingVerbosity=layer_names_only', '--fp16',
                    f'--timingCacheFile={tmp_path / "orin.timing"}']
    assert any(line.endswith('trtexec: [I] Engine built in 1.2 sec.') for line in lines)
    assert EngineGate().validate(engine, TRT) == manifest
    assert manifest.extra['backend'] == 'trtexec'
    assert files_in(tmp_path) == ['model.engine', 'model.engine.manifest.json',
                                  'model.engine.sha256', 'model.onnx', 'reference.plan']


@pytest.mark.parametrize('make_model,fields,tail', [
    (make_dynamic_onnx, {'profiles': PROFILE},
     ['--fp16', '--minShapes=image:1x1x8x8', '--optShapes=image:1x1x16x16',
      '--maxShapes=image:1x1x32x32']),
    (make_qdq_onnx, {'precision': 'mixed', 'int8_source': 'qdq'}, ['--int8', '--fp16']),
    (make_qdq_onnx, {'precision': 'int8', 'int8_source': 'qdq'},
     ['--profilingVerbosity=layer_names_only', '--int8']),
    (make_onnx, {'precision': 'fp32'}, ['--skipInference', '--noTF32',
                                        '--profilingVerbosity=layer_names_only']),
    (make_onnx, {'precision': 'fp32', 'tf32': True},
     ['--skipInference', '--profilingVerbosity=layer_names_only']),
])
def test_trtexec_gets_shapes_and_precision_flags(tmp_path, fake, trtexec_dir, make_model,
                                                 fields, tail):
    model = make_model(tmp_path / 'model.onnx')
    write_trtexec(trtexec_dir, 'sys.exit(1)\n')
    with pytest.raises(EngineBuildError, match='status 1'):
        compile_quietly(model, config(backend='trtexec', **fields))
    argv = json.loads((trtexec_dir / 'argv.json').read_text())
    assert argv[-len(tail):] == tail


def test_trtexec_with_int8_calibration_reads_only_a_trusted_cache(onnx_path, fake, tmp_path,
                                                                  trtexec_dir,
                                                                  reference_plan):
    make_dataset(tmp_path / 'calib')
    write_trtexec(trtexec_dir, succeeding_body(reference_plan))
    with pytest.raises(EngineBuildError, match='trtexec cannot calibrate'):
        compile_quietly(onnx_path, calibration_config(tmp_path, backend='trtexec'))
    assert not (trtexec_dir / 'argv.json').exists()
    compile_quietly(onnx_path, calibration_config(tmp_path))  # builder API makes the cache
    compile_quietly(onnx_path, calibration_config(tmp_path, backend='trtexec'))
    argv = json.loads((trtexec_dir / 'argv.json').read_text())
    assert argv[-1] == f'--calib={tmp_path / "model.calib"}' and '--int8' in argv


def test_a_failing_trtexec_reports_its_last_lines_and_leaves_nothing(onnx_path, fake,
                                                                     tmp_path, trtexec_dir):
    write_trtexec(trtexec_dir, 'print("[E] Error[4]: [network.cpp::validate] broken")\n'
                               'open(args["saveEngine"], "wb").write(b"partial")\n'
                               'sys.exit(3)\n')
    with pytest.raises(EngineBuildError, match='status 3') as info:
        compile_quietly(onnx_path, config(backend='trtexec'))
    assert 'Error[4]' in str(info.value)
    assert files_in(tmp_path) == ['model.onnx']


def is_running(pid):
    try:
        state = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ('Z', 'X')


def wait_until_stopped(pid):
    for _ in range(500):
        if not is_running(pid):
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize('ignores_sigterm', [False, True])
def test_trtexec_past_its_timeout_is_killed_with_its_children(onnx_path, fake, tmp_path,
                                                              trtexec_dir, monkeypatch,
                                                              ignores_sigterm):
    monkeypatch.setattr(trt_build, 'KILL_GRACE_S', 0.3)
    monkeypatch.setattr(trt_build, 'HEARTBEAT_S', 0.1)
    ignore = 'signal.signal(signal.SIGTERM, signal.SIG_IGN)\n' if ignores_sigterm else ''
    write_trtexec(trtexec_dir, ignore
                  + 'child = subprocess.Popen([sys.executable, "-c", "import time; '
                    'time.sleep(60)"])\n'
                  'open(os.path.join(here, "pids"), "w").write(f"{os.getpid()} {child.pid}")\n'
                  'open(args["saveEngine"], "wb").write(b"partial")\n'
                  'print("[I] building", flush=True)\n'
                  'time.sleep(60)\n')
    lines = []
    # Time for the fake to start Python, its child and write the pids on a loaded machine.
    with pytest.raises(EngineBuildError, match='trtexec_timeout_s = 5 s'):
        compile_quietly(onnx_path, config(backend='trtexec'), lines, trtexec_timeout_s=5.0)
    pids = [int(p) for p in (trtexec_dir / 'pids').read_text().split()]
    assert all(wait_until_stopped(pid) for pid in pids)
    assert files_in(tmp_path) == ['model.onnx']
    assert any('trtexec: [I] building' in line for line in lines)
    assert any('trtexec: still building' in line for line in lines)


def test_a_missing_trtexec_is_named(onnx_path, fake, tmp_path):
    with pytest.raises(EngineBuildError, match='no-such-trtexec'):
        compile_quietly(onnx_path, config(backend='trtexec', trtexec='no-such-trtexec'))
    assert files_in(tmp_path) == ['model.onnx']


def test_a_config_of_the_wrong_type_is_refused(onnx_path):
    with pytest.raises(EngineBuildError, match='BuildConfig'):
        trt_build.compile_engine(onnx_path, {'precision': 'fp16'})


# -- what the review against the real sources found ------------------------------------------

def plan_description(path):
    """The JSON the fake builder writes after the plan header: flags and profiling."""
    data = Path(path).read_bytes()
    return json.loads(data[gpu.PLAN_HEADER_SIZE:].decode('utf-8'))


@pytest.mark.parametrize('backend', ['builder', 'polygraphy', 'trtexec'])
def test_plugins_are_registered_before_parsing_and_before_deserializing(
        onnx_path, fake, tmp_path, trtexec_dir, reference_plan, backend):
    write_trtexec(trtexec_dir, succeeding_body(reference_plan))
    gpu.unload()  # a fresh tensorrt module: as in a new process, nothing registered yet
    compile_quietly(onnx_path, config(tmp_path, backend=backend))
    events = fake.events()
    first = events.index('trt.init_libnvinfer_plugins')
    for later in ('trt.OnnxParser', 'Runtime.deserialize_cuda_engine'):
        assert all(i > first for i, e in enumerate(events) if e == later), later
    assert 'Runtime.deserialize_cuda_engine' in events


@pytest.mark.parametrize('tf32', [False, True])
def test_builder_and_polygraphy_build_one_plan_from_one_config(tmp_path, fake, tf32):
    plans = {}
    for backend in ('builder', 'polygraphy'):
        directory = tmp_path / backend
        directory.mkdir()
        model = make_onnx(directory / 'model.onnx')
        manifest = compile_quietly(model, config(directory, backend=backend,
                                                 precision='fp16', tf32=tf32))
        plans[backend] = plan_description(directory / 'model.engine')
        assert manifest.builder_flags == (('fp16', 'tf32') if tf32 else ('fp16',))
        assert manifest.extra['tf32'] is tf32
        assert manifest.extra['profiling_verbosity'] == 'layer_names_only'
    assert plans['builder'] == plans['polygraphy']
    assert ('TF32' in plans['builder']['flags']) is tf32
    assert plans['builder']['profiling_verbosity'] == 'LAYER_NAMES_ONLY'


def test_trtexec_records_the_flags_its_command_line_set(onnx_path, fake, tmp_path,
                                                        trtexec_dir, reference_plan):
    write_trtexec(trtexec_dir, succeeding_body(reference_plan))
    manifest = compile_quietly(onnx_path, config(tmp_path, backend='trtexec', tf32=True))
    argv = json.loads((trtexec_dir / 'argv.json').read_text())
    assert '--noTF32' not in argv and manifest.builder_flags == ('fp16', 'tf32')


def test_calibrated_int8_says_once_that_its_api_is_deprecated_and_warns_nothing(
        onnx_path, fake, tmp_path):
    import warnings
    make_dataset(tmp_path / 'calib')
    lines = []
    with warnings.catch_warnings():
        warnings.simplefilter('error', DeprecationWarning)
        for backend in ('builder', 'polygraphy'):
            compile_quietly(onnx_path, calibration_config(tmp_path, backend=backend), lines)
    notes = [line for line in lines if 'deprecated since TensorRT 10.1' in line]
    assert len(notes) == 2  # one per build


def test_trtexec_refuses_a_calibration_cache_from_another_tensorrt(onnx_path, fake, tmp_path,
                                                                    trtexec_dir,
                                                                    reference_plan):
    make_dataset(tmp_path / 'calib')
    write_trtexec(trtexec_dir, succeeding_body(reference_plan))
    compile_quietly(onnx_path, calibration_config(tmp_path))  # a cache from this TensorRT
    cache = tmp_path / 'model.calib'
    from gps_denied_inference.compiler.calibration import write_trusted_cache
    foreign = cache.read_bytes().replace(b'TRT-100300-', b'TRT-8601-', 1)
    write_trusted_cache(cache, foreign, cache_dataset_path(cache).read_text().strip())
    with pytest.raises(EngineBuildError, match='written by TensorRT 8601'):
        compile_quietly(onnx_path, calibration_config(tmp_path, backend='trtexec'))
    assert not (trtexec_dir / 'argv.json').exists()


def test_a_foreign_calibration_cache_is_recalibrated_by_the_builder(onnx_path, fake,
                                                                    tmp_path):
    make_dataset(tmp_path / 'calib')
    compile_quietly(onnx_path, calibration_config(tmp_path))
    cache = tmp_path / 'model.calib'
    from gps_denied_inference.compiler.calibration import write_trusted_cache
    foreign = cache.read_bytes().replace(b'TRT-100300-', b'TRT-100200-', 1)
    write_trusted_cache(cache, foreign, cache_dataset_path(cache).read_text().strip())
    fake.calls.clear()
    compile_quietly(onnx_path, calibration_config(tmp_path))
    assert fake.events('calibration.') == ['calibration.batches']  # not cache_used
    assert cache.read_bytes().startswith(b'TRT-100300-EntropyCalibration2\n')


def test_dynamic_output_shapes_are_read_without_device_memory(tmp_path, fake):
    model = make_dynamic_onnx(tmp_path / 'model.onnx')
    compile_quietly(model, config(tmp_path, profiles=PROFILE))
    assert [c.detail for c in fake.calls_of('ICudaEngine.create_execution_context')] == [
        ('USER_MANAGED',)]


def test_trtexec_is_found_where_jetpack_installs_it(tmp_path, monkeypatch):
    monkeypatch.setenv('PATH', str(tmp_path / 'empty'))
    jetpack = write_trtexec(tmp_path / 'usr-src-tensorrt-bin', '')
    assert trt_build.find_trtexec('trtexec', str(jetpack)) == str(jetpack)
    with pytest.raises(EngineBuildError, match='not found on PATH'):
        trt_build.find_trtexec('trtexec', str(tmp_path / 'missing'))
    with pytest.raises(EngineBuildError, match='not found on PATH'):
        trt_build.find_trtexec('my-trtexec', str(jetpack))
    assert trt_build.JETPACK_TRTEXEC == '/usr/src/tensorrt/bin/trtexec'


def test_the_device_tree_model_names_the_device_in_the_manifest(onnx_path, fake, tmp_path):
    proc = tmp_path / 'proc'
    (proc / 'device-tree').mkdir(parents=True)
    (proc / 'device-tree' / 'model').write_bytes(b'NVIDIA Jetson Orin NX Developer Kit\0')
    manifest = compile_quietly(onnx_path, config(tmp_path), proc_root=proc)
    assert manifest.device.name == 'NVIDIA Jetson Orin NX Developer Kit'
