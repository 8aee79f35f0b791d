"""The benchmark's camera and lifecycle manager, as its own process (one per DDS setting).

`python -m gps_denied_inference.bench.driver PLAN.json OUT.json` runs the plan the benchmark
wrote: stream frames to the bare subscriber (transport floor) and each model's set of
outputs to it (return floor), then for each node process: configure/activate cycles
(start-up), paced streams (end-to-end latency), streams faster than the model (saturated
throughput) and the 2x overload with the node's RSS sampled. Right before each paced and
saturated stream it times raw session.run in this process while the node is idle (the
paired raw baseline: a tight loop, and before a paced stream also a loop paced at that
stream's rate), and right before each paired paced stream it sends the same stream to the
model's null node (bench/null_node.py: the node's transport with no work in between). It
records raw observations only (sent frame ids, per-frame latencies, node counters, raw
latencies); the benchmark computes every statistic. The process inherits its
DDS settings from its environment, so the benchmark can run it with the shipped profile or
with defaults.
"""

import json
import os
from pathlib import Path
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from gps_denied_inference.bench.cpu import busy_fraction, machine_cpu, process_cpu_s
from gps_denied_inference.bench.frames import (
    age_s,
    FRAME_KINDS,
    frame_messages,
    output_messages,
    restamp,
)
from gps_denied_inference.bench.ros import CAMERA_QOS, OUTPUT_QOS, SpunNode
from gps_denied_inference.errors import GpsDeniedInferenceError
from gps_denied_inference.resources.measured_usage import current_rss_bytes

COUNTERS = ('frames_received', 'frames_processed', 'frames_dropped', 'frames_rejected',
            'frames_failed')
# What the node measures per published frame (over its last 300 frames), in ms.
NODE_TIMES = ('latency_p50_ms', 'latency_p95_ms', 'inference_p50_ms', 'inference_p95_ms',
              'node_overhead_p50_ms', 'node_overhead_p95_ms')
MATCH_TIMEOUT_S = 20.0
RSS_SAMPLE_PERIOD_S = 5.0
WARMUP_FRAMES = 5


class OutputCollector:
    """Per frame id: when every output of the model has arrived, and how old the frame was."""

    def __init__(self, ros: SpunNode, node_name: str, model: str,
                 outputs: Tuple[str, ...]) -> None:
        from sensor_msgs.msg import Image

        self._lock = threading.Lock()
        self._outputs = outputs
        self._seen: Dict[str, int] = {}
        self.complete: Dict[str, Tuple[float, float]] = {}
        self.subscriptions = []
        for output in outputs:
            self.subscriptions.append(ros.node.create_subscription(
                Image, f'/{node_name}/{model}/{output}', self._on_output, OUTPUT_QOS))

    def _on_output(self, msg: Any) -> None:
        latency = age_s(msg.header)
        frame_id = msg.header.frame_id
        with self._lock:
            count = self._seen.get(frame_id, 0) + 1
            self._seen[frame_id] = count
            if count == len(self._outputs):
                self.complete[frame_id] = (latency, time.monotonic())

    def take(self, frame_ids: List[str]) -> List[Tuple[float, float]]:
        """(latency_s, completed_at) of those frames that completed, in completion order."""
        with self._lock:
            found = [self.complete[f] for f in frame_ids if f in self.complete]
        return sorted(found, key=lambda item: item[1])

    def wait_settled(self, frame_ids: List[str], quiet_s: float, limit_s: float) -> None:
        """Wait until every frame completed, or none completed for quiet_s, or limit_s."""
        deadline = time.monotonic() + limit_s
        last_count, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            with self._lock:
                count = sum(1 for f in frame_ids if f in self.complete)
            if count == len(frame_ids):
                return
            if count != last_count:
                last_count, last_change = count, time.monotonic()
            elif time.monotonic() - last_change >= quiet_s:
                return
            time.sleep(0.02)


