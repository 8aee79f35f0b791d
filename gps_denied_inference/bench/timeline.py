"""Per-frame timeline of the node's own path, for one model paced at half its raw rate.

`python -m gps_denied_inference.bench.timeline [--model dense|superpoint|corners]
[--frames N] [--rate-fraction F]` runs the real InferenceNode in this process (ONNX Runtime,
one single-threaded executor, as `python -m gps_denied_inference.node` runs it), a camera in
a second process and the bare subscriber of the outputs in a third, and timestamps inside
the node, per frame: the subscription callback (decode, preprocess, handoff), the wait for
the inference thread, the infer call, the NaN/Inf check and the publish of every output;
then the receiver's arrival. Before the stream it times raw session.run in this process,
tight and paced at the stream's rate. Prints the medians and p95 per step and writes
build/bench/timeline_<model>.json: where each millisecond of a frame goes, and which of it is
the node's. A tool, not a test: it asserts nothing about time.
"""

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CAMERA_TOPIC = '/bench/timeline/camera'


def camera(topic: str, rate_hz: float, frames: int) -> int:
    """The camera process: wait for a subscriber, publish `frames` mono8 frames at `rate_hz`."""
    from sensor_msgs.msg import Image

    from gps_denied_inference.bench.driver import camera_sender, stream, wait_until
    from gps_denied_inference.bench.frames import FRAME_KINDS, frame_messages
    from gps_denied_inference.bench.ros import CAMERA_QOS, SpunNode
    from gps_denied_inference.demo.scene import AerialScene

    messages = frame_messages(AerialScene(seed=7), FRAME_KINDS['mono8_640x480'])
    with SpunNode('bench_timeline_camera') as ros:
        publisher = ros.node.create_publisher(Image, topic, CAMERA_QOS)
        if not wait_until(lambda: publisher.get_subscription_count() > 0, 20.0):
            return 1
        print('matched', flush=True)
        sys.stdin.readline()
        run = stream(camera_sender(publisher, messages), rate_hz, frames, 'timeline')
        print(json.dumps({'rate_hz_achieved': run['rate_hz_achieved']}), flush=True)
        time.sleep(1.0)
    return 0


class Timeline:
    """Timestamps of every frame through one ModelWorker, by frame id (perf_counter s)."""

    def __init__(self, worker: Any) -> None:
        self.frames: Dict[str, Dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._wrap_submit(worker)
        self._wrap(worker, '_infer', 'infer')
        self._wrap(worker, '_deliver', 'deliver')
        publish = worker._publish

        def timed_publish(header: Any, outputs: Any, nonfinite: bool) -> None:
            self._mark(header.frame_id, 'publish0')
            publish(header, outputs, nonfinite)
            self._mark(header.frame_id, 'publish1')
        worker._publish = timed_publish

    def _mark(self, frame_id: str, key: str, **extra: Any) -> None:
        now = time.perf_counter()
        with self._lock:
            record = self.frames.setdefault(frame_id, {})
            record[key] = now
            record.update(extra)

    def _wrap_submit(self, worker: Any) -> None:
        submit = worker.submit

        def timed_submit(frame: Any) -> None:
            stamp = frame.header.stamp
            self._mark(frame.header.frame_id, 'callback0',
                       camera_to_callback_s=time.time() - stamp.sec - stamp.nanosec * 1e-9)
            submit(frame)
            self._mark(frame.header.frame_id, 'callback1')
        worker.submit = timed_submit

    def _wrap(self, worker: Any, method: str, label: str) -> None:
        inner = getattr(worker, method)

        def timed(item: Any, *args: Any) -> Any:
            frame_id = item.header.frame_id
            self._mark(frame_id, f'{label}0', **{f'{label}_thread':
                                                 threading.current_thread().name})
            try:
                return inner(item, *args)
            finally:
                self._mark(frame_id, f'{label}1')
        setattr(worker, method, timed)


STEPS = {
    'callback (decode, preprocess, handoff)': ('callback0', 'callback1'),
    'callback to the infer call': ('callback0', 'infer0'),
    'infer call': ('infer0', 'infer1'),
    'infer end to NaN/Inf check + publish start': ('infer1', 'deliver0'),
    'NaN/Inf check': ('deliver0', 'publish0'),
    'publish (every output)': ('publish0', 'publish1'),
    "node's own cost (callback to published, less infer)": None,
}


def step_stats(frames: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Optional[float]]]:
    """Per step, p50 and p95 in ms over the frames that went all the way through."""
    from gps_denied_inference.bench.report import percentiles_ms

    complete = [f for f in frames.values() if 'publish1' in f and 'callback0' in f]
    stats = {}
    for name, keys in STEPS.items():
        if keys is None:
            values = [(f['publish1'] - f['callback0']) - (f['infer1'] - f['infer0'])
                      for f in complete]
        else:
            values = [f[keys[1]] - f[keys[0]] for f in complete]
        stats[name] = percentiles_ms(values)
    stats['camera stamp to callback'] = percentiles_ms(
        [f['camera_to_callback_s'] for f in complete])
    return stats


