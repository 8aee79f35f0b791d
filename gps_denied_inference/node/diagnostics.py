"""What the node reports on /diagnostics, as plain data (lifecycle_node.py makes the messages).

One status per concern, named '<node>: <concern>', following diagnostic_updater: levels OK,
WARN, ERROR and STALE, where STALE means "no data", never "fine".
"""

from dataclasses import dataclass
from typing import List, Optional, Tuple

from gps_denied_inference.node.camera_info_pairing import GeometryReport
from gps_denied_inference.node.model_stats import StatsSnapshot
from gps_denied_inference.resources.measured_usage import MeasuredUsage
from gps_denied_inference.resources.thermal import ThermalLevel, ThermalState

OK, WARN, ERROR, STALE = 'OK', 'WARN', 'ERROR', 'STALE'


@dataclass(frozen=True)
class StatusReport:
    """One diagnostic status."""

    name: str
    level: str
    message: str
    values: Tuple[Tuple[str, str], ...]


@dataclass(frozen=True)
class StarvationState:
    """Input-topic health as the node sees it: matched publishers and time without frames."""

    matched_publishers: int
    seconds_without_frames: float
    timeout_s: float
    incompatible_qos: str = ''


def model_status(node: str, model: str, active: bool, runtime_label: str, digest: str,
                 stats: StatsSnapshot, previous: Optional[StatsSnapshot],
                 persistent_fault_frames: int, throttled: bool,
                 starvation: Optional[StarvationState] = None,
                 geometry: Optional[GeometryReport] = None,
                 latency_limit_ms: Optional[float] = None) -> StatusReport:
    """Summarise one model: counters, rate, latency, geometry and the worst current problem."""
    values = [
        ('runtime', runtime_label), ('engine_sha256', digest[:12]),
        ('frames_received', str(stats.received)), ('frames_processed', str(stats.processed)),
        ('frames_dropped', str(stats.dropped)), ('frames_rejected', str(stats.rejected)),
        ('frames_failed', str(stats.failed)), ('frames_nonfinite', str(stats.nonfinite_frames)),
        ('rate_hz', f'{stats.rate_hz:.2f}'),
        ('latency_p50_ms', _ms(stats.latency_p50_ms)),
        ('latency_p95_ms', _ms(stats.latency_p95_ms)),
        ('inference_p50_ms', _ms(stats.inference_p50_ms)),
        ('inference_p95_ms', _ms(stats.inference_p95_ms)),
        ('node_overhead_p50_ms', _ms(stats.node_overhead_p50_ms)),
        ('node_overhead_p95_ms', _ms(stats.node_overhead_p95_ms)),
        ('last_error', stats.last_error or '-'),
        ('last_outcome', stats.last_outcome or '-'),
        ('latency_limit_ms', '-' if latency_limit_ms is None else f'{latency_limit_ms:g}'),
        ('throttled', str(throttled).lower()),
    ]
    values.extend((f'rejected_{reason}', str(count))
                  for reason, count in sorted(stats.rejected_by_reason.items()))
    if starvation is not None:
        values.append(('matched_publishers', str(starvation.matched_publishers)))
    if geometry is not None:
        values.extend(geometry_values(geometry))
    name = f'{node}: model {model}'
    if not active:
        return StatusReport(name, STALE, 'not active', tuple(values))
    level, message = _worst_problem(stats, previous, persistent_fault_frames, starvation)
    if throttled and level == OK:
        level, message = WARN, 'thermal throttling: processing rate halved'
    if geometry is not None and geometry.problem and level == OK:
        level, message = WARN, geometry.problem
    if (latency_limit_ms is not None and stats.latency_p95_ms is not None
            and stats.latency_p95_ms > latency_limit_ms and level == OK):
        level, message = WARN, (f'latency p95 {stats.latency_p95_ms:.1f} ms above its limit '
                                f'{latency_limit_ms:g} ms (M.latency_limit_ms)')
    return StatusReport(name, level, message, tuple(values))


def geometry_values(geometry: GeometryReport) -> List[Tuple[str, str]]:
    """The camera -> model pixel mapping of the newest frame, and whether intrinsics are known.

    x_model = (x_camera + 0.5) * scale_x - 0.5 + pad_x (pixel centres at integers), the same
    for y; '-' before the first frame.
    """
    plan = geometry.plan
    mapping = [('camera_width', '-'), ('camera_height', '-'), ('scale_x', '-'),
               ('scale_y', '-'), ('pad_x', '-'), ('pad_y', '-')]
    if plan is not None:
        mapping = [('camera_width', str(plan.src_width)), ('camera_height', str(plan.src_height)),
                   ('scale_x', f'{plan.scale_x:.6g}'), ('scale_y', f'{plan.scale_y:.6g}'),
                   ('pad_x', str(plan.pad_x)), ('pad_y', str(plan.pad_y))]
    return [('resize', geometry.resize), ('model_width', str(geometry.model_width)),
            ('model_height', str(geometry.model_height)), *mapping,
            ('intrinsics', str(geometry.intrinsics).lower()),
            ('intrinsics_detail', geometry.detail),
            ('camera_info_topic', geometry.topic),
            ('camera_info_received', str(geometry.received)),
            ('camera_info_published', str(geometry.published)),
            ('camera_info_missed', str(geometry.missed))]