class DiagnosticsWatch:
    """The newest values of every /diagnostics status, with when they arrived."""

    def __init__(self, ros: SpunNode) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        self._lock = threading.Lock()
        self._latest: Dict[str, Tuple[float, Dict[str, str]]] = {}
        ros.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_array, 10)

    def _on_array(self, array: Any) -> None:
        now = time.monotonic()
        with self._lock:
            for status in array.status:
                self._latest[status.name] = (now, {kv.key: kv.value for kv in status.values})

    def counters(self, status_name: str, timeout_s: float) -> Dict[str, Any]:
        """The model's counters from a status that arrived after this call.

        Under 'node_times': the node's own timings (None where it has none yet).
        """
        asked = time.monotonic()
        deadline = asked + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                arrived, values = self._latest.get(status_name, (0.0, {}))
            if arrived > asked and all(key in values for key in COUNTERS):
                counters: Dict[str, Any] = {key: int(values[key]) for key in COUNTERS}
                counters['node_times'] = {key: _number(values.get(key)) for key in NODE_TIMES}
                return counters
            time.sleep(0.05)
        raise GpsDeniedInferenceError(f'benchmark: no /diagnostics status {status_name!r} '
                                      f'arrived within {timeout_s:.0f} s')


def _number(text: Optional[str]) -> Optional[float]:
    """A diagnostic value as a float; None for '-' (no data) or a missing key."""
    return None if text in (None, '-') else float(text)


def wait_until(condition: Any, timeout_s: float) -> bool:
    """Poll `condition` every 20 ms until it is true or timeout_s passed."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


Send = Callable[[int, str], None]


def camera_sender(publisher: Any, messages: List[Any]) -> Send:
    """Frame i: the pool's message i (cycled), stamped now with `frame_id`, published."""
    def send(i: int, frame_id: str) -> None:
        msg = messages[i % len(messages)]
        restamp(msg, frame_id)
        publisher.publish(msg)
    return send


def output_set_sender(pairs: List[Tuple[Any, Any]]) -> Send:
    """Frame i: every (publisher, message) pair, one header, published back to back.

    As the node sends one frame's outputs: same stamp and frame_id, in manifest order.
    """
    def send(_: int, frame_id: str) -> None:
        first = pairs[0][1]
        restamp(first, frame_id)
        for publisher, msg in pairs:
            msg.header = first.header
            publisher.publish(msg)
    return send


def stream(send: Send, rate_hz: float, count: int, label: str) -> Dict[str, Any]:
    """Send `count` frames at `rate_hz` on a fixed schedule (no catch-up bursts)."""
    period = 1.0 / rate_hz
    sent: List[str] = []
    start = time.monotonic()
    next_at = start
    for i in range(count):
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -period:
            next_at = time.monotonic()
        frame_id = f'{label}/{i}'
        send(i, frame_id)
        sent.append(frame_id)
        next_at += period
    elapsed = time.monotonic() - start
    return {'frame_ids': sent, 'rate_hz_offered': rate_hz,
            'rate_hz_achieved': (count - 1) / elapsed if count > 1 and elapsed > 0 else 0.0}


def _floor_runs(send: Send, spec: Dict[str, Any], label: str) -> List[Dict[str, Any]]:
    """`spec['repeats']` streams to the bare subscriber, half a second apart."""
    runs = []
    for repeat in range(spec['repeats']):
        run = stream(send, spec['rate_hz'], spec['frames'], f'{label}/{repeat}')
        runs.append({'frame_ids': run['frame_ids'], 'rate_hz_achieved': run['rate_hz_achieved']})
        time.sleep(0.5)
    return runs


class RawBaseline:
    """The model's raw session.run in this process, timed on demand next to a node phase."""

    def __init__(self, spec: Dict[str, Any], scene: Any) -> None:
        from gps_denied_inference.artifacts.manifest import Manifest
        from gps_denied_inference.bench.raw import create_session, preprocessed_input, timed_run

        self.manifest = Manifest.from_json(Path(spec['manifest']).read_text())
        self._tensor = preprocessed_input(self.manifest, scene)
        self._session = create_session(spec['path'])
        self._seconds = spec['seconds']
        self._min_iterations = spec['min_iterations']
        timed_run(self._session, self.manifest, self._tensor, 0.0, 1)  # warm-up

    def time(self, rate_hz: Optional[float] = None) -> Dict[str, Any]:
        """One loop, tight or paced at `rate_hz`: {latencies_s, throughput_hz, cpu_per_run_s}."""
        from gps_denied_inference.bench.raw import timed_run

        return timed_run(self._session, self.manifest, self._tensor, self._seconds,
                         self._min_iterations, 1.0 / rate_hz if rate_hz else 0.0)


