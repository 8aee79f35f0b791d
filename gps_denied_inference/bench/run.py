"""`make bench`: what the node costs over ONNX Runtime and the transport, in one run.

Generates and seals three models (profiles): the demo Harris corner detector and the
SuperPoint-sized network, both with sparse top-K outputs, and the SuperPoint-sized network
with its dense heads as outputs (6.2 MB per frame). Then measures on this machine with the
same 640x480 frames: (1) raw session.run, (2) the transport floor to a bare subscriber in
another process and, per model, the null-node floor (bench/null_node.py: the same stream
answered with precomputed outputs of the model's sizes, no work in between), (3) the node's
end-to-end latency, its overhead over the paced raw model and the null-node floor, its own
cost per frame and the frames its mailbox dropped when paced at half the raw rate,
(4) saturated throughput, (5) a 60 s overload at twice the model's rate with the node's RSS,
(6) start-up against a raw session plus warm-up; and the transport matrix (640x480
mono8, 640x480 rgb8, 1280x720 rgb8; Fast DDS defaults vs the shipped profile). The node, the
camera and the bare subscriber each run as their own process. Prints the tables and writes
build/bench/results.json and build/bench/README_section.md. Exits 1 when a section failed to
run (a missed target is a result, not a failure).
"""

import argparse
from dataclasses import asdict, dataclass, replace
import importlib.metadata
import json
import os
from pathlib import Path
import platform
import random
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from gps_denied_inference.artifacts.sealing import manifest_sidecar_path
from gps_denied_inference.bench import report
from gps_denied_inference.bench.frames import FRAME_KINDS
from gps_denied_inference.bench.report import ISSUE7_KIND, PACED_FRAMES_TARGET
from gps_denied_inference.demo.models import write_demo_model

ROOT = Path(__file__).resolve().parents[2]
PROFILE_FILE = ROOT / 'config' / 'fastdds_large_data.xml'
PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE')
# Fast DDS 2.x (Humble, Iron, Jazzy) reads FASTRTPS_..., 3.x (Kilted wheels) FASTDDS_....
FAST_DDS_2_DISTROS = ('humble', 'iron', 'jazzy')
SETTINGS = ('shipped', 'default')
# name -> (write_demo_model options, kind of outputs for the targets)
MODELS: Dict[str, Tuple[Dict[str, bool], str]] = {
    'corners': ({}, 'sparse'),
    'superpoint': ({'superpoint': True}, 'sparse'),
    'dense': ({'dense': True}, 'dense'),
}
CAMERA_RATE_HZ = 30.0


@dataclass(frozen=True)
class Profile:
    """How long each section runs; `quick` trades precision for a ~1 minute run."""

    repeats: int = 3
    raw_seconds: float = 3.0
    raw_min_iterations: int = 10
    floor_frames: int = 60
    e2e_seconds: float = 3.0
    e2e_min_frames: int = 8
    saturated_seconds: float = 6.0
    overload_seconds: float = 60.0
    # Start-up is a few tens of ms for the corner model: one slow cycle must not decide it.
    startup_cycles: int = 7
    # The paired raw baseline timed right before each paced and saturated stream.
    paired_raw_seconds: float = 1.5
    paired_raw_min_iterations: int = 5
    # Frames per camera format for the subscription callback's decode + preprocess.
    callback_iterations: int = 200
    # Paced frames to the node over all repeats of the paired stream (the drop target's count).
    paced_frames: int = PACED_FRAMES_TARGET


FULL = Profile()
QUICK = Profile(repeats=1, raw_seconds=1.0, raw_min_iterations=3, floor_frames=20,
                e2e_seconds=1.5, e2e_min_frames=3, saturated_seconds=3.0,
                overload_seconds=8.0, startup_cycles=2, paired_raw_seconds=0.5,
                paired_raw_min_iterations=3, callback_iterations=50, paced_frames=30)
# For the smoke test: every section runs and every number is produced, none is meaningful;
# 10 frames per phase so a few lost best-effort frames still leave numbers to check.
SMOKE = Profile(repeats=1, raw_seconds=0.2, raw_min_iterations=3, floor_frames=10,
                e2e_seconds=0.2, e2e_min_frames=10, saturated_seconds=0.5,
                overload_seconds=1.0, startup_cycles=1, paired_raw_seconds=0.1,
                paired_raw_min_iterations=2, callback_iterations=3, paced_frames=10)