def dropped_frames(frames: Dict[str, Dict[str, Any]]) -> List[Dict[str, Optional[float]]]:
    """Each frame that reached the callback but never the model, and what surrounded it.

    Per dropped frame, in ms: how late its callback ran after the camera stamped it, the gap
    to the next frame's callback (the newer input that replaced it), and how long the model
    had been busy with an earlier frame when it arrived (None when the model was idle).
    """
    ordered = sorted((f for f in frames.values() if 'callback0' in f),
                     key=lambda f: f['callback0'])
    drops = []
    for index, frame in enumerate(ordered):
        if 'infer0' in frame:
            continue
        arrived = frame['callback0']
        busy = [arrived - f['infer0'] for f in ordered
                if 'infer0' in f and f['infer0'] <= arrived < f.get('infer1', float('inf'))]
        following = ordered[index + 1]['callback0'] if index + 1 < len(ordered) else None
        drops.append({
            'camera_to_callback_ms': 1e3 * frame['camera_to_callback_s'],
            'next_callback_after_ms': None if following is None else 1e3 * (following - arrived),
            'model_busy_for_ms': 1e3 * busy[0] if busy else None,
            'when_replaced': None if following is None else _doing(ordered, following)})
    return drops


def _doing(frames: List[Dict[str, Any]], at: float) -> str:
    """What the inference thread was doing at `at`: inferring, publishing, or neither."""
    for frame in frames:
        if frame.get('infer0', at + 1) <= at < frame.get('infer1', float('inf')):
            return (f'in an infer call for {1e3 * (at - frame["infer0"]):.1f} ms, which took '
                    f'{1e3 * (frame.get("infer1", at) - frame["infer0"]):.1f} ms')
        if frame.get('deliver0', at + 1) <= at < frame.get('deliver1', float('inf')):
            return f'checking and publishing for {1e3 * (at - frame["deliver0"]):.1f} ms'
    return 'neither inferring nor publishing'