class Driver:
    """Runs one plan; every observation goes into `self.result`."""

    def __init__(self, ros: SpunNode, plan: Dict[str, Any]) -> None:
        from gps_denied_inference.demo.scene import AerialScene

        self.ros = ros
        self.plan = plan
        self.scene = AerialScene(seed=plan.get('scene_seed', 7))
        self._messages: Dict[str, List[Any]] = {}
        self.diagnostics = DiagnosticsWatch(ros)
        self.result: Dict[str, Any] = {
            'environment': {key: os.environ.get(key, '') for key in (
                'FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE',
                'FASTDDS_BUILTIN_TRANSPORTS', 'ROS_DOMAIN_ID')},
            'floor': [], 'return_floor': {}, 'nodes': {}, 'errors': []}

    def messages(self, kind: str) -> List[Any]:
        """The pre-built frames of one kind (built once, outside any timed phase)."""
        if kind not in self._messages:
            self._messages[kind] = frame_messages(self.scene, FRAME_KINDS[kind])
        return self._messages[kind]

    def run(self) -> None:
        """Transport floors first, then every node; a failure is recorded, not raised."""
        for step in self.plan.get('floor', []):
            self._guarded(f'floor {step["kind"]}', self.floor, step)
        for step in self.plan.get('return_floor', []):
            self._guarded(f'return floor {step["model"]}', self.return_floor, step)
        for node in self.plan.get('nodes', []):
            self._guarded(f'node {node["node"]}', self.node_section, node)

    def _guarded(self, what: str, step: Any, spec: Dict[str, Any]) -> None:
        try:
            step(spec)
        except Exception as err:  # noqa: B902 - one failed section must not hide the others
            self.result['errors'].append(f'{what}: {type(err).__name__}: {err}')

    def floor(self, spec: Dict[str, Any]) -> None:
        """Frames to the bare subscriber: what the transport alone costs."""
        from sensor_msgs.msg import Image

        publisher = self.ros.node.create_publisher(Image, spec['topic'], CAMERA_QOS)
        matched = wait_until(lambda: publisher.get_subscription_count() > 0, MATCH_TIMEOUT_S)
        runs = _floor_runs(camera_sender(publisher, self.messages(spec['kind'])), spec,
                           f'floor/{spec["kind"]}')
        self.result['floor'].append({'kind': spec['kind'], 'topic': spec['topic'],
                                     'matched': matched, 'runs': runs})
        self.ros.node.destroy_publisher(publisher)

    def return_floor(self, spec: Dict[str, Any]) -> None:
        """One model's outputs, sized and sent as the node sends them, to the bare subscriber."""
        from sensor_msgs.msg import Image

        from gps_denied_inference.artifacts.manifest import Manifest

        manifest = Manifest.from_json(Path(spec['manifest']).read_text())
        messages = output_messages(manifest)
        pairs = [(self.ros.node.create_publisher(Image, spec['topics'][name], OUTPUT_QOS),
                  messages[name]) for name in spec['topics']]
        matched = wait_until(lambda: all(p.get_subscription_count() > 0 for p, _ in pairs),
                             MATCH_TIMEOUT_S)
        runs = _floor_runs(output_set_sender(pairs), spec, f'return/{spec["model"]}')
        self.result['return_floor'][spec['model']] = {
            'topics': list(spec['topics'].values()), 'matched': matched, 'runs': runs,
            'bytes_per_frame': sum(len(msg.data) for _, msg in pairs)}
        for publisher, _ in pairs:
            self.ros.node.destroy_publisher(publisher)

    def node_section(self, spec: Dict[str, Any]) -> None:
        """Start-up cycles, then e2e, saturated and overload streams; then shut it down."""
        from sensor_msgs.msg import Image

        from gps_denied_inference.demo.lifecycle_client import LifecycleClient

        name, model = spec['node'], spec['model']
        record: Dict[str, Any] = {'model': model, 'startup': [], 'e2e': [], 'saturated': [],
                                  'overload': None}
        self.result['nodes'][model] = record
        lifecycle = LifecycleClient(self.ros.node, f'/{name}')
        if not lifecycle.wait_for_services(MATCH_TIMEOUT_S):
            raise GpsDeniedInferenceError(f'node /{name}: lifecycle services not found within '
                                          f'{MATCH_TIMEOUT_S:.0f} s')
        collector = OutputCollector(self.ros, name, model, tuple(spec['outputs']))
        camera = self.ros.node.create_publisher(Image, spec['input_topic'], CAMERA_QOS)
        raw = RawBaseline(spec['raw_baseline'], self.scene) if spec['raw_baseline'] else None
        try:
            self._startup(lifecycle, spec['startup_cycles'], record)
            if not wait_until(lambda: camera.get_subscription_count() > 0
                              and all(s.get_publisher_count() > 0
                                      for s in collector.subscriptions), MATCH_TIMEOUT_S):
                raise GpsDeniedInferenceError(f'node /{name}: input or outputs did not match '
                                              f'within {MATCH_TIMEOUT_S:.0f} s')
            status = f'{name}: model {model}'
            self._phase(camera, collector, status, 'warmup', spec['e2e'][0]['kind'],
                        spec['e2e'][0]['rate_hz'], WARMUP_FRAMES, spec)
            null = NullStream(self, spec, model) if spec.get('null') else None
            for phase in spec['e2e']:
                for repeat in range(phase['repeats']):
                    label = f'e2e/{phase["kind"]}/{repeat}'
                    paired = phase['paired']
                    floor = (null.phase(f'null/{phase["kind"]}/{repeat}', phase)
                             if paired and null is not None else None)
                    record['e2e'].append(self._phase(
                        camera, collector, status, label, phase['kind'], phase['rate_hz'],
                        phase['frames'], spec, raw=raw if paired else None, paced_raw=True))
                    record['e2e'][-1]['null'] = floor
            if null is not None:
                null.close()
            saturated = spec.get('saturated')
            for repeat in range(saturated['repeats'] if saturated else 0):
                record['saturated'].append(self._phase(
                    camera, collector, status, f'saturated/{repeat}', saturated['kind'],
                    saturated['rate_hz'], saturated['frames'], spec, raw=raw))
            overload = spec.get('overload')
            if overload:
                record['overload'] = self._phase(
                    camera, collector, status, 'overload', overload['kind'],
                    overload['rate_hz'], overload['frames'], spec, rss_pid=spec['pid'])
        finally:
            record['shutdown_ok'] = lifecycle.change('shutdown')
            self.ros.node.destroy_publisher(camera)

    def _startup(self, lifecycle: Any, cycles: int, record: Dict[str, Any]) -> None:
        for cycle in range(cycles):
            started = time.perf_counter()
            configured = lifecycle.change('configure')
            configured_at = time.perf_counter()
            activated = configured and lifecycle.change('activate')
            activated_at = time.perf_counter()
            if not activated:
                raise GpsDeniedInferenceError(
                    f'start-up cycle {cycle}: {"activate" if configured else "configure"} '
                    'failed (see the node log)')
            asked = time.perf_counter()
            lifecycle.state()
            record['startup'].append({'configure_s': configured_at - started,
                                      'activate_s': activated_at - configured_at,
                                      'get_state_s': time.perf_counter() - asked})
            if cycle < cycles - 1 and not (lifecycle.change('deactivate')
                                           and lifecycle.change('cleanup')):
                raise GpsDeniedInferenceError(f'start-up cycle {cycle}: deactivate or cleanup '
                                              'failed (see the node log)')

    def _phase(self, camera: Any, collector: OutputCollector, status: str, label: str,
               kind: str, rate_hz: float, frames: int, spec: Dict[str, Any],
               rss_pid: Optional[int] = None,
               raw: Optional[RawBaseline] = None,
               paced_raw: bool = False) -> Dict[str, Any]:
        messages = self.messages(kind)
        timeout = spec['diagnostics_timeout_s']
        raw_run = raw.time() if raw is not None else None
        paced_run = raw.time(rate_hz) if raw is not None and paced_raw else None
        before = self.diagnostics.counters(status, timeout)
        cpu_before = (process_cpu_s(spec['pid']), process_cpu_s(os.getpid()), machine_cpu())
        rss: List[Tuple[float, int]] = []
        sampler = None
        if rss_pid is not None:
            sampler = RssSampler(rss_pid)
            sampler.start()
        run = stream(camera_sender(camera, messages), rate_hz, frames, label)
        if sampler is not None:
            rss = sampler.stop()
        collector.wait_settled(run['frame_ids'], quiet_s=spec['settle_s'],
                               limit_s=4 * spec['settle_s'])
        after = self.diagnostics.counters(status, timeout)
        cpu_after = (process_cpu_s(spec['pid']), process_cpu_s(os.getpid()), machine_cpu())
        completed = collector.take(run['frame_ids'])
        return {'label': label, 'kind': kind, 'sent': len(run['frame_ids']),
                'rate_hz_offered': rate_hz, 'rate_hz_achieved': run['rate_hz_achieved'],
                'latencies_s': [latency for latency, _ in completed],
                'completed_at': [at for _, at in completed],
                'counters': {key: after[key] - before[key] for key in COUNTERS},
                'rss': rss, 'node_cpu_s': cpu_after[0] - cpu_before[0],
                'camera_cpu_s': cpu_after[1] - cpu_before[1],
                'machine_busy': busy_fraction(cpu_before[2], cpu_after[2]),
                'raw': raw_run, 'paced_raw': paced_run, 'node_times': after['node_times']}


