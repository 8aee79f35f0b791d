"""Budget lines: refusals one byte short with device memory unchanged; the ledger vs device."""

from dataclasses import replace
import itertools

import yaml

from gps_denied_inference.runtimes import cuda_context
from gps_denied_inference.runtimes.settings import RuntimeConfig
from gps_denied_inference.selftest import budget
from gps_denied_inference.selftest.report import FAIL, PASS, Report
from gps_denied_inference.selftest.session import MIB
from selftest.conftest import built_session


def test_one_byte_short_is_refused_and_the_ledger_covers_the_device(fake, tmp_path):
    session = built_session(tmp_path)
    report = Report()
    budget.run(session, report)
    lines = {line.check: line for line in report.lines}
    assert {check: line.status for check, line in lines.items()} == {
        'refuse-weights-onnxruntime': PASS, 'refuse-activate-onnxruntime': PASS,
        'refuse-weights-tensorrt': PASS, 'refuse-plan-copy-tensorrt': PASS,
        'refuse-activate-tensorrt': PASS, 'ledger-vs-device': PASS}
    assert all('short by 1 B' in line.measured for line in report.lines[:5])
    manifest = budget.demo_targets(session)[1].manifest()
    weights, plan = manifest.memory.weights_bytes, session.demo_engine.stat().st_size
    context = RuntimeConfig().cuda_context_overhead_bytes
    assert lines['refuse-weights-tensorrt'].limit.startswith(
        f'GPU budget {weights + context - 1} B = need (weights {weights} B + CUDA context '
        f'{context} B) - 1 B')
    assert lines['refuse-plan-copy-tensorrt'].limit.startswith(
        f'host budget {plan - 1} B = need (plan host copy {plan} B) - 1 B')
    assert 'refused by the host pool' in lines['refuse-plan-copy-tensorrt'].measured
    assert '+ CUDA context 512.0 MiB (parameter)' in lines['ledger-vs-device'].measured
    assert 'context not measured (not a Jetson' in lines['ledger-vs-device'].measured
    assert fake.live_allocations == 0
    session.close()


def test_a_need_computed_without_the_context_overhead_is_caught(fake, tmp_path, monkeypatch):
    session = built_session(tmp_path)
    target = budget.demo_targets(session)[1]
    monkeypatch.setattr(budget, 'RuntimeConfig', lambda: RuntimeConfig(
        cuda_context_overhead_bytes=0))
    report = Report()
    # The selftest now leaves the context out, the runtime it builds still reserves it.
    real_make = target.make_runtime
    monkeypatch.setattr(type(target), 'make_runtime',
                        lambda self, b=None, c=None: real_make(b, RuntimeConfig()))
    budget.check_refusals(session, report, target)
    weights, plan_copy, activate = report.lines
    assert [weights.status, plan_copy.status, activate.status] == [FAIL, FAIL, FAIL]
    assert 'refused by the GPU pool' in plan_copy.measured  # not by the host's plan copy
    assert weights.reason == 'the refusal does not match the need computed here'
    assert activate.measured == 'the load before it was refused'
    session.close()


def test_on_a_jetson_the_measured_context_is_set_beside_the_parameter(fake, tmp_path,
                                                                      monkeypatch):
    etc = tmp_path / 'etc'
    etc.mkdir()
    (etc / 'nv_tegra_release').write_text('# R36 (release), REVISION: 4.3, GCID: 1\n')
    readings = iter([4096 * MIB, 4096 * MIB - 300 * MIB])
    monkeypatch.setattr(cuda_context, 'mem_available_bytes', lambda path: next(readings))
    session = built_session(tmp_path, etc_root=str(etc))
    assert session.context_overhead == 300 * MIB
    report = Report()
    budget.check_ledger(session, report, budget.demo_targets(session)[1])
    line = report.lines[0]
    assert line.status == PASS
    assert ('context measured 300.0 MiB (MemAvailable drop at the first retain) vs parameter '
            '512.0 MiB') in line.measured
    session.close()


def test_a_context_larger_than_its_parameter_fails(fake, tmp_path, monkeypatch):
    etc = tmp_path / 'etc'
    etc.mkdir()
    (etc / 'nv_tegra_release').write_text('# R36 (release), REVISION: 4.3, GCID: 1\n')
    readings = iter([4096 * MIB, 3072 * MIB])
    monkeypatch.setattr(cuda_context, 'mem_available_bytes', lambda path: next(readings))
    session = built_session(tmp_path, etc_root=str(etc))
    report = Report()
    budget.check_ledger(session, report, budget.demo_targets(session)[1])
    assert report.lines[0].status == FAIL
    assert 'cuda_context_overhead_bytes' in report.lines[0].reason
    session.close()


def test_the_weights_refusal_comes_before_tensorrt_is_asked_for_anything(fake, tmp_path):
    session = built_session(tmp_path)
    target = budget.demo_targets(session)[1]
    fake.calls.clear()
    report = Report()
    budget.check_refusals(session, report, target)
    assert [line.status for line in report.lines] == [PASS, PASS, PASS]
    # Only the activate stage loads the engine (its refusal comes at prepare_execution).
    assert len(fake.calls_of('Runtime.deserialize_cuda_engine')) == 1
    assert fake.calls_of('ICudaEngine.create_execution_context') == []
    session.close()


def test_device_memory_that_moves_during_a_refusal_fails(fake, tmp_path, monkeypatch):
    session = built_session(tmp_path)
    readings = itertools.count(10 * 1024 * MIB, -64 * MIB)
    monkeypatch.setattr(session, 'free_bytes', lambda: next(readings))
    target = budget.demo_targets(session)[1]
    report = Report()
    budget.check_refusals(session, report, target)
    assert [line.status for line in report.lines] == [FAIL, FAIL, FAIL]
    assert 'device free memory moved by 67108864 B' in report.lines[0].measured
    session.close()


def test_a_device_that_uses_more_than_the_ledger_predicts_fails(fake, tmp_path, monkeypatch):
    session = built_session(tmp_path)
    readings = iter([8 * 1024 * MIB, 7 * 1024 * MIB])
    monkeypatch.setattr(session, 'free_bytes', lambda: next(readings))
    report = Report()
    budget.check_ledger(session, report, budget.demo_targets(session)[1])
    assert report.lines[0].status == FAIL
    assert report.lines[0].measured.startswith('device used 1024.0 MiB')
    session.close()


def test_the_params_files_context_overhead_is_the_one_budgeted(fake, tmp_path):
    session = built_session(tmp_path)
    params = tmp_path / 'inference.yaml'
    params.write_text(yaml.safe_dump({'/**': {'ros__parameters': {
        'models': ['corners'], 'model_dir': str(tmp_path),
        'corners.runtime': 'tensorrt', 'corners.engine_path': 'demo_fp16.engine',
        'corners.input_topic': '/camera/image_raw',
        'cuda_context_overhead_bytes': 256 * MIB}}}))
    session.options = replace(session.options, params=params)
    report = Report()
    budget.run(session, report)
    lines = {line.check: line for line in report.lines}
    assert {line.status for line in report.lines} == {PASS}
    assert f'CUDA context {256 * MIB} B' in lines['refuse-weights-tensorrt'].limit
    assert '+ CUDA context 256.0 MiB (parameter)' in lines['ledger-vs-device'].measured
    session.close()