def main(argv: Optional[List[str]] = None) -> int:
    """Run one timeline; print and write it."""
    args_list = sys.argv[1:] if argv is None else argv
    if args_list[:1] == ['--camera']:
        return camera(args_list[1], float(args_list[2]), int(args_list[3]))
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--model', default='dense', choices=('dense', 'superpoint', 'corners'))
    parser.add_argument('--frames', type=int, default=60)
    parser.add_argument('--rate-fraction', type=float, default=0.5,
                        help="the stream's rate as a fraction of the raw rate (default 0.5)")
    parser.add_argument('--out', type=Path, default=ROOT / 'build' / 'bench')
    parser.add_argument('--publisher', choices=('node', 'before'), default='node',
                        help="the node's output publishing, or issue 21's 'before' (an "
                             "array('B') copy in a new Image per output) for an A/B")
    args = parser.parse_args(args_list)
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from gps_denied_inference.bench import raw as bench_raw
    from gps_denied_inference.bench.report import percentiles_ms
    from gps_denied_inference.demo.models import write_demo_model
    from gps_denied_inference.demo.scene import AerialScene
    from gps_denied_inference.node.lifecycle_node import InferenceNode
    from gps_denied_inference.spin_thread import SpinThread

    models = args.out / 'models'
    path = models / f'{args.model}.onnx'
    manifest = write_demo_model(path, superpoint=args.model == 'superpoint',
                                dense=args.model == 'dense')
    tensor = bench_raw.preprocessed_input(manifest, AerialScene(seed=7))
    session = bench_raw.create_session(str(path))
    tight = bench_raw.timed_run(session, manifest, tensor, 2.0, 5)
    rate = min(30.0, args.rate_fraction * tight['throughput_hz'])
    paced = bench_raw.timed_run(session, manifest, tensor, 3.0, 5, 1.0 / rate)
    del session
    outputs = [spec.name for spec in manifest.outputs]
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    received_path = args.out / f'timeline_{args.model}_received.json'
    node_name = 'bench_timeline'
    receiver = subprocess.Popen(
        [sys.executable, '-m', 'gps_denied_inference.bench.peers', str(received_path),
         *[f'output:/{node_name}/{args.model}/{o}' for o in outputs]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    cam = subprocess.Popen([sys.executable, '-m', 'gps_denied_inference.bench.timeline',
                            '--camera', CAMERA_TOPIC, str(rate), str(args.frames)],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
    rclpy.init()
    parameters = {'models': [args.model], 'model_dir': str(models),
                  f'{args.model}.runtime': 'onnxruntime',
                  f'{args.model}.engine_path': f'{args.model}.onnx',
                  f'{args.model}.input_topic': CAMERA_TOPIC,
                  f'{args.model}.providers': ['CPUExecutionProvider'],
                  'input_qos': 'sensor_data', 'thermal.throttle': False}
    node = InferenceNode(node_name, parameter_overrides=[
        Parameter(k, value=v) for k, v in parameters.items()])
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = SpinThread(executor, 'timeline-spin').start()
    camera_result: Dict[str, Any] = {}
    try:
        node.trigger_configure()
        node.trigger_activate()
        worker = node._workers[args.model]
        if args.publisher == 'before':
            from gps_denied_inference.bench.publish_cost import old_publisher
            worker._publish = old_publisher(node._output_publishers[args.model])
        timeline = Timeline(worker)
        receiver.stdout.readline()
        cam.stdout.readline()
        time.sleep(1.0)
        load = os.getloadavg()
        cam.stdin.write(b'go\n')
        cam.stdin.flush()
        camera_result = json.loads(cam.stdout.readline() or b'{}')
        time.sleep(2.0 + 3.0 / rate)
        stats = worker.stats.snapshot()
    finally:
        cam.stdin.close()
        cam.wait(10.0)
        receiver.stdin.close()
        receiver.wait(15.0)
        node.trigger_deactivate()
        node.trigger_cleanup()
        spinner.stop()
        node.destroy_node()
        rclpy.try_shutdown()
    received = json.loads(received_path.read_text())
    arrivals: Dict[str, List[float]] = {}
    for messages in received.values():
        for frame_id, latency in messages:
            arrivals.setdefault(frame_id, []).append(latency)
    e2e = [max(v) for v in arrivals.values() if len(v) == len(outputs)]
    steps = step_stats(timeline.frames)
    inline = sum(1 for f in timeline.frames.values()
                 if f.get('deliver_thread', '').startswith('worker-'))
    result = {
        'model': args.model, 'rate_hz': rate, 'frames': args.frames,
        'publisher': args.publisher,
        'camera': camera_result, 'load_average_at_start': load,
        'output_bytes': int(sum(np.prod(s.shape) * 4 for s in manifest.outputs)),
        'raw_tight': percentiles_ms(tight['latencies_s']),
        'raw_paced': percentiles_ms(paced['latencies_s']),
        'steps': steps, 'e2e': percentiles_ms(e2e),
        'node_counters': {'received': stats.received, 'processed': stats.processed,
                          'dropped': stats.dropped},
        'dropped_frames': dropped_frames(timeline.frames),
        'published_inline': inline, 'frames_timed': timeline.frames}
    (args.out / f'timeline_{args.model}.json').write_text(json.dumps(result, indent=1))
    print(f"{args.model} ({args.publisher} publisher): {result['output_bytes'] / 1e6:.2f} MB "
          f'out per frame, paced at {rate:.2f} Hz ({args.rate_fraction} x raw), '
          f'{args.frames} frames, load {load[0]:.1f}; received {stats.received}, processed '
          f'{stats.processed}, dropped {stats.dropped}; published on the inference thread '
          f'{inline}')
    rows = [('raw session.run, tight', result['raw_tight']),
            ("raw session.run, paced at the stream's rate", result['raw_paced']),
            *steps.items(), ('end to end (receiver)', result['e2e'])]
    for name, values in rows:
        print(f"  {name:54s} p50 {values['p50_ms'] or 0:8.2f}  p95 {values['p95_ms'] or 0:8.2f}"
              f"  ms  (n {values['n']})")
    late = result['steps']['camera stamp to callback']
    for drop in result['dropped_frames']:
        print(f"  dropped: callback {drop['camera_to_callback_ms']:.1f} ms after the stamp "
              f"(p50 {late['p50_ms'] or 0:.1f}), next frame's callback "
              f"{drop['next_callback_after_ms'] or 0:.1f} ms later, model busy for "
              f"{drop['model_busy_for_ms'] or 0:.1f} ms; when replaced the inference thread "
              f"was {drop['when_replaced']}")
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