def _worst_problem(stats: StatsSnapshot, previous: Optional[StatsSnapshot],
                   persistent_fault_frames: int,
                   starvation: Optional[StarvationState]) -> Tuple[str, str]:
    if starvation is not None and starvation.incompatible_qos:
        return ERROR, f'incompatible QoS: {starvation.incompatible_qos}'
    if stats.consecutive_failures >= persistent_fault_frames:
        return ERROR, (f'persistent fault: the last {stats.consecutive_failures} frames failed: '
                       f'{stats.last_error}')
    if starvation is not None and starvation.matched_publishers > 0:
        waited = starvation.seconds_without_frames
        if waited >= 5 * starvation.timeout_s:
            return ERROR, _starving(starvation, stats)
        if waited >= starvation.timeout_s:
            return WARN, _starving(starvation, stats)
    if (starvation is not None and starvation.matched_publishers == 0
            and starvation.seconds_without_frames >= 5 * starvation.timeout_s):
        return WARN, (f'no publisher on the input topic for '
                      f'{starvation.seconds_without_frames:.1f} s: is the camera driver running '
                      'on this ROS domain, with the same Fast DDS transport profile?')
    base = previous or StatsSnapshot(0, 0, 0, 0, {}, 0, 0, 0, 0.0, None, None, '', None)
    if stats.failed > base.failed:
        return WARN, f'{stats.failed - base.failed} frame(s) failed: {stats.last_error}'
    if stats.rejected > base.rejected:
        return WARN, f'{stats.rejected - base.rejected} input frame(s) rejected: ' \
                     f'{stats.last_error}'
    if stats.nonfinite_frames > base.nonfinite_frames:
        return WARN, (f'{stats.nonfinite_frames - base.nonfinite_frames} output(s) '
                      'contained NaN or Inf')
    if stats.processed == 0:
        return OK, 'active, waiting for frames'
    return OK, f'running at {stats.rate_hz:.1f} Hz'


def _starving(starvation: StarvationState, stats: StatsSnapshot) -> str:
    """Starvation, led by what happened to the last frame when it failed or was rejected.

    A frame that failed or was rejected is the likelier story then (a model that cannot take
    the camera's frames), not the transport, which the generic causes would suggest.
    """
    starving = (f'{starvation.matched_publishers} publisher(s) matched but no frame arrived '
                f'for {starvation.seconds_without_frames:.1f} s')
    verb = {'failed': 'failed', 'rejected': 'was rejected'}.get(stats.last_outcome)
    if verb is not None:
        return f'the last frame {verb}: {stats.last_error}; since then {starving}'
    stopped = 'the camera stopped publishing, ' if stats.received else ''
    return (f'{starving}: likely causes: {stopped}large messages dropped by the DDS transport '
            '(enable the shipped Fast DDS profile / LARGE_DATA on both ends), or a QoS mismatch '
            '(input_qos vs the publisher)')


def memory_status(node: str, gpu_resident: int, gpu_budget: int, host_resident: int,
                  host_budget: int, measured: MeasuredUsage) -> StatusReport:
    """Resident vs budget per pool, with measured usage beside the prediction."""
    values = [
        ('gpu_resident_bytes', str(gpu_resident)), ('gpu_budget_bytes', str(gpu_budget)),
        ('host_resident_bytes', str(host_resident)), ('host_budget_bytes', str(host_budget)),
    ]
    values.extend(measured.as_pairs())
    level = OK
    message = (f'GPU {_mib(gpu_resident)}/{_mib(gpu_budget)} MiB, '
               f'host {_mib(host_resident)}/{_mib(host_budget)} MiB reserved')
    if gpu_resident > gpu_budget or host_resident > host_budget:
        level, message = ERROR, 'over budget: ' + message
    return StatusReport(f'{node}: memory', level, message, tuple(values))


def thermal_status(node: str, state: ThermalState, throttling: bool) -> StatusReport:
    """Each zone's temperature and the board's level; STALE without telemetry."""
    name = f'{node}: thermal'
    if not state.is_telemetry_available:
        return StatusReport(name, STALE, f'telemetry unavailable: {state.reason}', ())
    values: List[Tuple[str, str]] = [(f'{z.name}_c', f'{z.temp_c:.1f}') for z in state.zones]
    values.append(('throttling', str(throttling).lower()))
    hottest = state.hottest
    summary = f'hottest {hottest.name} {hottest.temp_c:.1f} C' if hottest else 'no zones'
    level = {ThermalLevel.OK: OK, ThermalLevel.WARN: WARN,
             ThermalLevel.CRITICAL: ERROR}[state.level]
    message = f'{state.level.value}: {summary}'
    if throttling:
        message += '; processing rate halved'
    return StatusReport(name, level, message, tuple(values))


def lifecycle_status(node: str, state_label: str) -> StatusReport:
    """The node's lifecycle state, so a dashboard sees an unconfigured node as such."""
    level = OK if state_label == 'active' else WARN
    return StatusReport(f'{node}: lifecycle', level, state_label, (('state', state_label),))


def _ms(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.2f}'


def _mib(value: int) -> str:
    return f'{value / 2 ** 20:.1f}'