def log(message: str) -> None:
    """Progress on stderr, flushed."""
    print(f'[bench] {message}', file=sys.stderr, flush=True)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='about a minute, one repeat')
    parser.add_argument('--smoke', action='store_true',
                        help='seconds per section, for the smoke test; numbers meaningless')
    parser.add_argument('--out', type=Path, default=ROOT / 'build' / 'bench')
    parser.add_argument('--models', default=','.join(MODELS),
                        help=f'comma-separated subset of {", ".join(MODELS)}')
    parser.add_argument('--settings', default=','.join(SETTINGS),
                        help=f'comma-separated subset of {", ".join(SETTINGS)}')
    parser.add_argument('--overload-seconds', type=float, default=None,
                        help='override the overload duration (the issue asks for 60 s)')
    parser.add_argument('--paced-frames', type=int, default=None,
                        help=f'override the paced frames per model (the drop target counts '
                             f'{PACED_FRAMES_TARGET})')
    args = parser.parse_args(argv)
    args.models = [m for m in args.models.split(',') if m]
    args.settings = [s for s in args.settings.split(',') if s]
    unknown = sorted(set(args.models) - set(MODELS)) + sorted(set(args.settings) - set(SETTINGS))
    if unknown or not args.models or not args.settings:
        parser.error(f'unknown or empty --models/--settings: {unknown or "empty"}')
    return args


def wheels_are_fast_dds_2() -> bool:
    """Whether the ROS wheels in use carry Fast DDS 2.x (ros-fastrtps: Jazzy's) or 3.x."""
    try:
        importlib.metadata.version('ros-fastrtps')
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def child_environment(setting: str, domain_id: int) -> Dict[str, str]:
    """The environment of every child process under one DDS setting.

    'default' removes every Fast DDS profile and transport variable; 'shipped' names the
    package's profile under the variable this distro's Fast DDS reads (as tools/env.sh).
    """
    env = dict(os.environ)
    for name in PROFILE_VARIABLES + ('FASTDDS_BUILTIN_TRANSPORTS',
                                     'RMW_FASTRTPS_USE_QOS_FROM_XML'):
        env.pop(name, None)
    if setting == 'shipped':
        distro = os.environ.get('ROS_DISTRO')
        fast_dds_2 = distro in FAST_DDS_2_DISTROS if distro else wheels_are_fast_dds_2()
        env[PROFILE_VARIABLES[1] if fast_dds_2 else PROFILE_VARIABLES[0]] = str(PROFILE_FILE)
    env['ROS_DOMAIN_ID'] = str(domain_id)
    env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    env['PYTHONUNBUFFERED'] = '1'
    return env


def write_params(out: Path, model: str) -> Path:
    """The node's params file for one model (ONNX Runtime CPU, fast diagnostics)."""
    path = out / f'params_{model}.yaml'
    path.write_text('\n'.join([
        '# Written by gps_denied_inference.bench.run: one model per node process.',
        '/**:', '  ros__parameters:',
        f'    models: ["{model}"]',
        f'    model_dir: "{out / "models"}"',
        f'    {model}.runtime: "onnxruntime"',
        f'    {model}.engine_path: "{model}.onnx"',
        f'    {model}.input_topic: "/bench/camera/{model}"',
        f'    {model}.providers: ["CPUExecutionProvider"]',
        '    diagnostics_period_s: 0.5',
        '    input_qos: "sensor_data"',
        '    thermal.throttle: false',
        '    autostart: false', '']))
    return path