class NullStream:
    """The null node of one model: the same paced stream, answered with no work between.

    Run right before each paired node phase, with the same frames, rate and count, so the
    node and its floor are measured seconds apart in the same run.
    """

    def __init__(self, driver: 'Driver', spec: Dict[str, Any], model: str) -> None:
        from sensor_msgs.msg import Image

        self._driver = driver
        self._spec = spec
        self._null = spec['null']
        self.collector = OutputCollector(driver.ros, self._null['node'], model,
                                         tuple(spec['outputs']))
        self.camera = driver.ros.node.create_publisher(Image, self._null['input_topic'],
                                                       CAMERA_QOS)
        if not wait_until(lambda: self.camera.get_subscription_count() > 0
                          and all(s.get_publisher_count() > 0
                                  for s in self.collector.subscriptions), MATCH_TIMEOUT_S):
            raise GpsDeniedInferenceError(f'null node /{self._null["node"]}: input or outputs '
                                          f'did not match within {MATCH_TIMEOUT_S:.0f} s')
        kind = spec['e2e'][0]['kind']
        self._stream('null/warmup', kind, spec['e2e'][0]['rate_hz'], WARMUP_FRAMES)

    def phase(self, label: str, phase: Dict[str, Any]) -> Dict[str, Any]:
        """One stream like the node phase `phase`: latencies, CPU, machine load."""
        before = (process_cpu_s(self._null['pid']), machine_cpu())
        run, completed = self._stream(label, phase['kind'], phase['rate_hz'],
                                      phase.get('null_frames', phase['frames']))
        after = (process_cpu_s(self._null['pid']), machine_cpu())
        return {'label': label, 'sent': len(run['frame_ids']),
                'rate_hz_achieved': run['rate_hz_achieved'],
                'latencies_s': [latency for latency, _ in completed],
                'null_cpu_s': after[0] - before[0],
                'machine_busy': busy_fraction(before[1], after[1])}

    def _stream(self, label: str, kind: str, rate_hz: float, frames: int) -> Tuple[Any, Any]:
        run = stream(camera_sender(self.camera, self._driver.messages(kind)), rate_hz, frames,
                     label)
        settle = self._spec['settle_s']
        self.collector.wait_settled(run['frame_ids'], quiet_s=settle, limit_s=4 * settle)
        return run, self.collector.take(run['frame_ids'])

    def close(self) -> None:
        """Destroy the camera publisher and the output subscriptions."""
        self._driver.ros.node.destroy_publisher(self.camera)
        for subscription in self.collector.subscriptions:
            self._driver.ros.node.destroy_subscription(subscription)


