"""The benchmark's arithmetic: percentiles, joins, deltas and every target's verdict."""

import copy

import numpy as np
import pytest

from gps_denied_inference.bench import report

MS = 1e-3


def _raw(p50_ms=10.0, spread=(10.0, 11.0), startup_s=0.1):
    runs = [{'latencies_s': [p * MS] * 20, 'throughput_hz': 1e3 / p, 'cpu_per_run_s': p * MS}
            for p in spread]
    summary = report.raw_summary(runs, [startup_s] * 3)
    summary.update(p50_ms=p50_ms, p95_ms=p50_ms * 1.2, throughput_hz=1e3 / p50_ms)
    return summary


def _phase(latencies_ms, sent=None, processed=None, dropped=0, kind='mono8_640x480',
           completed_at=None, node_cpu_s=0.0, rss=None):
    count = len(latencies_ms)
    processed = count if processed is None else processed
    return {'kind': kind, 'sent': count if sent is None else sent,
            'rate_hz_offered': 30.0, 'rate_hz_achieved': 29.5,
            'latencies_s': [v * MS for v in latencies_ms],
            'completed_at': completed_at if completed_at is not None
            else [i * 0.1 for i in range(count)],
            'counters': {'frames_received': processed + dropped, 'frames_processed': processed,
                         'frames_dropped': dropped, 'frames_rejected': 0, 'frames_failed': 0},
            'node_cpu_s': node_cpu_s, 'camera_cpu_s': 0.0, 'machine_busy': 0.5,
            'rss': rss if rss is not None else [[0.0, 100 * report.MIB], [60.0, 101 * report.MIB]]}


NULL_MS = 2.5
PACED_MS = 9.0
OWN = {'node_overhead_p50_ms': 0.5, 'node_overhead_p95_ms': 1.5, 'inference_p50_ms': 9.2}


def _null(latency_ms=NULL_MS, count=10):
    return {'label': 'null', 'sent': count, 'rate_hz_achieved': 30.0,
            'latencies_s': [latency_ms * MS] * count, 'null_cpu_s': 0.001 * count,
            'machine_busy': 0.4}


def _node(e2e_ms=12.5, e2e_tail_ms=None, saturated_hz=99.0, overload_ms=20.0, rss_end_mib=101.0,
          startup_s=0.12, own=None, dropped=0):
    """Three paced runs of 100 frames (each with its paced raw and null floor), and the rest.

    As given: node overhead = 12.5 - 9.0 - 2.5 = 1.0 ms p50, own cost 0.5 / 1.5 ms.
    """
    saturated = _phase([12.0] * 100, completed_at=[i / saturated_hz for i in range(100)])
    overload = _phase([overload_ms] * 50, sent=100, dropped=50,
                      rss=[[0.0, 100 * report.MIB], [60.0, int(rss_end_mib * report.MIB)]])
    tail = e2e_ms if e2e_tail_ms is None else e2e_tail_ms
    e2e = dict(_phase([e2e_ms] * 95 + [tail] * 5, node_cpu_s=1.1, dropped=dropped),
               paced_raw=_run(PACED_MS), null=_null(), node_times=dict(OWN, **(own or {})))
    return {'e2e': [e2e] * 3,
            'saturated': [saturated] * 3, 'overload': overload,
            'startup': [{'configure_s': startup_s / 2, 'activate_s': startup_s / 2,
                         'get_state_s': 0.005}] * 3}


FLOOR = {'p50_ms': 2.0, 'p95_ms': 3.0, 'delivered': 1.0}
RETURN_FLOOR = {'p50_ms': 1.5, 'p95_ms': 2.5, 'delivered': 1.0, 'bytes_per_frame': 3 * report.MIB}


def test_percentiles_of_nothing_are_none():
    assert report.percentiles_ms([]) == {'p50_ms': None, 'p95_ms': None, 'n': 0}


def test_percentiles_are_in_milliseconds():
    values = [i * MS for i in range(1, 101)]
    result = report.percentiles_ms(values)
    assert result['p50_ms'] == pytest.approx(50.5)
    assert result['p95_ms'] == pytest.approx(95.05)
    assert result['n'] == 100


@pytest.mark.parametrize('values, expected', [
    ([1.0, None, 3.0], 2.0), ([None, None], None), ([], None), ([5.0], 5.0)])
def test_median_skips_missing_values(values, expected):
    assert report.median(values) == expected


