"""Camera frames cross process boundaries with the shipped Fast DDS configuration.

Three processes, as on the drone: a camera driver (test/camera_process.py) publishing rgb8 at
30 Hz with sensor-data QoS, the node (`python -m gps_denied_inference.node`, as the launch
file runs it) and this test's process with a reliable and a best-effort output subscriber.
The node and the camera get the environment the launch file and the README prescribe
(bench.run.child_environment('shipped'): the profile under the variable this distro's Fast DDS
reads, nothing else), so the result does not depend on how pytest itself was started.
"""

import itertools
import os
from pathlib import Path
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree

from camera_process import CameraProcess
from node_harness import wait_until
import pytest
from sealed_models import make_sealed_onnx

from gps_denied_inference.bench.run import child_environment, PROFILE_FILE
from gps_denied_inference.spin_thread import SpinThread

FULL_HD_RGB8 = 1920 * 1080 * 3
NAMESPACE = '{http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles}'
FRAMES = 100
WARMUP_FRAMES = 10
# The acceptance: 99% of frames reach the node on an unloaded machine, one with fewer runnable
# tasks than CPUs. Under load the node's process can be off the CPU long enough for the
# best-effort keep-last-5 histories to overwrite frames (the soak test saw 590/600 arrive on a
# loaded machine), so 95% there.
UNLOADED_SHARE = 0.99
LOADED_SHARE = 0.95
# Each test's node, camera topic and client have names of their own: an earlier test's entities
# can linger in the ROS graph for a while.
_NUMBERS = itertools.count()


def _profile():
    root = ElementTree.parse(PROFILE_FILE).getroot()
    transports = {d.findtext(f'{NAMESPACE}transport_id'): d
                  for d in root.iter(f'{NAMESPACE}transport_descriptor')}
    participant = root.find(f'{NAMESPACE}participant')
    return root, transports, participant


def test_profile_root_and_namespace_are_the_ones_fast_dds_2_and_3_both_read():
    root, _, participant = _profile()
    # Fast DDS 2.6 (Humble) and 3.x both accept a <profiles> root in this namespace.
    assert root.tag == f'{NAMESPACE}profiles'
    assert participant.get('is_default_profile') == 'true'


def test_profile_has_a_shared_memory_segment_for_two_full_hd_rgb8_frames_and_udp():
    _, transports, participant = _profile()
    kinds = {d.findtext(f'{NAMESPACE}type'): d for d in transports.values()}
    assert set(kinds) == {'SHM', 'UDPv4'}
    shm = kinds['SHM']
    assert int(shm.findtext(f'{NAMESPACE}segment_size')) >= 2 * FULL_HD_RGB8
    assert int(shm.findtext(f'{NAMESPACE}maxMessageSize')) >= FULL_HD_RGB8
    rtps = participant.find(f'{NAMESPACE}rtps')
    used = [t.text for t in rtps.find(f'{NAMESPACE}userTransports')]
    assert sorted(used) == sorted(transports)
    # Without this, Fast DDS adds its builtin transports (a 512 KiB SHM segment) beside ours.
    assert rtps.findtext(f'{NAMESPACE}useBuiltinTransports') == 'false'


class _RunQueue:
    """The mean number of other runnable tasks on the machine while the with-block runs.

    The 1-min load average lags: a load that started seconds before the stream barely shows in
    it. /proc/loadavg's running count is the load now; it includes the task reading it.
    """

    def __init__(self, period_s: float = 0.05) -> None:
        self._period_s = period_s
        self._samples = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self._period_s):
            running = Path('/proc/loadavg').read_text().split()[3].split('/')[0]
            self._samples.append(int(running) - 1)

    def __enter__(self) -> '_RunQueue':
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(5.0)

    @property
    def mean(self) -> float:
        return sum(self._samples) / len(self._samples) if self._samples else 0.0


