"""The report: line rules, exit code, strict mode, text form, and the JSON schema."""

import json

import pytest

from gps_denied_inference.selftest.report import (
    CHECK_FIELDS,
    CheckLine,
    FAIL,
    format_line,
    Report,
    SCHEMA,
    SKIP,
    TOP_LEVEL_FIELDS,
    validate_report_dict,
)


def sample_report(strict=False):
    report = Report(strict=strict)
    report.passed('load', 'load-tensorrt', 'p95 within limit', 'p95 0.1 s', 'p95 <= 5 s')
    report.skipped('build', 'engine-trtexec', 'built with trtexec', 'trtexec not installed')
    report.unavailable('build', 'engine-builder', 'built with the builder', 'no TensorRT')
    report.finish()
    return report


def test_a_skip_must_say_why_and_statuses_are_closed():
    with pytest.raises(ValueError, match='must say why'):
        CheckLine('build', 'x', SKIP, 'criterion')
    with pytest.raises(ValueError, match='not one of'):
        CheckLine('build', 'x', 'OK', 'criterion')


def test_skips_do_not_fail_but_one_fail_does():
    report = sample_report()
    assert report.exit_code == 0
    report.verdict(False, 'budget', 'ledger', 'ledger holds', '5 MiB', '<= 4 MiB', 'too much')
    assert report.exit_code == 1
    assert report.summary_line() == 'selftest: FAIL (1 pass, 1 fail, 2 skip)'


def test_strict_mode_turns_a_missing_gpu_into_a_fail_but_not_a_plain_skip():
    lines = {line.check: line for line in sample_report(strict=True).lines}
    assert lines['engine-builder'].status == FAIL
    assert '--require-gpu' in lines['engine-builder'].reason
    assert lines['engine-trtexec'].status == SKIP


def test_a_line_prints_status_check_criterion_figures_and_reason():
    line = CheckLine('load', 'load-tensorrt', FAIL, 'p95 within limit', 'p95 6 s', 'p95 <= 5 s',
                     'slow')
    assert format_line(line) == ('FAIL  load/load-tensorrt  p95 within limit | measured p95 6 s'
                                 ' | limit p95 <= 5 s | slow')


def test_the_json_follows_the_schema():
    data = json.loads(sample_report().to_json())
    assert validate_report_dict(data) == []
    assert data['schema'] == SCHEMA
    assert list(data) == list(TOP_LEVEL_FIELDS)
    assert all(list(check) == list(CHECK_FIELDS) for check in data['checks'])
    assert data['summary'] == {'pass': 1, 'fail': 0, 'skip': 2, 'verdict': 'PASS'}
    assert data['exit_code'] == 0


@pytest.mark.parametrize('damage, problem', [
    (lambda d: d.pop('summary'), "missing field 'summary'"),
    (lambda d: d.update(schema='other/1'), 'schema is'),
    (lambda d: d['checks'][0].update(status='OK'), "status is 'OK'"),
    (lambda d: d['checks'][1].update(reason=''), 'SKIP without a reason'),
    (lambda d: d['checks'][0].pop('limit'), 'exactly the fields'),
    (lambda d: d['checks'][0].update(measured=3), 'not a string'),
    (lambda d: d['summary'].update(skip=1), 'summary.skip disagrees'),
    (lambda d: d.update(exit_code=1), 'exit_code 1 disagrees'),
])
def test_the_schema_check_finds_each_kind_of_damage(damage, problem):
    data = json.loads(sample_report().to_json())
    damage(data)
    assert any(problem in p for p in validate_report_dict(data)), validate_report_dict(data)