def test_raw_summary_reports_the_spread_of_runs_as_noise():
    summary = report.raw_summary(
        [{'latencies_s': [p * MS] * 10, 'throughput_hz': 1e3 / p, 'cpu_per_run_s': p * MS}
         for p in (10.0, 12.0, 11.0)], [0.2, 0.1, 0.3])
    assert summary['p50_ms'] == pytest.approx(11.0)
    assert summary['noise']['p50_min_ms'] == pytest.approx(10.0)
    assert summary['noise']['p50_max_ms'] == pytest.approx(12.0)
    assert summary['noise']['spread_pct'] == pytest.approx(100 * 2 / 11)
    assert summary['startup_s'] == pytest.approx(0.2)
    assert summary['cpu_ms'] == pytest.approx(11.0)


def test_floor_runs_join_sent_ids_with_what_the_subscriber_received():
    floor = {'topic': '/t', 'runs': [{'frame_ids': ['a/0', 'a/1', 'a/2', 'a/3']},
                                     {'frame_ids': ['b/0', 'b/1']}]}
    received = {'/t': [['a/0', 0.002], ['a/2', 0.004], ['b/1', 0.003], ['other/9', 1.0]]}
    runs = report.floor_runs(floor, received)
    assert runs == [{'sent': 4, 'latencies_s': [0.002, 0.004]},
                    {'sent': 2, 'latencies_s': [0.003]}]
    summary = report.delivery_summary(runs)
    assert summary['delivered'] == pytest.approx(0.5)
    assert (summary['received_total'], summary['sent_total']) == (3, 6)


def test_a_return_frame_arrives_with_its_last_output_and_is_lost_without_one():
    step = {'topics': ['/k', '/d'], 'runs': [{'frame_ids': ['r/0', 'r/1', 'r/2']}]}
    received = {'/k': [['r/0', 0.002], ['r/1', 0.001], ['r/2', 0.004]],
                '/d': [['r/0', 0.003], ['r/2', 0.005]]}
    assert report.return_floor_runs(step, received) == [{'sent': 3,
                                                          'latencies_s': [0.003, 0.005]}]


def test_nothing_received_is_zero_delivered_with_no_latency():
    runs = report.floor_runs({'topic': '/t', 'runs': [{'frame_ids': ['x/0', 'x/1']}]}, {})
    summary = report.delivery_summary(runs)
    assert summary['delivered'] == 0.0
    assert summary['p50_ms'] is None


@pytest.mark.parametrize('completed_at, expected', [
    ([], 0.0), ([1.0], 0.0), ([1.0, 1.0], 0.0), ([0.0, 0.5, 1.0], 2.0),
    ([10.0 + i / 50 for i in range(101)], 50.0)])
def test_outputs_per_second(completed_at, expected):
    assert report.outputs_per_second(completed_at) == pytest.approx(expected)


def test_node_phase_fractions_and_cpu_per_frame():
    summary = report.node_phase(_phase([10.0] * 20, sent=40, processed=20, dropped=15,
                                       node_cpu_s=0.5))
    assert summary['delivered'] == pytest.approx(0.5)
    assert summary['reached_node'] == pytest.approx(35 / 40)
    assert summary['dropped_fraction'] == pytest.approx(15 / 35)
    assert summary['node_cpu_ms_per_frame'] == pytest.approx(25.0)


def test_a_phase_with_nothing_processed_has_no_cpu_per_frame():
    summary = report.node_phase(_phase([], sent=10, processed=0))
    assert summary['node_cpu_ms_per_frame'] is None
    assert summary['delivered'] == 0.0


def _verdicts(summary):
    return {t['target']: t['met'] for t in summary['targets']}


def test_every_target_met():
    summary = report.model_summary(_raw(), FLOOR, _node(), 60.0, RETURN_FLOOR)
    overhead = summary['overhead']
    assert overhead['p50_ms'] == pytest.approx(12.5 - PACED_MS - NULL_MS)
    assert overhead['runs'] == [{'p50_ms': pytest.approx(1.0), 'p95_ms': pytest.approx(1.0)}] * 3
    assert (overhead['own_p50_ms'], overhead['own_p95_ms']) == (0.5, 1.5)
    assert overhead['issue7_p50_ms'] == pytest.approx(12.5 - 10.0 - 2.0)  # no tight pairs
    assert overhead['issue7_p50_ms'] == overhead['p50_ms_unpaired']
    assert overhead['p50_ms_less_return_floor'] == pytest.approx(12.5 - PACED_MS - 2.0 - 1.5)
    assert overhead['cpu_ms_per_frame'] == pytest.approx(11.0 - 10.5)
    assert summary['null_floor']['p50_ms'] == pytest.approx(NULL_MS)
    assert summary['null_floor']['sent_total'] == 30
    assert summary['null_floor']['null_cpu_ms_per_frame'] == pytest.approx(1.0)
    assert summary['paced_drops'] == {'sent': 300, 'received': 300, 'dropped': 0}
    assert summary['saturated']['ratio_unpaired'] == summary['saturated']['ratio']
    assert summary['outputs'] == 'sparse' and len(summary['targets']) == 8
    assert all(_verdicts(summary).values()), summary['targets']