class _Client:
    """This process's side: lifecycle client, both output subscribers, /diagnostics."""

    def __init__(self, context, node: str) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        from gps_denied_inference.demo.lifecycle_client import LifecycleClient

        self.node = rclpy.create_node(f'{node}_client', context=context)
        self.lifecycle = LifecycleClient(self.node, f'/{node}')
        self._status_name = f'{node}: model tiny'
        self._lock = threading.Lock()
        self.outputs = {'reliable': [], 'best_effort': []}
        self.model_statuses = []
        self._subscriptions = []
        for kind, policy in (('reliable', ReliabilityPolicy.RELIABLE),
                             ('best_effort', ReliabilityPolicy.BEST_EFFORT)):
            # The whole run fits even if this process's executor falls behind.
            qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=FRAMES + WARMUP_FRAMES,
                             reliability=policy)
            self._subscriptions.append(self.node.create_subscription(
                Image, f'/{node}/tiny/doubled', lambda msg, k=kind: self._store(k, msg), qos))
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diagnostics, 10)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.spinner = SpinThread(self.executor).start()

    def _store(self, kind, msg) -> None:
        with self._lock:
            self.outputs[kind].append((msg.header.frame_id, time.time(),
                                       msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

    def _on_diagnostics(self, array) -> None:
        for status in array.status:
            if status.name == self._status_name:
                with self._lock:
                    self.model_statuses.append({kv.key: kv.value for kv in status.values})

    def frame_ids(self, kind):
        with self._lock:
            return [frame_id for frame_id, _, _ in self.outputs[kind]]

    def latest_counters(self):
        with self._lock:
            return dict(self.model_statuses[-1]) if self.model_statuses else {}

    def status_count(self) -> int:
        with self._lock:
            return len(self.model_statuses)

    def outputs_matched(self) -> bool:
        """Both output subscriptions have matched the node's output publisher."""
        return all(s.get_publisher_count() >= 1 for s in self._subscriptions)

    def settled(self, mark: int) -> bool:
        """The node has finished with every frame that reached it, and its outputs are in.

        Two statuses since `mark` agree on frames_received, every received frame is accounted
        for (none still in the mailbox or the worker), and the reliable subscriber holds one
        output per processed frame.
        """
        with self._lock:
            last_two = self.model_statuses[max(mark, len(self.model_statuses) - 2):]
        if len(last_two) < 2 or (last_two[0]['frames_received']
                                 != last_two[1]['frames_received']):
            return False
        counts = {key: int(value) for key, value in last_two[1].items()
                  if key.startswith('frames_')}
        accounted = sum(counts[f'frames_{outcome}']
                        for outcome in ('processed', 'dropped', 'rejected', 'failed'))
        return (counts['frames_received'] == accounted
                and len(self.frame_ids('reliable')) == counts['frames_processed'])

    def close(self) -> None:
        self.spinner.stop()
        self.node.destroy_node()


@pytest.fixture
def node_process(tmp_path):
    """The node in its own process with the shipped transport; its output on failure.

    Yields the process, its environment, its log file, its name and its camera topic.
    """
    name = f'transport_node_{next(_NUMBERS)}'
    camera_topic = f'/transport/camera_{name}'
    model = make_sealed_onnx(tmp_path, 'tiny.onnx', height=16, width=16)
    params = tmp_path / 'params.yaml'
    params.write_text(
        f'{name}:\n  ros__parameters:\n    models: ["tiny"]\n'
        f'    tiny.runtime: "onnxruntime"\n    tiny.engine_path: "{model}"\n'
        f'    tiny.input_topic: "{camera_topic}"\n    diagnostics_period_s: 0.2\n'
        f'    output_depth: 10\n    thermal.root: "/nonexistent"\n')
    log = tmp_path / 'node.log'
    env = child_environment('shipped', int(os.environ['ROS_DOMAIN_ID']))
    with open(log, 'w') as stream:
        process = subprocess.Popen(
            [sys.executable, '-m', 'gps_denied_inference.node', '--ros-args', '-r',
             f'__node:={name}', '--params-file', str(params)],
            stdout=stream, stderr=subprocess.STDOUT, env=env)
    try:
        yield process, env, log, name, camera_topic
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _xml_errors(text: str):
    """Fast DDS's complaints about a profile; it then runs on its defaults, silently."""
    return [line for line in text.splitlines() if 'XMLPARSER' in line]


def test_a_broken_profile_is_reported_by_fast_dds_and_caught_by_this_check(tmp_path):
    broken = tmp_path / 'broken.xml'
    broken.write_text(PROFILE_FILE.read_text().replace('<segment_size>', '<bogus>1</bogus>'
                                                       '<segment_size>'))
    env = child_environment('shipped', int(os.environ['ROS_DOMAIN_ID']))
    env.update({name: str(broken) for name in env if name.endswith('_DEFAULT_PROFILES_FILE')})
    camera = CameraProcess('/transport/broken', env=env)
    assert camera.wait_matched(0, 0.0) == 0
    assert camera.close() == 0
    assert any('bogus' in line for line in _xml_errors(camera.stderr)), camera.stderr


@pytest.mark.parametrize('width, height', [(640, 480), (1280, 720)])
def test_camera_frames_cross_processes_and_outputs_reach_both_kinds_of_subscriber(
        ros_context, node_process, width, height):
    process, env, log, name, camera_topic = node_process
    client = _Client(ros_context, name)
    camera = CameraProcess(camera_topic, env=env)
    try:
        assert client.lifecycle.wait_for_services(30.0), Path(log).read_text()
        assert client.lifecycle.change('configure'), Path(log).read_text()
        assert client.lifecycle.change('activate'), Path(log).read_text()
        assert camera.wait_matched(1, 30.0) >= 1, 'the node never subscribed to the camera'
        # Our subscribers and the node's output publisher: matched before frames flow.
        assert wait_until(client.outputs_matched, 30.0), 'outputs never matched'
        assert wait_until(lambda: client.model_statuses, 30.0)
        # Warm-up: the first samples of a new shared-memory connection may be lost (seen once:
        # 96/100); the acceptance is about the steady 30 Hz stream, measured after it.
        camera.publish('rgb8', width, height, WARMUP_FRAMES)
        mark = client.status_count()
        assert wait_until(lambda: client.settled(mark), 30.0), client.latest_counters()
        # One more stream when the first fell short: a stall of the whole machine (seen once in
        # a full suite run, unloaded by both measures: one 330 ms gap, 96/100) costs frames
        # without saying anything about the transport; a wrong configuration loses both runs.
        for attempt in (1, 2):
            arrived, share, summary = _stream(client, camera, width, height)
            print(f'\nattempt {attempt}: {summary}')
            if arrived >= share * FRAMES:
                break
        counters = client.latest_counters()
        received, processed = int(counters['frames_received']), int(counters['frames_processed'])
        reliable = client.frame_ids('reliable')
        # Best effort may trail the reliable copies; each processed frame's output must come.
        assert wait_until(lambda: sorted(client.frame_ids('best_effort')) == sorted(reliable),
                          30.0)
        best_effort = client.frame_ids('best_effort')
        assert arrived >= share * FRAMES, f'{summary}\n{counters}'
        assert 0 < processed <= received
        assert len(reliable) == len(set(reliable)) == processed
        assert sorted(best_effort) == sorted(reliable)
        assert client.lifecycle.change('shutdown')
        assert process.wait(30.0) == 0
    finally:
        camera_exit = camera.close()
        client.close()
    assert camera_exit == 0, camera.stderr
    output = Path(log).read_text() + camera.stderr
    assert not _xml_errors(output), output


def _stream(client, camera, width, height):
    """Stream FRAMES at 30 Hz once the node has settled; (arrived, required share, summary)."""
    baseline = int(client.latest_counters()['frames_received'])
    load_before = os.getloadavg()[0]
    with _RunQueue() as run_queue:
        answer = camera.publish('rgb8', width, height, FRAMES)
    load = max(load_before, os.getloadavg()[0])
    assert answer['published'] == FRAMES, answer
    mark = client.status_count()
    assert wait_until(lambda: client.settled(mark), 30.0), client.latest_counters()
    counters = client.latest_counters()
    arrived = int(counters['frames_received']) - baseline
    latencies = sorted(arrived_at - stamped for _, arrived_at, stamped in
                       client.outputs['reliable'])
    cpus = os.cpu_count()
    unloaded = load < cpus and run_queue.mean < cpus
    share = UNLOADED_SHARE if unloaded else LOADED_SHARE
    summary = (
        f'{width}x{height} rgb8 at 30 Hz, camera -> node -> subscribers: '
        f'{arrived}/{FRAMES} received after warm-up ({answer["late"]} sent after a missed '
        f'slot), {int(counters["frames_processed"])} processed in all, '
        f'{int(counters["frames_dropped"])} dropped by the mailbox; outputs '
        f'{len(client.frame_ids("reliable"))} reliable; camera stamp -> output p50 '
        f'{latencies[len(latencies) // 2] * 1e3:.1f} ms, max {latencies[-1] * 1e3:.1f} ms. '
        f'At least {share:.0%} must arrive: during the stream the 1-min load average was up '
        f'to {load:.1f} and {run_queue.mean:.1f} other tasks were runnable on average, on '
        f'{cpus} CPUs: ' + ('both below, an unloaded machine' if unloaded else
                            'not both below, a loaded machine'))
    return arrived, share, summary