def measure_raw(models: Dict[str, Any], profile: Profile) -> Dict[str, Dict[str, Any]]:
    """Section 1 and the raw half of section 6, in this process, nothing else running."""
    import numpy as np

    from gps_denied_inference.bench import raw as bench_raw
    from gps_denied_inference.demo.scene import AerialScene

    scene = AerialScene(seed=7)
    raw = {}
    for name, (path, manifest) in models.items():
        tensor = bench_raw.preprocessed_input(manifest, scene, ISSUE7_KIND)
        log(f'raw: {name}: {profile.repeats} x >= {profile.raw_seconds:.0f} s of session.run')
        runs = bench_raw.raw_runs(str(path), manifest, tensor, profile.repeats,
                                  profile.raw_seconds, profile.raw_min_iterations)
        startups = bench_raw.raw_startups(str(path), manifest, tensor, profile.startup_cycles)
        raw[name] = report.raw_summary(runs, startups)
        raw[name]['callback'] = {
            kind: report.percentiles_ms(seconds) for kind, seconds in
            bench_raw.callback_costs(manifest, scene, profile.callback_iterations).items()}
        raw[name]['output_bytes'] = sum(
            int(np.prod(spec.shape)) * np.dtype(spec.dtype).itemsize
            for spec in manifest.outputs)
        log(f'raw: {name}: p50 {raw[name]["p50_ms"]:.1f} ms, '
            f'{raw[name]["throughput_hz"]:.1f} Hz, session + warm-up '
            f'{raw[name]["startup_s"]:.3f} s')
    return raw


def phase_frames(rate_hz: float, seconds: float, minimum: int) -> int:
    """Frames for a phase of `seconds` at `rate_hz`, at least `minimum`."""
    return max(minimum, int(round(rate_hz * seconds)))


def e2e_rate_hz(raw: Dict[str, Any]) -> float:
    """Paced streams: half the model's raw rate (nothing queues), at most the camera's 30 Hz."""
    return min(CAMERA_RATE_HZ, 0.5 * raw['throughput_hz'])


def return_topics(name: str, outputs: List[str]) -> Dict[str, str]:
    """{output: topic} the return floor sends model `name`'s outputs on."""
    return {output: f'/bench/return/{name}/{output}' for output in outputs}


def return_floor_plan(name: str, model_path: Path, raw: Dict[str, Any], profile: Profile,
                      outputs: List[str]) -> Dict[str, Any]:
    """One model's outputs sent to the bare subscriber as the node sends them, at e2e pace."""
    rate = e2e_rate_hz(raw)
    return {'model': name, 'manifest': str(manifest_sidecar_path(model_path)),
            'topics': return_topics(name, outputs), 'rate_hz': rate,
            'repeats': profile.repeats,
            'frames': phase_frames(rate, profile.e2e_seconds, profile.e2e_min_frames)}


def null_node_name(name: str) -> str:
    """The null node of model `name`; it publishes on /<this>/<name>/<output>."""
    return f'bench_null_{name}'


def null_input_topic(name: str) -> str:
    """The camera topic the null node of model `name` subscribes to."""
    return f'/bench/null/{name}'


