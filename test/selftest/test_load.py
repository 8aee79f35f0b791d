"""Load line: p50 / p95 of gate + deserialize against the limit."""

from gps_denied_inference.selftest import load
from gps_denied_inference.selftest.report import FAIL, PASS, Report
from selftest.conftest import built_session


def test_loads_are_timed_against_the_p95_limit(fake, tmp_path):
    for limit, status in ((5.0, PASS), (1e-9, FAIL)):
        session = built_session(tmp_path / str(limit), load_p95_limit_s=limit)
        fake.calls.clear()
        report = Report()
        load.run(session, report)
        session.close()
        assert [line.status for line in report.lines] == [status, status]
        assert len(fake.calls_of('Runtime.deserialize_cuda_engine')) == 2
