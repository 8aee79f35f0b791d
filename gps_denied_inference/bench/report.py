"""The benchmark's arithmetic and its report: statistics, targets, the tables, their text.

Pure functions over the raw observations bench/driver.py and bench/raw.py record, so they can
be checked without ROS. Each repeated measurement is reduced per run (p50, p95), then the
median over runs is reported; node phases are compared with the raw run paired with them, not
the one at the start, because the model's own speed drifts. Method: docs/benchmark.md.
Node overhead = node end-to-end - raw session.run paced at the stream's rate - null-node
floor, per run; the node's own cost (measured inside the node) is the primary figure.
"""

from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np

MIB = 2 ** 20
ISSUE7_KIND = 'mono8_640x480'
# Paced at half the raw rate, no frame may be dropped by the mailbox over this many frames.
PACED_FRAMES_TARGET = 300
# Issue 21's targets per kind of outputs: {target: (quantity key, limit in ms)}.
OUTPUT_TARGETS = {
    'sparse': (('node overhead p50 <= 1 ms', 'p50_ms', 1.0),
               ("node's own cost p50 <= 1 ms", 'own_p50_ms', 1.0),
               ("node's own cost p95 <= 2 ms", 'own_p95_ms', 2.0)),
    'dense': (('node overhead p50 <= 3 ms', 'p50_ms', 3.0),
              ("node's own cost p50 <= 2 ms", 'own_p50_ms', 2.0),
              ("node's own cost p95 <= 4 ms", 'own_p95_ms', 4.0)),
}


def percentiles_ms(latencies_s: Sequence[float]) -> Dict[str, Optional[float]]:
    """p50 and p95 in milliseconds (None when there are no samples), and the count."""
    if not latencies_s:
        return {'p50_ms': None, 'p95_ms': None, 'n': 0}
    values = np.asarray(latencies_s, dtype=np.float64) * 1e3
    return {'p50_ms': float(np.percentile(values, 50)),
            'p95_ms': float(np.percentile(values, 95)), 'n': int(values.size)}


def median(values: Iterable[Optional[float]]) -> Optional[float]:
    """Median of the values that exist; None when none do."""
    present = [v for v in values if v is not None]
    return float(np.median(present)) if present else None


def _median_of_runs(runs: List[Dict[str, Any]], keys: Sequence[str]) -> Dict[str, Any]:
    summary = {key: median(run[key] for run in runs) for key in keys}
    summary['runs'] = runs
    return summary


def raw_summary(runs: List[Dict[str, Any]], startups_s: List[float]) -> Dict[str, Any]:
    """Raw latency, throughput and the spread of repeated runs (the machine's noise)."""
    per_run = [dict(percentiles_ms(run['latencies_s']), throughput_hz=run['throughput_hz'],
                    cpu_ms=1e3 * run['cpu_per_run_s']) for run in runs]
    summary = _median_of_runs(per_run, ('p50_ms', 'p95_ms', 'throughput_hz', 'cpu_ms'))
    p50s = [run['p50_ms'] for run in per_run]
    summary['noise'] = {'p50_min_ms': min(p50s), 'p50_max_ms': max(p50s),
                        'spread_pct': 100.0 * (max(p50s) - min(p50s)) / median(p50s)}
    summary['startup_s'] = median(startups_s)
    summary['startup_runs_s'] = list(startups_s)
    return summary


