"""Diagnostic statuses: the worst current problem decides the level, STALE means no data."""

import pytest

from gps_denied_inference.imaging.contract import PreprocessContract
from gps_denied_inference.imaging.preprocess import plan_resize
from gps_denied_inference.node import diagnostics
from gps_denied_inference.node.camera_info_pairing import GeometryReport
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


def status(stats, previous=None, active=True, starvation=None, throttled=False,
           geometry=None):
    return diagnostics.model_status('node', 'm', active, 'onnxruntime/CPU', 'ab' * 32, stats,
                                    previous, 5, throttled, starvation, geometry)


def geometry(plan=None, intrinsics=False, detail='no CameraInfo received', problem=None):
    return GeometryReport('/camera/camera_info', 'letterbox', 640, 480, plan, intrinsics, detail,
                          3, 2, 1, problem)


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


@pytest.mark.parametrize('outcome,verb', [('failed', 'failed'), ('rejected', 'was rejected')])
def test_starvation_after_a_frame_that_failed_leads_with_that_frame(outcome, verb):
    """Not with the transport: frames arrived, and the last one could not be used."""
    starving = diagnostics.StarvationState(matched_publishers=1, seconds_without_frames=5.8,
                                           timeout_s=2.0)
    stats = snap(received=3, processed=0, failed=3, last_outcome=outcome,
                 last_error="input 'x' has shape (1, 3, 64, 64), expected (1, 4, 64, 64)")
    report = status(stats, previous=stats, starvation=starving)
    assert report.level == 'WARN'
    assert report.message == (f"the last frame {verb}: input 'x' has shape (1, 3, 64, 64), "
                              'expected (1, 4, 64, 64); since then 1 publisher(s) matched but '
                              'no frame arrived for 5.8 s')
    assert dict(report.values)['last_outcome'] == outcome


def test_starvation_after_processed_frames_names_a_stopped_camera_among_the_causes():
    starving = diagnostics.StarvationState(matched_publishers=1, seconds_without_frames=3.0,
                                           timeout_s=2.0)
    assert 'the camera stopped publishing' in status(
        snap(last_outcome='processed'), starvation=starving).message
    assert 'the camera stopped publishing' not in status(
        snap(received=0, processed=0), starvation=starving).message


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


def test_the_pixel_mapping_and_intrinsics_are_reported():
    plan = plan_resize(720, 1280, PreprocessContract(width=640, height=480, resize='letterbox'))
    values = dict(status(snap(), geometry=geometry(plan, True, 'from the CameraInfo')).values)
    assert {k: values[k] for k in ('resize', 'camera_width', 'camera_height', 'model_width',
                                   'model_height', 'scale_x', 'scale_y', 'pad_x', 'pad_y',
                                   'intrinsics', 'intrinsics_detail', 'camera_info_topic',
                                   'camera_info_received', 'camera_info_published',
                                   'camera_info_missed')} == {
        'resize': 'letterbox', 'camera_width': '1280', 'camera_height': '720',
        'model_width': '640', 'model_height': '480', 'scale_x': '0.5', 'scale_y': '0.5',
        'pad_x': '0', 'pad_y': '60', 'intrinsics': 'true',
        'intrinsics_detail': 'from the CameraInfo', 'camera_info_topic': '/camera/camera_info',
        'camera_info_received': '3', 'camera_info_published': '2', 'camera_info_missed': '1'}


def test_before_the_first_frame_the_mapping_is_unknown():
    values = dict(status(snap(), geometry=geometry()).values)
    assert values['camera_width'] == '-' and values['scale_x'] == '-'
    assert values['model_width'] == '640' and values['intrinsics'] == 'false'


def test_a_camera_info_that_does_not_describe_the_frames_warns():
    report = status(snap(), geometry=geometry(problem='the CameraInfo on /c does not ...'))
    assert report.level == 'WARN' and report.message.startswith('the CameraInfo on /c')
    assert status(snap(), geometry=geometry()).level == 'OK'


@pytest.mark.parametrize('limit_ms,level', [(None, 'OK'), (20.0, 'OK'), (9.0, 'OK'),
                                            (8.5, 'WARN')])
def test_a_p95_latency_above_the_models_limit_warns(limit_ms, level):
    report = diagnostics.model_status('node', 'm', True, 'onnxruntime/CPU', 'ab' * 32, snap(),
                                      None, 5, False, latency_limit_ms=limit_ms)
    assert report.level == level
    assert dict(report.values)['latency_limit_ms'] == ('-' if limit_ms is None
                                                      else f'{limit_ms:g}')
    if level == 'WARN':
        assert report.message == ('latency p95 9.0 ms above its limit 8.5 ms '
                                  '(M.latency_limit_ms)')
