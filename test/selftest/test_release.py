"""Release lines: twice, concurrently, cycles; memory and retain count where they started."""

import itertools

from gps_denied_inference.runtimes import cuda_context
from gps_denied_inference.selftest import release
from gps_denied_inference.selftest.report import FAIL, PASS, Report, SKIP
from gps_denied_inference.selftest.session import MIB
from selftest.conftest import built_session, lines_by_check


def run_release(session):
    report = Report()
    release.run(session, report)
    session.close()
    return lines_by_check(report)


def test_release_is_idempotent_and_cycles_leave_nothing(fake, tmp_path, monkeypatch):
    monkeypatch.setattr(release, 'primary_retains', lambda: fake.retained)
    lines = run_release(built_session(tmp_path))
    assert {line.status for line in lines.values()} == {PASS}
    assert lines['release/retains-tensorrt'].measured == '1 -> 1'
    assert fake.live_allocations == 0


def test_a_leaked_retain_and_leaked_device_memory_fail(fake, tmp_path, monkeypatch):
    counts = itertools.count()
    monkeypatch.setattr(release, 'primary_retains', lambda: next(counts))
    session = built_session(tmp_path)
    readings = itertools.count(8 * 1024 * MIB, -16 * MIB)
    monkeypatch.setattr(session, 'free_bytes', lambda: next(readings))
    lines = run_release(session)
    assert lines['release/retains-tensorrt'].status == FAIL
    assert lines['release/cycles-tensorrt'].status == FAIL
    assert 'device free memory -16777216 B' in lines['release/cycles-tensorrt'].measured
    assert lines['release/cycles-onnxruntime'].status == PASS


def test_a_failing_second_release_fails(fake, tmp_path, monkeypatch):
    from gps_denied_inference.runtimes.tensorrt import TensorrtRuntime
    original = TensorrtRuntime.release_engine

    def release_once(self, handle):
        if handle.is_released:
            raise RuntimeError('released twice')
        original(self, handle)
    monkeypatch.setattr(TensorrtRuntime, 'release_engine', release_once)
    lines = run_release(built_session(tmp_path))
    assert lines['release/twice-tensorrt'].status == FAIL
    assert lines['release/concurrent-tensorrt'].status == FAIL
    assert 'released twice' in lines['release/concurrent-tensorrt'].reason


def test_the_retain_adapter_reads_the_runtime_counter_where_it_exists(monkeypatch):
    monkeypatch.delattr(cuda_context, 'outstanding_retains', raising=False)
    assert release.primary_retains() is None
    monkeypatch.setattr(cuda_context, 'outstanding_retains', lambda: 3, raising=False)
    assert release.primary_retains() == 3


def test_without_a_retain_counter_the_retain_line_skips_and_says_why(fake, tmp_path,
                                                                    monkeypatch):
    monkeypatch.setattr(release, 'primary_retains', lambda: None)
    lines = run_release(built_session(tmp_path))
    assert lines['release/retains-tensorrt'].status == SKIP
    assert 'outstanding_retains' in lines['release/retains-tensorrt'].reason