def delivery_summary(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Runs of {sent, latencies_s}: delivered fraction and latency, median over runs."""
    per_run = [dict(percentiles_ms(run['latencies_s']), sent=run['sent'],
                    delivered=len(run['latencies_s']) / run['sent'] if run['sent'] else 0.0)
               for run in runs]
    summary = _median_of_runs(per_run, ('delivered', 'p50_ms', 'p95_ms'))
    summary['sent_total'] = sum(run['sent'] for run in runs)
    summary['received_total'] = sum(len(run['latencies_s']) for run in runs)
    return summary


def return_floor_runs(step: Dict[str, Any],
                      received: Dict[str, List[List[Any]]]) -> List[Dict[str, Any]]:
    """Per run: a frame's latency is that of its last output to arrive; incomplete ones lost."""
    by_topic = [dict(received.get(topic, [])) for topic in step['topics']]
    runs = []
    for run in step['runs']:
        latencies = [max(seen[f] for seen in by_topic) for f in run['frame_ids']
                     if all(f in seen for seen in by_topic)]
        runs.append({'sent': len(run['frame_ids']), 'latencies_s': latencies})
    return runs


def floor_runs(floor: Dict[str, Any], received: Dict[str, List[List[Any]]]) -> List[Dict]:
    """Join the camera's sent frame ids with what the bare subscriber received, per run."""
    by_id = dict(received.get(floor['topic'], []))
    return [{'sent': len(run['frame_ids']),
             'latencies_s': [by_id[f] for f in run['frame_ids'] if f in by_id]}
            for run in floor['runs']]


def outputs_per_second(completed_at: Sequence[float]) -> float:
    """Completed frames per second between the first and the last completion."""
    if len(completed_at) < 2 or completed_at[-1] <= completed_at[0]:
        return 0.0
    return (len(completed_at) - 1) / (completed_at[-1] - completed_at[0])


def node_phase(phase: Dict[str, Any]) -> Dict[str, Any]:
    """One stream to the node: latency, delivery, node counters and outputs per second."""
    counters = phase['counters']
    received = counters['frames_received']
    summary = dict(percentiles_ms(phase['latencies_s']))
    summary.update(
        sent=phase['sent'], completed=len(phase['latencies_s']),
        delivered=len(phase['latencies_s']) / phase['sent'] if phase['sent'] else 0.0,
        rate_hz_offered=phase['rate_hz_offered'], rate_hz_achieved=phase['rate_hz_achieved'],
        outputs_per_s=outputs_per_second(phase['completed_at']),
        reached_node=received / phase['sent'] if phase['sent'] else 0.0,
        dropped_fraction=counters['frames_dropped'] / received if received else 0.0,
        node_cpu_ms_per_frame=(1e3 * phase['node_cpu_s'] / counters['frames_processed']
                               if counters['frames_processed'] else None),
        machine_busy=phase['machine_busy'], counters=counters)
    return summary


def overload_summary(phase: Dict[str, Any], seconds: float) -> Dict[str, Any]:
    """The overload stream plus the node's RSS at its start and end."""
    summary = node_phase(phase)
    rss = [bytes_ for _, bytes_ in phase['rss']]
    summary.update(seconds=seconds, rss_start_mib=rss[0] / MIB, rss_end_mib=rss[-1] / MIB,
                   rss_max_mib=max(rss) / MIB, rss_growth_mib=(rss[-1] - rss[0]) / MIB,
                   rss_samples=[[round(t, 1), b] for t, b in phase['rss']])
    return summary


def _target(name: str, value: Optional[float], limit: Optional[float], met: bool,
            unit: str, digits: int = 2) -> Dict[str, Any]:
    return {'target': name, 'value': value, 'limit': limit, 'unit': unit, 'digits': digits,
            'met': bool(met) if value is not None and limit is not None else False}


def _minus(value: Optional[float], *parts: Optional[float]) -> Optional[float]:
    return None if value is None or None in parts else value - sum(parts)


def paired_raw(phase: Dict[str, Any], key: str = 'raw') -> Optional[Dict[str, Any]]:
    """The raw run timed right before a node phase (p50, p95, throughput, CPU), if any.

    `key` 'raw': the tight loop; 'paced_raw': the loop paced at the phase's rate.
    """
    run = phase.get(key)
    if not run:
        return None
    return dict(percentiles_ms(run['latencies_s']), throughput_hz=run['throughput_hz'],
                cpu_ms=1e3 * run['cpu_per_run_s'])


def _paired_overhead(phase: Dict[str, Any], summary: Dict[str, Any], floor: Dict[str, Any],
                     key: str = 'raw') -> Dict[str, Optional[float]]:
    raw = paired_raw(phase, key)
    if raw is None:
        return {'p50_ms': None, 'p95_ms': None, 'cpu_ms_per_frame': None}
    return {'p50_ms': _minus(summary['p50_ms'], raw['p50_ms'], floor['p50_ms']),
            'p95_ms': _minus(summary['p95_ms'], raw['p95_ms'], floor['p95_ms']),
            'cpu_ms_per_frame': _minus(summary['node_cpu_ms_per_frame'], raw['cpu_ms'])}


def null_floor_run(phase: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The null node's stream run right before a node phase, as a delivery run; None if none."""
    null = phase.get('null')
    if not null:
        return None
    return {'sent': null['sent'], 'latencies_s': null['latencies_s']}


def _node_overhead(phase: Dict[str, Any], summary: Dict[str, Any]) -> Dict[str, Optional[float]]:
    """Node e2e - raw paced at the stream's rate - null-node floor, of one run."""
    paced = paired_raw(phase, 'paced_raw')
    run = null_floor_run(phase)
    null = percentiles_ms(run['latencies_s']) if run else None
    if paced is None or null is None:
        return {'p50_ms': None, 'p95_ms': None}
    return {key: _minus(summary[key], paced[key], null[key]) for key in ('p50_ms', 'p95_ms')}


def paced_drops(phases: List[Dict[str, Any]]) -> Dict[str, int]:
    """Over the paced phases: frames sent, received and dropped by the node's mailbox."""
    return {'sent': sum(p['sent'] for p in phases),
            'received': sum(p['counters']['frames_received'] for p in phases),
            'dropped': sum(p['counters']['frames_dropped'] for p in phases)}


def _paired_ratio(phase: Dict[str, Any], summary: Dict[str, Any]) -> Optional[float]:
    raw = paired_raw(phase)
    if raw is None or summary['outputs_per_s'] is None or not raw['throughput_hz']:
        return None
    return summary['outputs_per_s'] / raw['throughput_hz']


def _paired_raw_summary(phases: List[Dict[str, Any]],
                        key: str = 'raw') -> Optional[Dict[str, Any]]:
    runs = [r for r in (paired_raw(p, key) for p in phases) if r is not None]
    if not runs:
        return None
    p50s = [run['p50_ms'] for run in runs]
    return {'p50_ms': median(p50s), 'p50_min_ms': min(p50s), 'p50_max_ms': max(p50s),
            'throughput_hz': median(run['throughput_hz'] for run in runs), 'n_runs': len(runs)}


def model_summary(raw: Dict[str, Any], floor: Dict[str, Any], node: Dict[str, Any],
                  overload_seconds: float,
                  return_floor: Optional[Dict[str, Any]] = None,
                  outputs: str = 'sparse') -> Dict[str, Any]:
    """Every section for one model, with every target of its kind of `outputs` met or not.

    `overhead['p50_ms']` / `['p95_ms']`: node e2e - raw paced at the stream's rate - null-node
    floor, run by run, median over runs; `overhead['own_p50_ms']` / `['own_p95_ms']`: the
    node's own cost per frame as it reported it on /diagnostics after the paced runs. Kept
    for comparison with earlier runs: issue 7's overhead (e2e - tight paired raw - input
    floor; `issue7_...`, and `..._unpaired` against the start-of-run raw), the same less the
    return floor (the outputs alone, bare publisher to bare subscriber), and the node's CPU
    time per processed frame against raw session.run's CPU time per run.
    """
    e2e_phases = [p for p in node['e2e'] if p['kind'] == ISSUE7_KIND]
    e2e_runs = [node_phase(p) for p in e2e_phases]
    e2e = _median_of_runs(e2e_runs, ('p50_ms', 'p95_ms', 'delivered', 'node_cpu_ms_per_frame',
                                     'machine_busy'))
    back = return_floor or {'p50_ms': None, 'p95_ms': None}
    paired = [_paired_overhead(p, s, floor) for p, s in zip(e2e_phases, e2e_runs)]
    overhead: Dict[str, Any] = {}
    for key in ('p50_ms', 'p95_ms', 'cpu_ms_per_frame'):
        unpaired = (_minus(e2e['node_cpu_ms_per_frame'], raw['cpu_ms'])
                    if key == 'cpu_ms_per_frame' else _minus(e2e[key], raw[key], floor[key]))
        overhead[f'{key}_unpaired'] = unpaired
        pairs = median(run[key] for run in paired)
        overhead[key] = unpaired if pairs is None else pairs
    paced = [_paired_overhead(p, s, floor, 'paced_raw') for p, s in zip(e2e_phases, e2e_runs)]
    for key in ('p50_ms', 'p95_ms'):
        overhead[f'{key}_vs_paced_raw'] = median(run[key] for run in paced)
        overhead[f'{key}_less_return_floor'] = _minus(overhead[f'{key}_vs_paced_raw'],
                                                      back[key])
    node_times = next((p['node_times'] for p in reversed(e2e_phases) if p.get('node_times')),
                      {})
    for key in ('p50_ms', 'p95_ms'):
        overhead[f'node_measured_{key}'] = node_times.get(f'node_overhead_{key}')
    overhead['node_measured_inference_p50_ms'] = node_times.get('inference_p50_ms')
    overhead['own_p50_ms'] = overhead['node_measured_p50_ms']
    overhead['own_p95_ms'] = overhead['node_measured_p95_ms']
    for key in ('p50_ms', 'p95_ms'):
        overhead[f'issue7_{key}'] = overhead[key]
    node_runs = [_node_overhead(p, s) for p, s in zip(e2e_phases, e2e_runs)]
    overhead['runs'] = node_runs
    for key in ('p50_ms', 'p95_ms'):
        overhead[key] = median(run[key] for run in node_runs)
    null_runs = [r for r in (null_floor_run(p) for p in e2e_phases) if r is not None]
    null_floor = delivery_summary(null_runs) if null_runs else None
    if null_floor is not None:
        frames = sum(len(r['latencies_s']) for r in null_runs)
        cpu = sum(p['null']['null_cpu_s'] for p in e2e_phases if p.get('null'))
        null_floor['null_cpu_ms_per_frame'] = 1e3 * cpu / frames if frames else None
    drops = paced_drops(e2e_phases)
    saturated_runs = [node_phase(p) for p in node['saturated']]
    saturated = _median_of_runs(saturated_runs, ('outputs_per_s', 'dropped_fraction',
                                                 'node_cpu_ms_per_frame', 'machine_busy'))
    saturated['ratio_unpaired'] = (saturated['outputs_per_s'] / raw['throughput_hz']
                                   if saturated['outputs_per_s'] is not None else None)
    paired_ratio = median(_paired_ratio(p, r) for p, r in zip(node['saturated'],
                                                              saturated_runs))
    saturated['ratio'] = saturated['ratio_unpaired'] if paired_ratio is None else paired_ratio
    # Where the saturated throughput goes: one output per worker cycle, of which the infer
    # call (as the node timed it over the run) and the rest, serial with it.
    saturated['cycle_ms'] = (1000.0 / saturated['outputs_per_s']
                             if saturated['outputs_per_s'] else None)
    saturated['node_measured_inference_p50_ms'] = median(
        (p.get('node_times') or {}).get('inference_p50_ms') for p in node['saturated'])
    overload = (overload_summary(node['overload'], overload_seconds)
                if node.get('overload') else None)
    startups = [s['configure_s'] + s['activate_s'] for s in node['startup']]
    # The first cycle in a fresh node process also imports the runtime, which the raw side
    # has done before it is timed: it is reported apart, and the later cycles are compared.
    startup = {'node_s': median(startups[1:] or startups),
               'node_first_s': startups[0] if startups else None,
               'service_round_trip_s': median(s.get('get_state_s') for s in node['startup']),
               'raw_s': raw['startup_s'], 'cycles': node['startup']}
    startup['ratio'] = (startup['node_s'] / startup['raw_s']
                        if startup['node_s'] is not None else None)
    bound = None if None in (raw['p95_ms'], floor['p95_ms']) else \
        2 * raw['p95_ms'] + floor['p95_ms']
    overload_p95 = overload['p95_ms'] if overload else None
    growth = overload['rss_growth_mib'] if overload else None
    targets = [_target(name, overhead[key], limit,
                       overhead[key] is not None and overhead[key] <= limit, 'ms')
               for name, key, limit in OUTPUT_TARGETS[outputs]]
    targets += [
        _target(f'paced at half raw: none dropped by the mailbox over >= '
                f'{PACED_FRAMES_TARGET} frames', drops['dropped'], 0,
                drops['dropped'] == 0 and drops['received'] >= PACED_FRAMES_TARGET,
                f'dropped of {drops["received"]} received', digits=0),
        _target('saturated throughput >= 0.95 x raw', saturated['ratio'], 0.95,
                saturated['ratio'] is not None and saturated['ratio'] >= 0.95, 'x raw'),
        _target('overload p95 <= 2 x raw p95 + transport p95', overload_p95, bound,
                None not in (overload_p95, bound) and overload_p95 <= bound, 'ms'),
        _target('overload RSS growth < 5 MiB', growth, 5.0,
                growth is not None and growth < 5.0, 'MiB'),
        _target('start-up <= 1.5 x raw', startup['ratio'], 1.5,
                startup['ratio'] is not None and startup['ratio'] <= 1.5, 'x raw'),
    ]
    return {'outputs': outputs, 'null_floor': null_floor, 'paced_drops': drops,
            'raw': raw, 'transport': {k: floor[k] for k in ('p50_ms', 'p95_ms', 'delivered')},
            'return_transport': {k: back.get(k) for k in ('p50_ms', 'p95_ms', 'delivered',
                                                          'bytes_per_frame')},
            'paired_raw': {'e2e': _paired_raw_summary(e2e_phases),
                           'e2e_paced': _paired_raw_summary(e2e_phases, 'paced_raw'),
                           'saturated': _paired_raw_summary(node['saturated'])},
            'e2e': e2e, 'overhead': overhead, 'saturated': saturated, 'overload': overload,
            'startup': startup, 'targets': targets}


def data_size(nbytes: Optional[float]) -> str:
    """Bytes as MiB, or as KiB below one MiB (a 44 KiB output is not '0.0 MiB')."""
    if nbytes is None:
        return '-'
    return f'{nbytes / MIB:.1f} MiB' if nbytes >= MIB else f'{nbytes / 1024:.0f} KiB'


def _fmt(value: Optional[float], digits: int = 1, suffix: str = '') -> str:
    return '-' if value is None else f'{value:.{digits}f}{suffix}'


def _pct(value: Optional[float]) -> str:
    return '-' if value is None else f'{100 * value:.0f}%'


def _delivered(cell: Dict[str, Any]) -> str:
    return f"{_pct(cell['delivered'])} ({cell['received_total']}/{cell['sent_total']})"


def issue7_rows(models: Dict[str, Dict[str, Any]]) -> List[List[str]]:
    """Issue 7's table: one row per measured quantity, one column per model."""
    names = list(models)

    def row(label: str, fn: Any) -> List[str]:
        cells = []
        for name in names:
            try:
                cells.append(fn(models[name]))
            except (KeyError, TypeError):
                cells.append('-')
        return [label] + cells

    return [
        ['quantity'] + names,
        row('1 raw session.run p50 / p95 (ms)',
            lambda m: f"{_fmt(m['raw']['p50_ms'])} / {_fmt(m['raw']['p95_ms'])}"),
        row('1 raw throughput (Hz)', lambda m: _fmt(m['raw']['throughput_hz'])),
        row('1 noise: raw p50 min..max over runs (ms)',
            lambda m: f"{_fmt(m['raw']['noise']['p50_min_ms'])}..."
                      f"{_fmt(m['raw']['noise']['p50_max_ms'])} "
                      f"({_fmt(m['raw']['noise']['spread_pct'], 0)}%)"),
        row('1 paired raw p50 before each e2e run: tight (min..max) / paced at the e2e rate (ms)',
            lambda m: f"{_fmt(m['paired_raw']['e2e']['p50_ms'])} "
                      f"({_fmt(m['paired_raw']['e2e']['p50_min_ms'])}..."
                      f"{_fmt(m['paired_raw']['e2e']['p50_max_ms'])}) / "
                      f"{_fmt(m['paired_raw']['e2e_paced']['p50_ms'])}"),
        row("1 subscription callback's decode + preprocess per frame p50 / p95 (ms)",
            lambda m: ', '.join(f"{kind} {_fmt(cost['p50_ms'], 2)} / {_fmt(cost['p95_ms'], 2)}"
                                for kind, cost in m['raw']['callback'].items())),
        row('2 transport floor p50 / p95 (ms)',
            lambda m: f"{_fmt(m['transport']['p50_ms'])} / {_fmt(m['transport']['p95_ms'])}"),
        row("2 null-node floor p50 / p95 (ms): camera -> null node -> this model's outputs back",
            lambda m: f"{_fmt(m['null_floor']['p50_ms'])} / {_fmt(m['null_floor']['p95_ms'])} "
                      f"({data_size(m['raw'].get('output_bytes'))} out per frame)"),
        row("  return floor: this model's outputs alone, bare publisher to bare subscriber, "
            'p50 / p95 (ms)',
            lambda m: f"{_fmt(m['return_transport']['p50_ms'])} / "
                      f"{_fmt(m['return_transport']['p95_ms'])}"),
        row('3 node end-to-end p50 / p95 (ms)',
            lambda m: f"{_fmt(m['e2e']['p50_ms'])} / {_fmt(m['e2e']['p95_ms'])}"),
        row('3 node overhead p50 / p95 (ms) = e2e - paced raw - null-node floor, per run',
            lambda m: f"{_fmt(m['overhead']['p50_ms'])} / {_fmt(m['overhead']['p95_ms'])}"),
        row("3 node's own cost per frame, measured in the node, p50 / p95 (ms)",
            lambda m: f"{_fmt(m['overhead']['own_p50_ms'], 2)} / "
                      f"{_fmt(m['overhead']['own_p95_ms'], 2)} (inference p50 "
                      f"{_fmt(m['overhead']['node_measured_inference_p50_ms'])})"),
        row('3 paced: dropped by the mailbox / received by the node',
            lambda m: f"{m['paced_drops']['dropped']} / {m['paced_drops']['received']}"),
        row("  issue 7's overhead: e2e - tight paired raw - input floor, p50 / p95 (ms)",
            lambda m: f"{_fmt(m['overhead']['issue7_p50_ms'])} / "
                      f"{_fmt(m['overhead']['issue7_p95_ms'])}"),
        row('  node CPU per frame / raw CPU per run (ms)',
            lambda m: f"{_fmt(m['e2e']['node_cpu_ms_per_frame'])} / "
                      f"{_fmt(m['raw']['cpu_ms'])}"),
        row('  machine busy during e2e / saturated',
            lambda m: f"{_pct(m['e2e']['machine_busy'])} / "
                      f"{_pct(m['saturated']['machine_busy'])}"),
        row('4 saturated outputs/s (x paired raw; x start-of-run raw)',
            lambda m: f"{_fmt(m['saturated']['outputs_per_s'])} "
                      f"({_fmt(m['saturated']['ratio'], 2)}; "
                      f"{_fmt(m['saturated']['ratio_unpaired'], 2)})"),
        row('5 overload offered / achieved (Hz)',
            lambda m: f"{_fmt(m['overload']['rate_hz_offered'])} / "
                      f"{_fmt(m['overload']['rate_hz_achieved'])}"),
        row('5 overload e2e p50 / p95 (ms)',
            lambda m: f"{_fmt(m['overload']['p50_ms'])} / {_fmt(m['overload']['p95_ms'])}"),
        row('5 overload dropped by node / reached node',
            lambda m: f"{_pct(m['overload']['dropped_fraction'])} / "
                      f"{_pct(m['overload']['reached_node'])}"),
        row('5 overload RSS start -> end (MiB)',
            lambda m: f"{_fmt(m['overload']['rss_start_mib'])} -> "
                      f"{_fmt(m['overload']['rss_end_mib'])}"),
        row('6 start-up node / raw (s)',
            lambda m: f"{_fmt(m['startup']['node_s'], 3)} / {_fmt(m['startup']['raw_s'], 3)} "
                      f"(first {_fmt(m['startup']['node_first_s'], 3)})"),
        row('  one lifecycle service round trip (get_state, s)',
            lambda m: _fmt(m['startup']['service_round_trip_s'], 3)),
    ]


def target_rows(models: Dict[str, Dict[str, Any]]) -> List[List[str]]:
    """Every target per model: value, limit, met or not."""
    rows = [['model', 'target', 'value', 'limit', 'met']]
    for name, model in models.items():
        for t in model['targets']:
            digits = t.get('digits', 2)
            rows.append([name, t['target'], _fmt(t['value'], digits, ' ' + t['unit']),
                         _fmt(t['limit'], digits), 'met' if t['met'] else 'NOT met'])
    return rows


def transport_rows(transport: Dict[str, Dict[str, Any]]) -> List[List[str]]:
    """Issue 9's table: per frame and setting, the floor and the node's end-to-end."""
    rows = [['frame', 'DDS setting', 'floor delivered (all runs)', 'floor p50 / p95 (ms)',
             'node delivered (all runs)', 'node e2e p50 / p95 (ms)']]
    for setting, kinds in transport.items():
        for kind, cell in kinds.items():
            floor, node = cell.get('floor'), cell.get('node')
            rows.append([
                kind, setting,
                _delivered(floor) if floor else '-',
                f"{_fmt(floor['p50_ms'])} / {_fmt(floor['p95_ms'])}" if floor else '-',
                _delivered(node) if node else '-',
                f"{_fmt(node['p50_ms'])} / {_fmt(node['p95_ms'])}" if node else '-'])
    return rows


def text_table(rows: List[List[str]]) -> str:
    """Fixed-width columns for the terminal."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ['  '.join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def markdown_table(rows: List[List[str]]) -> str:
    """GitHub markdown."""
    lines = ['| ' + ' | '.join(rows[0]) + ' |', '|' + '---|' * len(rows[0])]
    lines.extend('| ' + ' | '.join(row) + ' |' for row in rows[1:])
    return '\n'.join(lines)


def findings(results: Dict[str, Any]) -> List[str]:
    """What the numbers mean, one sentence per finding, computed from this run's numbers."""
    lines = []
    for name, m in results['issue7'].items():
        raw, over, e2e = m['raw'], m['overhead'], m['e2e']
        lines.append(
            f"{name}: raw p50 varied {_fmt(raw['noise']['spread_pct'], 0)}% between runs "
            "(the machine's noise); differences smaller than that are not findings.")
        paced = m['paired_raw']['e2e_paced'] or {}
        null = m['null_floor'] or {}
        drops = m['paced_drops']
        lines.append(
            f"{name}: end-to-end p50 {_fmt(e2e['p50_ms'])} ms = the model paced at the stream's "
            f"rate {_fmt(paced.get('p50_ms'))} ms (timed right before each run) + the null-node "
            f"floor {_fmt(null.get('p50_ms'))} ms (input transport, "
            f"{data_size(raw.get('output_bytes'))} of outputs back and the receiver, measured "
            f"right before each run) + the node's overhead {_fmt(over['p50_ms'])} ms "
            f"({_fmt(over['p95_ms'])} ms at p95; each a difference of percentiles, per run). "
            "Measured inside the node per frame (callback to last publish, less the infer call) "
            f"its own cost was {_fmt(over['own_p50_ms'], 2)} ms p50 and "
            f"{_fmt(over['own_p95_ms'], 2)} ms p95; its infer calls took "
            f"{_fmt(over['node_measured_inference_p50_ms'])} ms p50. Paced at half the raw "
            f"rate the mailbox dropped {drops['dropped']} of the {drops['received']} frames "
            f"the node received ({drops['sent']} sent). The node process used "
            f"{_fmt(e2e['node_cpu_ms_per_frame'])} ms of CPU per frame against raw "
            f"session.run's {_fmt(raw['cpu_ms'])} ms: the difference is its decode, "
            'preprocess, NaN/Inf check, publishing and rclpy executor work, plus what '
            'contention adds to session.run itself (all cores were '
            f"{_pct(e2e['machine_busy'])} busy).")
        sat = m['saturated']
        paired_sat = (m['paired_raw']['saturated'] or {}).get('p50_ms', raw['p50_ms'])
        lines.append(
            f"{name}: saturated at {_fmt(sat['ratio'], 2)} x the paired raw throughput "
            f"({_fmt(sat['ratio_unpaired'], 2)} x the start-of-run raw) with all cores "
            f"{_pct(sat['machine_busy'])} busy. One output every {_fmt(sat['cycle_ms'], 2)} "
            'ms: the infer call took '
            f"{_fmt(sat['node_measured_inference_p50_ms'], 2)} ms p50 as the node timed it "
            f"(raw {_fmt(paired_sat, 2)} ms), the rest of the cycle is the worker's "
            'per-frame work in series with it (taking the prepared input and handing the '
            'result to the publishing thread; decode and preprocess run on the executor '
            'thread, overlapped), slowed by the camera, the executor and the output '
            'receiver on the other core.')
        if m['overload']:
            o = m['overload']
            lines.append(
                f"{name}: under overload ({_fmt(o['rate_hz_achieved'])} Hz for "
                f"{_fmt(o['seconds'], 0)} s) latency stayed bounded (p95 {_fmt(o['p95_ms'])} "
                f"ms); the node dropped {_pct(o['dropped_fraction'])} of the frames it "
                'received, each counted on /diagnostics, and its RSS moved '
                f"{_fmt(o['rss_growth_mib'], 2)} MiB.")
        s = m['startup']
        lines.append(
            f"{name}: configure + activate took {_fmt(s['node_s'], 3)} s vs "
            f"{_fmt(s['raw_s'], 3)} s for a raw session plus warm-up; the first cycle in a "
            f"fresh process ({_fmt(s['node_first_s'], 3)} s) also imports ONNX Runtime.")
    for kind in results['issue9'].get('default', {}):
        default = results['issue9']['default'][kind].get('floor')
        shipped = results['issue9'].get('shipped', {}).get(kind, {}).get('floor')
        if default and shipped:
            lines.append(
                f'{kind}: the bare subscriber received {_delivered(default)} of the frames '
                f'with Fast DDS defaults and {_delivered(shipped)} with the shipped profile.')
    return lines
