"""No silent starvation: matched publishers without frames, and incompatible QoS, on /diagnostics.

A node sitting "active" on a camera whose frames never arrive must say so: WARN once a
matched publisher has delivered nothing for `starvation_timeout_s`, ERROR after 5x, naming
the likely causes; an incompatible-QoS event on the camera subscription or an output
publisher is an ERROR naming the policy. Both clear when frames flow. Real rclpy, real Fast
DDS; the cross-process case is the exact defect of the issue (a camera process without the
large-data profile, rgb8 best effort).
"""

import contextlib
import itertools
import os
import threading

from camera_process import CameraProcess
from diagnostic_msgs.msg import DiagnosticStatus
from node_harness import model_parameters, mono8, NodeHarness, wait_until
import numpy as np
import pytest
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sealed_models import make_sealed_onnx
from sensor_msgs.msg import Image

from gps_denied_inference.bench.run import PROFILE_VARIABLES

TIMEOUT_S = 0.5
STARVING = 'publisher(s) matched but no frame arrived'
NO_PUBLISHER = 'no publisher on the input topic'
WAITING = 'active, waiting for frames'
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                      reliability=ReliabilityPolicy.RELIABLE)
BEST_EFFORT = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                         reliability=ReliabilityPolicy.BEST_EFFORT)


_NUMBERS = itertools.count()


def camera_topic(harness: NodeHarness) -> str:
    """The node's input topic: its own, so no earlier test's camera counts as a publisher."""
    return f'/{harness.node_name}/camera'


def output_topic(harness: NodeHarness) -> str:
    return f'/{harness.node_name}/tiny/doubled'


@pytest.fixture
def start(ros_context, tmp_path):
    """Start active nodes, each with a name of its own: earlier tests' nodes linger a while."""
    model = make_sealed_onnx(tmp_path, 'tiny.onnx', height=16, width=16)
    harnesses = []

    def start_active(**parameters):
        name = f'starvation_{next(_NUMBERS)}'
        harness = NodeHarness(ros_context, {
            'models': ['tiny'], **model_parameters('tiny', str(model), f'/{name}/camera'),
            'diagnostics_period_s': 0.2, 'starvation_timeout_s': TIMEOUT_S,
            'thermal.root': '/nonexistent', **parameters}, node_name=name)
        harnesses.append(harness)
        assert harness.lifecycle.change('configure') and harness.lifecycle.change('activate')
        return harness
    yield start_active
    for harness in harnesses:
        harness.close()


class StatusWatch:
    """The node's 'model tiny' statuses, from a mark onwards."""

    def __init__(self, harness: NodeHarness) -> None:
        self._harness = harness
        self._mark = 0

    def statuses(self):
        return [s for array in self._harness.diagnostics[self._mark:] for s in array.status
                if s.name.endswith(': model tiny')]

    def mark(self) -> None:
        """Forget what was seen so far."""
        self._mark = len(self._harness.diagnostics)

    def wait_for(self, level: int, *fragments: str, timeout_s: float = 30.0):
        """The first status at `level` whose message holds every fragment, or AssertionError."""
        def found():
            return next((s for s in self.statuses() if s.level == level
                         and all(f in s.message for f in fragments)), None)
        assert wait_until(lambda: found() is not None, timeout_s), (
            f'no level {level} status with {fragments}; saw '
            f'{[(s.level, s.message) for s in self.statuses()[-5:]]}')
        return found()


@contextlib.contextmanager
def frames_flowing(publisher, period_s: float = 0.05):
    """Publish a small mono8 frame every `period_s` on a thread for the with-block."""
    stop = threading.Event()
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)

    def run():
        while not stop.wait(period_s):
            publisher.publish(mono8(pixels))
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5.0)


def test_matched_publisher_sending_nothing_warns_then_errors_and_clears_when_frames_flow(start):
    # A WARN window of 1 to 5 s after activation: wide enough for discovery on a loaded box.
    harness = start(starvation_timeout_s=1.0)
    watch = StatusWatch(harness)
    camera = camera_topic(harness)
    assert harness.wait_for_subscription(camera, 30.0)
    warn = watch.wait_for(DiagnosticStatus.WARN, STARVING)
    for cause in ('large messages', 'Fast DDS profile', 'QoS mismatch'):
        assert cause in warn.message
    assert {kv.key: kv.value for kv in warn.values}['matched_publishers'] == '1'
    watch.wait_for(DiagnosticStatus.ERROR, STARVING, timeout_s=5 * 1.0 + 30.0)
    with frames_flowing(harness._publishers[camera]):
        watch.mark()
        watch.wait_for(DiagnosticStatus.OK, 'running at')
        watch.mark()
        assert wait_until(lambda: len(watch.statuses()) >= 5, 30.0)
        # A loaded machine can stall the publishing thread or the node's executor for the 1 s
        # timeout: a real gap, rightly a WARN. An ERROR takes 5 s without a frame, and any
        # starvation report must clear again while frames flow.
        flowing = watch.statuses()
        assert all(s.level == DiagnosticStatus.OK
                   or (s.level == DiagnosticStatus.WARN and STARVING in s.message)
                   for s in flowing), [(s.level, s.message) for s in flowing]
        watch.mark()
        watch.wait_for(DiagnosticStatus.OK, 'running at')


