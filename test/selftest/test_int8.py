"""INT8 lines: calibrate, trusted cache, reuse, rebuild on a new dataset, refuse a bad sidecar."""

from gps_denied_inference.selftest import int8
from gps_denied_inference.selftest.report import FAIL, PASS, Report, SKIP
from selftest.conftest import built_session, lines_by_check


def run_int8(session):
    report = Report()
    int8.run(session, report)
    session.close()
    return lines_by_check(report)


def test_each_cache_rule_holds_on_the_device(fake, tmp_path):
    lines = run_int8(built_session(tmp_path))
    assert {line.status for line in lines.values()} == {PASS}
    assert fake.events('calibration.cache_used')
    assert lines['int8/corrupt-sidecar'].measured.startswith('refused: calibration cache')
    assert lines['int8/other-tensorrt-logged'].measured == (
        'first line TRT-100300-EntropyCalibration2')


def test_a_foreign_cache_that_is_trusted_fails(fake, tmp_path, monkeypatch):
    from gps_denied_inference.compiler import calibration
    session = built_session(tmp_path)
    # A compiler that ignores the version line: the foreign cache is reused as it is.
    monkeypatch.setattr(calibration, 'cache_header_problem', lambda data, version: None)
    lines = run_int8(session)
    assert lines['int8/other-tensorrt-logged'].status == FAIL
    assert lines['int8/other-tensorrt-logged'].measured == (
        'first line TRT-8601-EntropyCalibration2')


def test_a_first_build_that_fails_skips_the_rest(fake, tmp_path):
    session = built_session(tmp_path)
    fake.fail('Builder.build_serialized_network')
    lines = run_int8(session)
    assert lines['int8/calibrate'].status == FAIL
    assert {lines[k].status for k in lines if k != 'int8/calibrate'} == {SKIP}


def test_a_corrupt_sidecar_that_is_trusted_fails(fake, tmp_path, monkeypatch):
    session = built_session(tmp_path)
    real = int8.decide_cache

    def trusting(cache, digest, version):
        try:
            return real(cache, digest, version)
        except int8.CalibrationCacheError:
            return None
    monkeypatch.setattr(int8, 'decide_cache', trusting)
    lines = run_int8(session)
    assert lines['int8/corrupt-sidecar'].status == FAIL
    assert lines['int8/corrupt-sidecar'].reason == 'a corrupt sidecar was trusted'