DROPS = 'paced at half raw: none dropped by the mailbox over >= 300 frames'


@pytest.mark.parametrize('change, target', [
    ({'e2e_ms': 12.6}, 'node overhead p50 <= 1 ms'),
    ({'own': {'node_overhead_p50_ms': 1.1}}, "node's own cost p50 <= 1 ms"),
    ({'own': {'node_overhead_p95_ms': 2.1}}, "node's own cost p95 <= 2 ms"),
    ({'dropped': 1}, DROPS),
    ({'saturated_hz': 90.0}, 'saturated throughput >= 0.95 x raw'),
    ({'overload_ms': 28.0}, 'overload p95 <= 2 x raw p95 + transport p95'),
    ({'rss_end_mib': 105.5}, 'overload RSS growth < 5 MiB'),
    ({'startup_s': 0.16}, 'start-up <= 1.5 x raw'),
])
def test_each_target_missed_alone(change, target):
    summary = report.model_summary(_raw(), FLOOR, _node(**change), 60.0, RETURN_FLOOR)
    missed = [name for name, met in _verdicts(summary).items() if not met]
    assert missed == [target]


@pytest.mark.parametrize('change, target', [
    ({'e2e_ms': 14.6}, 'node overhead p50 <= 3 ms'),
    ({'own': {'node_overhead_p50_ms': 2.1}}, "node's own cost p50 <= 2 ms"),
    ({'own': {'node_overhead_p95_ms': 4.1}}, "node's own cost p95 <= 4 ms"),
])
def test_dense_outputs_have_targets_of_their_own(change, target):
    within = report.model_summary(_raw(), FLOOR, _node(e2e_ms=14.4, own={
        'node_overhead_p50_ms': 1.9, 'node_overhead_p95_ms': 3.9}), 60.0, RETURN_FLOOR,
        outputs='dense')
    assert all(_verdicts(within).values()), within['targets']
    summary = report.model_summary(_raw(), FLOOR, _node(**change), 60.0, RETURN_FLOOR,
                                   outputs='dense')
    missed = [name for name, met in _verdicts(summary).items() if not met]
    assert missed == [target]


def test_the_drop_target_needs_300_frames_received():
    node = _node()
    node['e2e'] = node['e2e'][:2]
    summary = report.model_summary(_raw(), FLOOR, node, 60.0, RETURN_FLOOR)
    assert summary['paced_drops'] == {'sent': 200, 'received': 200, 'dropped': 0}
    assert [name for name, met in _verdicts(summary).items() if not met] == [DROPS]


def test_node_overhead_is_per_run_against_that_runs_paced_raw_and_null_floor():
    node = _node()
    e2e = node['e2e'][0]
    node['e2e'] = [dict(e2e, paced_raw=_run(9.5), null=_null(2.0)),
                   dict(e2e, paced_raw=_run(8.0), null=_null(4.0)),
                   dict(e2e, paced_raw=_run(9.0), null=_null(2.5))]
    overhead = report.model_summary(_raw(), FLOOR, node, 60.0, RETURN_FLOOR)['overhead']
    assert [run['p50_ms'] for run in overhead['runs']] == pytest.approx([1.0, 0.5, 1.0])
    assert overhead['p50_ms'] == pytest.approx(1.0)


def test_without_a_null_floor_there_is_no_node_overhead():
    node = _node()
    node['e2e'] = [dict(phase, null=None) for phase in node['e2e']]
    summary = report.model_summary(_raw(), FLOOR, node, 60.0, RETURN_FLOOR)
    assert summary['overhead']['p50_ms'] is None and summary['null_floor'] is None
    assert not _verdicts(summary)['node overhead p50 <= 1 ms']


def test_missing_sections_are_not_met_and_still_render():
    node = _node()
    node['overload'] = None
    node['saturated'] = []
    summary = report.model_summary(_raw(), FLOOR, node, 60.0)
    verdicts = _verdicts(summary)
    assert not verdicts['overload RSS growth < 5 MiB']
    assert not verdicts['saturated throughput >= 0.95 x raw']
    rows = report.issue7_rows({'m': summary})
    assert all(len(row) == 2 for row in rows)
    assert '-' in {row[0]: row[1] for row in rows}['5 overload e2e p50 / p95 (ms)']