def test_no_publisher_is_waiting_not_starvation(start):
    """Without a publisher the node waits, then asks whether the camera driver runs.

    Starvation means matched publishers that send nothing: with none, the node must never
    claim it, however long it waits. 'waiting for frames' first; from 5 x starvation_timeout_s
    after activation (5 s here, so a stalled diagnostics timer cannot skip the OK window) the
    no-publisher WARN.
    """
    harness = start(starvation_timeout_s=1.0)
    watch = StatusWatch(harness)
    watch.wait_for(DiagnosticStatus.WARN, NO_PUBLISHER, timeout_s=5 * 1.0 + 30.0)
    # From activation on; statuses from before it ('not active') can arrive after it returned.
    statuses = list(itertools.dropwhile(lambda s: s.message == 'not active', watch.statuses()))
    seen = [(s.level, s.message) for s in statuses]
    assert not [message for _, message in seen if STARVING in message], seen
    assert (DiagnosticStatus.OK, WAITING) in seen
    assert all(status == (DiagnosticStatus.OK, WAITING)
               or (status[0] == DiagnosticStatus.WARN and status[1].startswith(NO_PUBLISHER))
               for status in seen), seen


def _fast_dds_defaults():
    """This environment without any Fast DDS profile or builtin-transport setting."""
    env = dict(os.environ)
    for name in PROFILE_VARIABLES + ('FASTDDS_BUILTIN_TRANSPORTS',):
        env.pop(name, None)
    return env


def test_camera_process_without_the_profile_starves_the_node_visibly_until_frames_fit(start):
    """The issue's defect: a camera process on Fast DDS defaults, rgb8 best effort.

    Matched, nothing arrives, the node says why; mono8 (which fits the default transport)
    then flows and the status clears. Whether rgb8 arrives is the network stack's choice,
    not the node's: the fragments of a large sample overflow the loopback socket buffer when
    the camera sends faster than the receiver drains, which a loaded machine can slow enough
    to let some frames through (seen: 36 of 60 640x480 frames under load). 1280x720 makes
    that rarer; whatever arrives, the node's report must agree with it.
    """
    harness = start()
    watch = StatusWatch(harness)
    camera = CameraProcess(camera_topic(harness), env=_fast_dds_defaults())

    def received():
        return harness.node._stats['tiny'].snapshot().received

    def starving():
        return [s for s in watch.statuses() if STARVING in s.message]
    try:
        assert camera.wait_matched(1, 30.0) >= 1
        watch.mark()
        camera.publish('rgb8', 1280, 720, 60)
        # The node can discover the camera's publisher later than the camera discovered the
        # node, and reports starvation only once it has: wait for it (or for a late frame).
        assert wait_until(lambda: starving() or received() > 0, 30.0), (
            '0/60 rgb8 frames arrived and no starvation was reported')
        if received() == 0:
            # WARN, or already ERROR when discovery took longer than 5 x the timeout.
            assert {s.level for s in starving()} <= {DiagnosticStatus.WARN,
                                                     DiagnosticStatus.ERROR}
            assert 'large messages' in starving()[-1].message
        else:
            print(f'\n{received()}/60 rgb8 frames crossed on Fast DDS defaults this time')
        watch.mark()
        camera.publish('mono8', 640, 480, 30)
        watch.wait_for(DiagnosticStatus.OK, 'running at')
    finally:
        assert camera.close() == 0, camera.stderr


@pytest.mark.parametrize('side, parameters, policy', [
    ('input subscription', {'input_qos': 'reliable'}, 'RELIABILITY'),
    ('output publisher', {}, 'DURABILITY'),
])
def test_incompatible_qos_is_an_error_naming_the_policy_and_clears_when_frames_flow(
        start, side, parameters, policy):
    harness = start(**parameters)
    watch = StatusWatch(harness)
    if side == 'input subscription':
        # A best-effort camera never matches a reliable subscription.
        harness.client.create_publisher(Image, camera_topic(harness), BEST_EFFORT)
    else:
        # A late-joiner asking for TRANSIENT_LOCAL never matches the volatile outputs.
        harness.client.create_subscription(
            Image, output_topic(harness), lambda msg: None,
            QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                       reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL))
    error = watch.wait_for(DiagnosticStatus.ERROR, 'incompatible QoS', side, policy)
    assert STARVING not in error.message
    # A reliable camera serves a reliable or best-effort subscription: frames flow.
    camera = harness.client.create_publisher(Image, camera_topic(harness), RELIABLE)
    assert wait_until(lambda: camera.get_subscription_count() >= 1, 30.0)
    with frames_flowing(camera):
        watch.mark()
        watch.wait_for(DiagnosticStatus.OK, 'running at')


def test_incompatible_qos_while_frames_flow_is_still_reported_before_it_clears(start):
    # Held for starvation_timeout_s: 1 s is five diagnostics periods.
    harness = start(starvation_timeout_s=1.0)
    watch = StatusWatch(harness)
    camera = harness.client.create_publisher(Image, camera_topic(harness), RELIABLE)
    assert wait_until(lambda: camera.get_subscription_count() >= 1, 30.0)
    with frames_flowing(camera):
        watch.wait_for(DiagnosticStatus.OK, 'running at')
        # Marked first: the ERROR lasts starvation_timeout_s and must not land before the mark.
        watch.mark()
        harness.client.create_subscription(
            Image, output_topic(harness), lambda msg: None,
            QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                       reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL))
        watch.wait_for(DiagnosticStatus.ERROR, 'incompatible QoS', 'output publisher',
                       'DURABILITY')
        watch.mark()
        watch.wait_for(DiagnosticStatus.OK, 'running at')