class RssSampler:
    """The node process's resident set, sampled on a thread during a phase."""

    def __init__(self, pid: int) -> None:
        self._dir = f'/proc/{pid}'
        self._stop = threading.Event()
        self._samples: List[Tuple[float, int]] = []
        self._thread = threading.Thread(target=self._run, daemon=True, name='rss-sampler')
        self._started = 0.0

    def start(self) -> None:
        """Take the first sample now, then one every RSS_SAMPLE_PERIOD_S."""
        self._started = time.monotonic()
        self._sample()
        self._thread.start()

    def stop(self) -> List[Tuple[float, int]]:
        """Take the last sample; return (seconds since start, bytes) samples."""
        self._stop.set()
        self._thread.join(5.0)
        self._sample()
        return list(self._samples)

    def _sample(self) -> None:
        self._samples.append((time.monotonic() - self._started, current_rss_bytes(self._dir)))

    def _run(self) -> None:
        while not self._stop.wait(RSS_SAMPLE_PERIOD_S):
            self._sample()


def main(argv: Optional[List[str]] = None) -> int:
    """Run PLAN.json, write OUT.json; exit 1 when a section failed."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print('usage: bench_driver PLAN.json OUT.json', file=sys.stderr)
        return 2
    with open(args[0]) as stream_:
        plan = json.load(stream_)
    with SpunNode('bench_camera') as ros:
        driver = Driver(ros, plan)
        driver.run()
    with open(args[1], 'w') as out:
        json.dump(driver.result, out)
    for error in driver.result['errors']:
        print(f'bench_driver: {error}', file=sys.stderr)
    return 1 if driver.result['errors'] else 0


if __name__ == '__main__':
    raise SystemExit(main())
