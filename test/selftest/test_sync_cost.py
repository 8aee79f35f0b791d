"""Sync cost: measured on an owned stream with queued copies; a spinning wait fails."""

from gps_denied_inference.selftest import sync_cost
from gps_denied_inference.selftest.report import FAIL, PASS, Report
from gps_denied_inference.selftest.session import Session
from selftest.conftest import small_options


def test_copies_are_queued_on_an_owned_stream_then_synchronized(fake, tmp_path):
    session = Session(small_options(tmp_path, sync_runs=3))
    cpu, wall = sync_cost.measure(session)
    session.close()
    assert cpu >= 0 and wall >= 0
    assert len(fake.calls_of('cuda.memcpy_dtod_async')) == 3 * sync_cost.COPIES_PER_SYNC
    assert len(fake.calls_of('Stream.synchronize')) == 3
    assert fake.live_allocations == 0


def test_a_wait_that_burns_its_core_fails_and_a_sleeping_one_passes(fake, tmp_path,
                                                                    monkeypatch):
    session = Session(small_options(tmp_path, sync_runs=10))
    for (cpu, wall), status in (((0.009, 0.010), FAIL), ((0.0001, 0.010), PASS)):
        monkeypatch.setattr(sync_cost, 'measure', lambda s, c=cpu, w=wall: (c, w))
        report = Report()
        sync_cost.run(session, report)
        assert report.lines[0].status == status
    assert report.lines[0].measured == '10 us CPU per sync over 1000 us wall (1%)'
    session.close()
