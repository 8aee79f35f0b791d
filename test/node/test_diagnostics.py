"""Diagnostic statuses: the worst current problem decides the level, STALE means no data."""

import pytest

from gps_denied_inference.node import diagnostics
from gps_denied_inference.node.model_stats import StatsSnapshot
from gps_denied_inference.resources.measured_usage import MeasuredUsage
from gps_denied_inference.resources.thermal import ThermalLevel, ThermalState, ZoneReading


def snap(**changes):
    fields = {'received': 10, 'processed': 10, 'dropped': 0, 'rejected': 0,
              'rejected_by_reason': {}, 'failed': 0, 'consecutive_failures': 0,
              'nonfinite_frames': 0, 'rate_hz': 30.0, 'latency_p50_ms': 5.0,
              'latency_p95_ms': 9.0, 'last_error': '', 'last_frame_age_s': 0.01,
              'inference_p50_ms': 4.0, 'inference_p95_ms': 8.0, 'node_overhead_p50_ms': 0.5,
              'node_overhead_p95_ms': 0.75}
    fields.update(changes)
    return StatsSnapshot(**fields)


def status(stats, previous=None, active=True, starvation=None, throttled=False):
    return diagnostics.model_status('node', 'm', active, 'onnxruntime/CPU', 'ab' * 32, stats,
                                    previous, 5, throttled, starvation)


def test_healthy_model_is_ok_with_its_numbers():
    report = status(snap())
    values = dict(report.values)
    assert report.level == 'OK' and report.name == 'node: model m'
    assert values['frames_processed'] == '10' and values['engine_sha256'] == 'ab' * 6
    assert values['latency_p95_ms'] == '9.00'
    assert values['inference_p50_ms'] == '4.00' and values['node_overhead_p95_ms'] == '0.75'


def test_inactive_model_is_stale_not_ok():
    assert status(snap(), active=False).level == 'STALE'


@pytest.mark.parametrize('stats,previous,level,words', [
    (snap(failed=1, consecutive_failures=1, last_error='boom'), snap(), 'WARN', 'failed'),
    (snap(failed=5, consecutive_failures=5, last_error='boom'), snap(), 'ERROR', 'persistent'),
    (snap(rejected=2, rejected_by_reason={'encoding': 2}), snap(), 'WARN', 'rejected'),
    (snap(nonfinite_frames=1), snap(), 'WARN', 'NaN'),
    (snap(failed=3), snap(failed=3), 'OK', 'running'),
])
def test_level_follows_the_worst_new_problem(stats, previous, level, words):
    report = status(stats, previous)
    assert report.level == level and words in report.message


@pytest.mark.parametrize('waited,level', [(1.0, 'OK'), (2.5, 'WARN'), (10.5, 'ERROR')])
def test_starvation_warns_then_errors_and_names_the_causes(waited, level):
    starving = diagnostics.StarvationState(matched_publishers=1, seconds_without_frames=waited,
                                           timeout_s=2.0)
    report = status(snap(), starvation=starving)
    assert report.level == level
    if level != 'OK':
        assert 'transport' in report.message and 'QoS' in report.message


@pytest.mark.parametrize('waited,level', [(9.9, 'OK'), (10.0, 'WARN'), (600.0, 'WARN')])
def test_no_publisher_waits_then_warns_but_is_not_starvation(waited, level):
    idle = diagnostics.StarvationState(matched_publishers=0, seconds_without_frames=waited,
                                       timeout_s=2.0)
    report = status(snap(), starvation=idle)
    assert report.level == level
    if level == 'WARN':
        assert 'no publisher' in report.message


def test_incompatible_qos_is_an_error_naming_the_policy():
    bad = diagnostics.StarvationState(1, 0.0, 2.0, incompatible_qos='policy RELIABILITY')
    report = status(snap(), starvation=bad)
    assert report.level == 'ERROR' and 'RELIABILITY' in report.message


def test_throttling_is_reported():
    report = status(snap(), throttled=True)
    assert report.level == 'WARN' and 'halved' in report.message


def test_thermal_without_telemetry_is_stale():
    report = diagnostics.thermal_status('node', ThermalState.unavailable('no zones'), False)
    assert report.level == 'STALE' and 'telemetry unavailable' in report.message


def test_thermal_critical_is_an_error_with_each_zone():
    zone = ZoneReading('gpu', 101.0, 85.0, 95.0, ThermalLevel.CRITICAL, 'config')
    state = ThermalState((zone,), ThermalLevel.CRITICAL, True)
    report = diagnostics.thermal_status('node', state, throttling=True)
    assert report.level == 'ERROR'
    assert dict(report.values)['gpu_c'] == '101.0'
    assert 'halved' in report.message


def test_memory_reports_resident_budget_and_measured():
    measured = MeasuredUsage(None, None, 1234, (('nvmap_used_bytes', 'not a Jetson'),))
    report = diagnostics.memory_status('node', 10, 100, 20, 200, measured)
    values = dict(report.values)
    assert report.level == 'OK'
    assert values['gpu_resident_bytes'] == '10' and values['host_budget_bytes'] == '200'
    assert values['host_rss_bytes'] == '1234'
    assert 'not a Jetson' in values['nvmap_used_bytes']