def node_plan(name: str, pid: int, raw: Dict[str, Any], profile: Profile, full: bool,
              kinds: List[str], model_path: Path, outputs: List[str],
              null_pid: Optional[int] = None) -> Dict[str, Any]:
    """The driver's plan for one node: start-up, e2e per frame kind, saturated, overload.

    In the full plan, issue 7's paced streams (640x480 mono8) and the saturated streams are
    paired: the driver times raw session.run right before each, and the paced streams send
    `profile.paced_frames` frames in all, each repeat right after a stream at the same rate
    to the model's null node (process `null_pid`; as many frames as an unpaired stream: the
    floor is transport, the paced count is for the drop target). The transport-only plan
    (issue 9's matrix) pairs nothing: no figure uses it.
    """
    raw_hz = raw['throughput_hz']
    e2e_rate = e2e_rate_hz(raw)
    e2e_frames = phase_frames(e2e_rate, profile.e2e_seconds, profile.e2e_min_frames)
    paced_frames = max(profile.e2e_min_frames, -(-profile.paced_frames // profile.repeats))
    plan: Dict[str, Any] = {
        'node': f'bench_{name}', 'model': name, 'pid': pid,
        'input_topic': f'/bench/camera/{name}', 'outputs': list(outputs),
        'null': ({'node': null_node_name(name), 'input_topic': null_input_topic(name),
                  'pid': null_pid} if full and null_pid is not None else None),
        'startup_cycles': profile.startup_cycles if full else 1,
        'settle_s': max(1.0, 3e-3 * raw['p95_ms']),
        'diagnostics_timeout_s': 10.0,
        'raw_baseline': {'path': str(model_path),
                         'manifest': str(manifest_sidecar_path(model_path)),
                         'seconds': profile.paired_raw_seconds,
                         'min_iterations': profile.paired_raw_min_iterations} if full else None,
        'e2e': [{'kind': kind, 'rate_hz': e2e_rate, 'repeats': profile.repeats,
                 'frames': paced_frames if full and kind == ISSUE7_KIND else e2e_frames,
                 'null_frames': min(e2e_frames, paced_frames),
                 'paired': full and kind == ISSUE7_KIND}
                for kind in kinds],
        'saturated': None, 'overload': None}
    if full:
        saturated_rate = 1.5 * raw_hz
        plan['saturated'] = {'kind': ISSUE7_KIND, 'rate_hz': saturated_rate,
                             'repeats': profile.repeats,
                             'frames': phase_frames(saturated_rate, profile.saturated_seconds,
                                                    10)}
        overload_rate = 2.0 * raw_hz
        plan['overload'] = {'kind': ISSUE7_KIND, 'rate_hz': overload_rate,
                            'frames': phase_frames(overload_rate, profile.overload_seconds, 10)}
    return plan


def run_setting(setting: str, args: argparse.Namespace, profile: Profile,
                raw: Dict[str, Dict[str, Any]], paths: Dict[str, Path],
                outputs: Dict[str, List[str]], domain_id: int) -> Dict[str, Any]:
    """Every child process under one DDS setting; returns the driver's and subscriber's data."""
    out: Path = args.out
    logs = out / 'logs'
    logs.mkdir(parents=True, exist_ok=True)
    env = child_environment(setting, domain_id)
    python = sys.executable
    # Issue 7's sections (return floors included) use the shipped setting; the default
    # setting only runs issue 9's matrix with the demo model.
    issue7 = setting == 'shipped'
    models = args.models if issue7 else [args.models[0]]
    floor_topics = {kind: f'/bench/floor/{kind}' for kind in FRAME_KINDS}
    returns = ([return_floor_plan(name, paths[name], raw[name], profile, outputs[name])
                for name in models] if issue7 else [])
    subscribed = ([f'camera:{topic}' for topic in floor_topics.values()]
                  + [f'output:{topic}' for step in returns for topic in step['topics'].values()])
    received_path = out / f'floor_{setting}.json'
    opened: List[Any] = []

    def spawn(label: str, command: List[str], **kwargs: Any) -> subprocess.Popen:
        stream = open(logs / f'{setting}_{label}.log', 'w')
        opened.append(stream)
        return subprocess.Popen(command, env=env, stdout=kwargs.pop('stdout', stream),
                                stderr=stream, **kwargs)

    subscriber = spawn('bare_subscriber', [python, '-m', 'gps_denied_inference.bench.peers',
                                           str(received_path), *subscribed],
                       stdin=subprocess.PIPE)
    nodes = {name: spawn(f'node_{name}', [
        python, '-m', 'gps_denied_inference.node', '--ros-args', '--params-file',
        str(write_params(out, name)), '-r', f'__node:=bench_{name}']) for name in models}
    nulls = ({name: spawn(f'null_node_{name}', [
        python, '-m', 'gps_denied_inference.bench.null_node', null_node_name(name), name,
        str(manifest_sidecar_path(paths[name])), null_input_topic(name)],
        stdin=subprocess.PIPE) for name in models} if issue7 else {})
    plan = {
        'scene_seed': 7,
        'floor': [{'kind': kind, 'topic': topic, 'frames': profile.floor_frames,
                   'rate_hz': CAMERA_RATE_HZ, 'repeats': profile.repeats}
                  for kind, topic in floor_topics.items()],
        'return_floor': returns,
        'nodes': [node_plan(name, nodes[name].pid, raw[name], profile, full=issue7,
                            kinds=list(FRAME_KINDS) if name == args.models[0]
                            else [ISSUE7_KIND], model_path=paths[name],
                            outputs=outputs[name],
                            null_pid=nulls[name].pid if name in nulls else None)
                  for name in models]}
    plan_path, result_path = out / f'plan_{setting}.json', out / f'driver_{setting}.json'
    plan_path.write_text(json.dumps(plan, indent=1))
    log(f'{setting}: camera/driver, bare subscriber, node(s) {", ".join(models)}'
        f'{" and their null nodes" if nulls else ""} started (logs in {logs})')
    loads = [os.getloadavg()]
    try:
        driver = spawn('driver', [python, '-m', 'gps_denied_inference.bench.driver',
                                  str(plan_path), str(result_path)])
        driver_exit = driver.wait()
        loads.append(os.getloadavg())
    finally:
        subscriber.stdin.close()
        exits = {'bare_subscriber': _finish(subscriber, 15.0)}
        for name, process in nulls.items():
            process.stdin.close()
            exits[f'null_node_{name}'] = _finish(process, 15.0)
        for name, process in nodes.items():
            exits[f'node_{name}'] = _finish(process, 15.0)
        if 'driver' in locals():
            exits['driver'] = _finish(driver, 1.0)
        for stream in opened:
            stream.close()
    result = json.loads(result_path.read_text()) if result_path.exists() else {
        'floor': [], 'return_floor': {}, 'nodes': {},
        'errors': [f'driver exited {driver_exit} without results']}
    received = json.loads(received_path.read_text()) if received_path.exists() else {}
    if not received:
        result['errors'].append(f'bare subscriber wrote no results (exit '
                                f'{exits["bare_subscriber"]})')
    result['received'] = received
    result['exits'] = exits
    result['load_average'] = loads
    return result


def _finish(process: subprocess.Popen, timeout_s: float) -> Optional[int]:
    """Wait for a child; SIGINT, then kill, one that lingers. Returns its exit status."""
    for action in (None, process.send_signal, process.kill):
        if action is not None:
            action(*(() if action is process.kill else (2,)))
        try:
            return process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            continue
    return None


def summarise(args: argparse.Namespace, profile: Profile, raw: Dict[str, Any],
              settings: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    """Results.json: meta, issue 7 per model, issue 9's matrix, and any errors."""
    import onnxruntime

    errors = [f'{s}: {e}' for s, r in settings.items() for e in r['errors']]
    errors += [f'{s}: {label} exited {code}' for s, r in settings.items()
               for label, code in r['exits'].items() if code != 0]
    transport: Dict[str, Dict[str, Any]] = {}
    floors: Dict[str, Dict[str, Any]] = {}
    for setting, result in settings.items():
        cells = transport.setdefault(setting, {})
        for floor in result['floor']:
            summary = report.delivery_summary(report.floor_runs(floor, result['received']))
            cells.setdefault(floor['kind'], {})['floor'] = summary
            floors.setdefault(setting, {})[floor['kind']] = summary
        first = result['nodes'].get(args.models[0])
        for kind in FRAME_KINDS:
            phases = [p for p in (first or {}).get('e2e', []) if p['kind'] == kind]
            if phases:
                cells.setdefault(kind, {})['node'] = report.delivery_summary(phases)
    models = {}
    shipped = settings.get('shipped')
    floor = floors.get('shipped', {}).get(ISSUE7_KIND)
    for name in args.models:
        node = shipped['nodes'].get(name) if shipped else None
        if node is None or floor is None or not node.get('e2e'):
            continue
        returned = shipped['return_floor'].get(name)
        return_floor = (report.delivery_summary(
            report.return_floor_runs(returned, shipped['received'])) if returned else None)
        if return_floor is not None:
            return_floor['bytes_per_frame'] = returned['bytes_per_frame']
        overload = args.overload_seconds or profile.overload_seconds
        models[name] = report.model_summary(raw[name], floor, node, overload, return_floor,
                                            outputs=MODELS[name][1])
    return {
        'meta': {
            'date_utc': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
            'host': platform.node(), 'cpus': os.cpu_count(), 'machine': platform.machine(),
            'python': platform.python_version(), 'onnxruntime': onnxruntime.__version__,
            'execution_provider': 'CPUExecutionProvider, 1 intra-op thread',
            'profile': asdict(profile), 'quick': args.quick, 'smoke': args.smoke,
            'load_average': {s: r['load_average'] for s, r in settings.items()},
            'frames': 'AerialScene(seed=7), 10 consecutive frames cycled, pre-built messages',
            'latency': 'receive wall clock - header stamp (wall clock at publish), same host',
        },
        'issue7': models, 'issue9': transport, 'errors': errors}


def render(results: Dict[str, Any]) -> str:
    """The printed tables."""
    parts = []
    if results['issue7']:
        parts += ['Issue 7: node vs raw ONNX Runtime vs transport (shipped profile, 640x480 '
                  'mono8; medians of repeated runs)',
                  report.text_table(report.issue7_rows(results['issue7'])), '',
                  report.text_table(report.target_rows(results['issue7'])), '']
    parts += ['Issue 9: transport floor and node end-to-end, Fast DDS defaults vs the shipped '
              'profile (demo model)', report.text_table(report.transport_rows(results['issue9']))]
    for error in results['errors']:
        parts.append(f'ERROR: {error}')
    return '\n'.join(parts)


def readme_section(results: Dict[str, Any]) -> str:
    """The "Latest run" section of docs/benchmark.md: the tables and what they mean."""
    meta = results['meta']
    loads = '; '.join(f'{s}: ' + ' -> '.join('/'.join(f'{x:.1f}' for x in load)
                                             for load in values)
                      for s, values in meta['load_average'].items())
    parts = [
        '## Latest run', '',
        f'Run of {meta["date_utc"]}: {meta["cpus"]} CPUs ({meta["machine"]}), no GPU: '
        f'ONNX Runtime {meta["onnxruntime"]} on {meta["execution_provider"]}, as the node '
        f'runs it. Load average (1/5/15 min) at start -> end of each setting: {loads}. '
        'Other work shared the machine: read the noise row and "How to read the noise" before '
        'comparing numbers. The method and every row are described above.',
        '']
    if results['issue7']:
        parts += ['### Node vs raw ONNX Runtime vs transport (640x480 mono8, shipped profile)',
                  '', report.markdown_table(report.issue7_rows(results['issue7'])), '',
                  '### Targets', '',
                  report.markdown_table(report.target_rows(results['issue7'])), '']
    parts += [
        '### Transport: Fast DDS defaults vs the shipped profile', '',
        'Best effort (sensor data) camera frames at 30 Hz to a bare subscriber (floor) and to '
        'the node running the demo model (end-to-end, outputs delivered reliably). "Defaults" '
        'means no Fast DDS profile variable in either process; "shipped" means '
        '`config/fastdds_large_data.xml` (SHM with a 32 MiB segment + UDPv4) in both.', '',
        report.markdown_table(report.transport_rows(results['issue9'])), '']
    parts += ['### What it means', '']
    parts += [f'- {line}' for line in report.findings(results)]
    parts += ['']
    if results['errors']:
        parts += ['Errors in this run: ' + '; '.join(results['errors']), '']
    return '\n'.join(parts)


def main(argv: Optional[List[str]] = None) -> int:
    """Run every section; write results.json and README_section.md; print the tables."""
    args = parse_args(argv)
    profile = SMOKE if args.smoke else QUICK if args.quick else FULL
    if args.overload_seconds is not None:
        profile = replace(profile, overload_seconds=args.overload_seconds)
    if args.paced_frames is not None:
        profile = replace(profile, paced_frames=args.paced_frames)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    models = {}
    for name in args.models:
        path = args.out / 'models' / f'{name}.onnx'
        models[name] = (path, write_demo_model(path, height=480, width=640,
                                               **MODELS[name][0]))
    log(f'sealed {", ".join(str(path) for path, _ in models.values())}')
    raw = measure_raw(models, profile)
    domain_id = random.SystemRandom().randint(101, 200)
    settings = {}
    for setting in args.settings:
        log(f'{setting}: running (ROS_DOMAIN_ID {domain_id})')
        settings[setting] = run_setting(
            setting, args, profile, raw, {name: path for name, (path, _) in models.items()},
            {name: [spec.name for spec in manifest.outputs]
             for name, (_, manifest) in models.items()}, domain_id)
    results = summarise(args, profile, raw, settings)
    results['meta']['wall_s'] = time.monotonic() - started
    (args.out / 'results.json').write_text(json.dumps(results, indent=1))
    (args.out / 'README_section.md').write_text(readme_section(results))
    print(render(results))
    print(f'\nwrote {args.out / "results.json"} and {args.out / "README_section.md"} '
          f'({results["meta"]["wall_s"]:.0f} s)')
    return 1 if results['errors'] else 0