def test_tables_have_a_row_per_quantity_and_per_target():
    models = {'a': report.model_summary(_raw(), FLOOR, _node(), 60.0, RETURN_FLOOR),
              'b': report.model_summary(_raw(20.0), FLOOR, _node(), 60.0, RETURN_FLOOR)}
    rows = report.issue7_rows(models)
    assert rows[0] == ['quantity', 'a', 'b']
    labels = [row[0] for row in rows]
    for section in '123456':
        assert any(label.startswith(section) for label in labels)
    targets = report.target_rows(models)
    assert len(targets) == 1 + 16
    assert {row[4] for row in targets[1:]} <= {'met', 'NOT met'}
    markdown = report.markdown_table(rows).splitlines()
    assert len(markdown) == len(rows) + 1
    assert all(line.count('|') == 4 for line in markdown)
    text = report.text_table(rows).splitlines()
    assert len({len(line.rstrip()) <= len(text[1]) for line in text}) == 1


def test_the_callback_row_gives_each_camera_formats_decode_and_preprocess_cost():
    raw = _raw()
    raw['callback'] = {'mono8_640x480': report.percentiles_ms([0.1 * MS] * 19 + [0.3 * MS]),
                       'rgb8_1280x720': report.percentiles_ms([1.5 * MS] * 20)}
    rows = report.issue7_rows({'m': report.model_summary(raw, FLOOR, _node(), 60.0)})
    cells = {row[0]: row[1] for row in rows}
    assert cells["1 subscription callback's decode + preprocess per frame p50 / p95 (ms)"] == (
        'mono8_640x480 0.10 / 0.11, rgb8_1280x720 1.50 / 1.50')


def test_transport_rows_show_missing_cells_as_dashes():
    transport = {'default': {'rgb8_640x480': {'floor': report.delivery_summary(
        [{'sent': 10, 'latencies_s': []}])}}}
    rows = report.transport_rows(transport)
    assert rows[1][:3] == ['rgb8_640x480', 'default', '0% (0/10)']
    assert rows[1][4:] == ['-', '-']


def test_summary_does_not_mutate_its_inputs():
    node = _node()
    before = copy.deepcopy(node)
    report.model_summary(_raw(), FLOOR, node, 60.0, RETURN_FLOOR)
    assert node == before
    assert np.isfinite(report.percentiles_ms([0.001])['p50_ms'])


def test_findings_state_each_section_with_this_runs_numbers():
    raw = _raw()
    raw['output_bytes'] = 2 * report.MIB
    model = report.model_summary(raw, FLOOR, _node(), 60.0, RETURN_FLOOR)
    cell = report.delivery_summary([{'sent': 10, 'latencies_s': [0.002] * 4}])
    results = {'issue7': {'corners': model},
               'issue9': {'default': {'rgb8_640x480': {'floor': cell}},
                          'shipped': {'rgb8_640x480': {'floor': cell}}}}
    lines = report.findings(results)
    assert len(lines) == 6
    assert any('null-node floor 2.5 ms' in line and '2.0 MiB of outputs back' in line
               and "the node's overhead 1.0 ms" in line and 'dropped 0 of the 300' in line
               for line in lines)
    assert any('40% (4/10)' in line and 'rgb8_640x480' in line for line in lines)
    assert any('RSS moved 1.00 MiB' in line for line in lines)
    cycle = f"One output every {1000 / model['saturated']['outputs_per_s']:.2f} ms"
    assert any(cycle in line and '(raw 10.00 ms)' in line for line in lines)


@pytest.mark.parametrize('nbytes, text', [(None, '-'), (45_056, '44 KiB'),
                                           (report.MIB, '1.0 MiB'), (6_144_000, '5.9 MiB')])
def test_data_sizes_below_a_mib_are_in_kib(nbytes, text):
    assert report.data_size(nbytes) == text


def test_findings_skip_a_model_without_overload():
    node = _node()
    node['overload'] = None
    results = {'issue7': {'m': report.model_summary(_raw(), FLOOR, node, 60.0)},
               'issue9': {}}
    lines = report.findings(results)
    assert len(lines) == 4
    assert not any('overload' in line for line in lines)


def _run(raw_ms, raw_hz=None):
    return {'latencies_s': [raw_ms * MS] * 10, 'cpu_per_run_s': raw_ms * MS,
            'throughput_hz': 1e3 / raw_ms if raw_hz is None else raw_hz}


def _paired(phase, raw_ms, raw_hz=None, paced_ms=None):
    paired = dict(phase, raw=_run(raw_ms, raw_hz))
    if paced_ms is not None:
        paired['paced_raw'] = _run(paced_ms)
    return paired


