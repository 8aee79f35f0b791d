"""Threads line: infer on a worker thread, release on a third; a failure there fails it."""

from gps_denied_inference.selftest import threads
from gps_denied_inference.selftest.report import FAIL, PASS, Report
from selftest.conftest import built_session, lines_by_check


def run_threads(session):
    report = Report()
    threads.run(session, report)
    session.close()
    return lines_by_check(report)


def test_inference_and_release_run_on_other_threads(fake, tmp_path):
    lines = run_threads(built_session(tmp_path))
    assert {line.status for line in lines.values()} == {PASS}
    names = {call.thread for call in fake.calls_of('IExecutionContext.execute_async_v3')}
    assert 'selftest-infer' in names
    assert {c.thread for c in fake.calls_of('DeviceAllocation.free')} == {'selftest-release'}


def test_an_inference_that_fails_on_the_worker_fails_the_line(fake, tmp_path):
    session = built_session(tmp_path)
    fake.fail('IExecutionContext.execute_async_v3', soft=True, after=1)
    lines = run_threads(session)
    assert lines['threads/cross-thread-tensorrt'].status == FAIL
    assert 'execute_async_v3 failed' in lines['threads/cross-thread-tensorrt'].reason
    assert fake.live_allocations == 0
