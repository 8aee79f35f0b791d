"""Budget lines: refusals one byte short with device memory unchanged; the ledger vs device."""

import itertools

from gps_denied_inference.selftest import budget
from gps_denied_inference.selftest.report import FAIL, PASS, Report
from gps_denied_inference.selftest.session import MIB
from selftest.conftest import built_session


def test_one_byte_short_is_refused_and_the_ledger_covers_the_device(fake, tmp_path):
    session = built_session(tmp_path)
    report = Report()
    budget.run(session, report)
    assert {line.check: line.status for line in report.lines} == {
        'refuse-weights-onnxruntime': PASS, 'refuse-activate-onnxruntime': PASS,
        'refuse-weights-tensorrt': PASS, 'refuse-activate-tensorrt': PASS,
        'ledger-vs-device': PASS}
    assert all('short by 1 B' in line.measured for line in report.lines[:4])
    assert fake.live_allocations == 0
    session.close()


def test_the_weights_refusal_comes_before_tensorrt_is_asked_for_anything(fake, tmp_path):
    session = built_session(tmp_path)
    target = budget.demo_targets(session)[1]
    fake.calls.clear()
    report = Report()
    budget.check_refusals(session, report, target)
    assert [line.status for line in report.lines] == [PASS, PASS]
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
    assert [line.status for line in report.lines] == [FAIL, FAIL]
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