def test_overhead_subtracts_the_raw_run_timed_next_to_each_e2e_run():
    node = _node()
    e2e = node['e2e'][0]
    # The model slowed down between the start-of-run raw (10 ms) and these runs (12 ms).
    # The raw loop paced at the e2e rate is a baseline of its own (8.5 ms here).
    node['e2e'] = [_paired(e2e, 12.0, paced_ms=8.5), _paired(e2e, 12.2, paced_ms=8.4),
                   _paired(e2e, 11.8, paced_ms=8.6)]
    summary = report.model_summary(_raw(), FLOOR, node, 60.0, RETURN_FLOOR)
    overhead = summary['overhead']
    assert overhead['issue7_p50_ms'] == pytest.approx(12.5 - 12.0 - 2.0)
    assert overhead['p50_ms_unpaired'] == pytest.approx(12.5 - 10.0 - 2.0)
    assert overhead['p50_ms_vs_paced_raw'] == pytest.approx(12.5 - 8.5 - 2.0)
    assert overhead['p50_ms_less_return_floor'] == pytest.approx(12.5 - 8.5 - 2.0 - 1.5)
    assert summary['paired_raw']['e2e_paced']['p50_ms'] == pytest.approx(8.5)
    assert overhead['cpu_ms_per_frame'] == pytest.approx(11.0 - 12.0)
    assert summary['paired_raw']['e2e']['p50_min_ms'] == pytest.approx(11.8)
    assert summary['paired_raw']['e2e']['p50_max_ms'] == pytest.approx(12.2)
    assert overhead['p50_ms'] == pytest.approx(12.5 - 8.5 - NULL_MS)


def test_saturated_ratio_is_the_median_of_ratios_to_each_paired_raw_run():
    node = _node(saturated_hz=80.0)
    saturated = node['saturated'][0]
    node['saturated'] = [_paired(saturated, 12.0, raw_hz=hz) for hz in (80.0, 100.0, 84.0)]
    summary = report.model_summary(_raw(), FLOOR, node, 60.0, RETURN_FLOOR)
    assert summary['saturated']['ratio'] == pytest.approx(80.0 / 84.0)
    assert summary['saturated']['ratio_unpaired'] == pytest.approx(80.0 / 100.0)
    assert _verdicts(summary)['saturated throughput >= 0.95 x raw']


def test_the_nodes_own_overhead_is_what_it_reported_after_the_last_paced_run():
    node = _node()
    e2e = node['e2e'][0]
    times = {'node_overhead_p50_ms': 0.4, 'node_overhead_p95_ms': 0.9, 'inference_p50_ms': 9.5}
    node['e2e'] = [dict(e2e, node_times={'node_overhead_p50_ms': 7.0}),
                   dict(e2e, node_times=times),
                   dict(e2e, kind='rgb8_640x480', node_times={'node_overhead_p50_ms': 5.0})]
    overhead = report.model_summary(_raw(), FLOOR, node, 60.0, RETURN_FLOOR)['overhead']
    assert (overhead['node_measured_p50_ms'], overhead['node_measured_p95_ms']) == (0.4, 0.9)
    assert overhead['node_measured_inference_p50_ms'] == 9.5


def test_the_saturated_cycle_is_split_into_the_nodes_infer_time_and_the_rest():
    node = _node(saturated_hz=80.0)
    saturated = node['saturated'][0]
    node['saturated'] = [dict(saturated, node_times={'inference_p50_ms': ms})
                         for ms in (11.0, 10.0, 10.5)]
    summary = report.model_summary(_raw(), FLOOR, node, 60.0, RETURN_FLOOR)['saturated']
    assert summary['cycle_ms'] == pytest.approx(1000.0 / summary['outputs_per_s'])
    assert summary['node_measured_inference_p50_ms'] == 10.5
    node['saturated'] = [saturated]
    summary = report.model_summary(_raw(), FLOOR, node, 60.0, RETURN_FLOOR)['saturated']
    assert summary['node_measured_inference_p50_ms'] is None


def test_start_up_compares_the_cycles_after_the_first_which_also_imports_the_runtime():
    node = _node()
    cycle = node['startup'][0]
    node['startup'] = [dict(cycle, configure_s=0.5)] + [cycle] * 2
    startup = report.model_summary(_raw(), FLOOR, node, 60.0, RETURN_FLOOR)['startup']
    assert startup['node_first_s'] == pytest.approx(0.56)
    assert startup['node_s'] == pytest.approx(0.12)
    node['startup'] = [dict(cycle, configure_s=0.5)]
    assert report.model_summary(_raw(), FLOOR, node, 60.0)['startup']['node_s'] == \
        pytest.approx(0.56)
