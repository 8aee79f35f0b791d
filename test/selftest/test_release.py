"""Release lines: twice, concurrently, cycles; memory and retain count where they started."""

import itertools
import threading

from gps_denied_inference.runtimes import cuda_context
from gps_denied_inference.selftest import release
from gps_denied_inference.selftest.report import FAIL, PASS, Report
from gps_denied_inference.selftest.session import MIB
from selftest.conftest import built_session, lines_by_check


def run_release(session):
    report = Report()
    release.run(session, report)
    session.close()
    return lines_by_check(report)


def test_release_is_idempotent_and_cycles_leave_nothing(fake, tmp_path):
    # The count is per process: earlier tests' sessions may still hold theirs.
    held = cuda_context.outstanding_retains() + 1
    lines = run_release(built_session(tmp_path))
    assert {line.status for line in lines.values()} == {PASS}
    # The session holds one retain of its own; every release gives back the engine's.
    assert lines['release/retains-tensorrt'].measured == f'{held} -> {held}'
    assert f'primary-context retains {held} -> {held}' in lines['release/twice-tensorrt'].measured
    assert (f'primary-context retains {held} -> {held}'
            in lines['release/concurrent-tensorrt'].measured)
    assert fake.live_allocations == 0
    assert fake.retained == 0 and fake.leaked_detaches == 0
    assert fake.threads_with_a_current_context() == []


def test_the_cycles_release_on_this_thread_and_on_a_worker_in_turn(fake, tmp_path):
    session = built_session(tmp_path)
    target = release.demo_targets(session)[1]
    fake.calls.clear()
    release.check_cycles(session, Report(), target, release._criteria(session, 'tensorrt'))
    session.close()
    frees = [call.thread for call in fake.calls_of('DeviceAllocation.free')]
    assert threading.current_thread().name in frees and 'selftest-release' in frees


def test_a_leaked_retain_and_leaked_device_memory_fail(fake, tmp_path, monkeypatch):
    counts = itertools.count()
    monkeypatch.setattr(cuda_context, 'outstanding_retains', lambda: next(counts))
    session = built_session(tmp_path)
    readings = itertools.count(8 * 1024 * MIB, -16 * MIB)
    monkeypatch.setattr(session, 'free_bytes', lambda: next(readings))
    lines = run_release(session)
    assert lines['release/retains-tensorrt'].status == FAIL
    assert lines['release/twice-tensorrt'].status == FAIL
    assert 'leaked' in lines['release/concurrent-tensorrt'].reason
    assert lines['release/cycles-tensorrt'].status == FAIL
    assert 'device free memory -16777216 B' in lines['release/cycles-tensorrt'].measured
    assert lines['release/cycles-onnxruntime'].status == PASS


def test_a_failing_second_release_fails(fake, tmp_path, monkeypatch):
    from gps_denied_inference.runtimes.tensorrt import TensorrtRuntime
    original = TensorrtRuntime.release_engine
    calls = {}
    lock = threading.Lock()

    def release_once(self, handle):
        # Every call after the first raises, whether it comes after the release or while
        # it runs (the real release serialises callers, so is_released alone cannot tell).
        # Each handle is kept alive here: a freed handle's id can be reused by the next load.
        with lock:
            seen, count = calls.get(id(handle), (handle, 0))
            calls[id(handle)] = (seen, count + 1)
            first = count == 0
        if not first:
            raise RuntimeError('released twice')
        original(self, handle)
    monkeypatch.setattr(TensorrtRuntime, 'release_engine', release_once)
    lines = run_release(built_session(tmp_path))
    assert lines['release/twice-tensorrt'].status == FAIL
    assert lines['release/concurrent-tensorrt'].status == FAIL
    assert 'released twice' in lines['release/concurrent-tensorrt'].reason


def test_the_retain_count_is_the_runtimes_own(monkeypatch):
    monkeypatch.setattr(cuda_context, 'outstanding_retains', lambda: 3)
    assert release.primary_retains() == 3


def test_a_release_that_gives_back_more_than_it_took_fails(fake, tmp_path, monkeypatch):
    counts = itertools.count(100, -1)
    monkeypatch.setattr(cuda_context, 'outstanding_retains', lambda: next(counts))
    lines = run_release(built_session(tmp_path))
    assert 'released more than once' in lines['release/twice-tensorrt'].reason
