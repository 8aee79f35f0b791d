"""ModelWorker without ROS: a real ONNX Runtime model, a recording publish function.

The worker's promise: each frame is decoded and preprocessed by the thread that submits it,
results are published in frame order with their own header, every received frame is
accounted for, publishing one frame overlaps inferring the next when an input waits (and
happens on the inference thread when none does), and the handoff between the two never
queues or drops a result.
"""

from dataclasses import replace
import threading
import time
from types import SimpleNamespace

from node_harness import wait_until
import numpy as np
import pytest
from sealed_models import make_sealed_onnx

from gps_denied_inference.node import model_worker
from gps_denied_inference.node.inference_core import InferenceCore
from gps_denied_inference.node.model_stats import ModelStats
from gps_denied_inference.node.model_worker import Frame, ModelWorker
from gps_denied_inference.node.parameters import node_config_from_values

WAIT_S = 30.0


@pytest.fixture
def loaded(tmp_path):
    """The tiny model (`image` 1x1x16x16 -> `doubled`), configured and activated."""
    path = make_sealed_onnx(tmp_path, 'tiny.onnx', height=16, width=16)
    core = InferenceCore(node_config_from_values({
        'models': ['tiny'], 'tiny.engine_path': str(path), 'tiny.input_topic': '/camera',
        'tiny.runtime': 'onnxruntime'}))
    [model] = core.configure()
    core.activate()
    yield model
    core.cleanup()


def frame(index, value=None):
    """A 16x16 mono8 frame filled with `value` (default: its index), header frame_id f<index>."""
    pixels = np.full((16, 16), index if value is None else value, dtype=np.uint8)
    return Frame(header=SimpleNamespace(frame_id=f'f{index}'), encoding='mono8', height=16,
                 width=16, step=16, is_bigendian=0, data=pixels.tobytes(), received_at=0.0)


class Recorder:
    """A publish function recording (frame_id, first output value); it can be held.

    `entered` records each frame_id as its publish starts (before any hold), `threads`, per
    published frame, the name of the thread that published it.
    """

    def __init__(self):
        self.entered = []
        self.published = []
        self.threads = []
        self.release = threading.Event()
        self.release.set()
        self.fail_on = None

    def __call__(self, header, outputs, nonfinite):
        self.entered.append(header.frame_id)
        self.release.wait(WAIT_S)
        if header.frame_id == self.fail_on:
            raise RuntimeError('publisher is gone')
        self.published.append((header.frame_id, float(outputs['doubled'].flat[0])))
        self.threads.append(threading.current_thread().name)


class GatedRuntime:
    """The real runtime; infer records the frame value it started, and can be held.

    While `release` is clear every call waits; hold(v) holds only frames of pixel value v,
    until let_go(v).
    """

    def __init__(self, inner):
        self._inner = inner
        self.started = []
        self.release = threading.Event()
        self.release.set()
        self._holds = {}

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def hold(self, *values):
        for value in values:
            self._holds[value] = threading.Event()

    def let_go(self, value):
        self._holds[value].set()

    def infer(self, handle, inputs):
        value = float(inputs['image'].flat[0])
        self.started.append(value)
        self.release.wait(WAIT_S)
        held = self._holds.get(round(value * 255))
        if held is not None:
            held.wait(WAIT_S)
        return self._inner.infer(handle, inputs)


def gated(model):
    """Put a GatedRuntime around the model's runtime and return it."""
    runtime = GatedRuntime(model.runtime)
    model.runtime = runtime
    return runtime


def start(model, publish, **kwargs):
    stats = ModelStats()
    warnings = []
    worker = ModelWorker(model, stats, publish=publish, warn=warnings.append, **kwargs)
    worker.start()
    return worker, stats, warnings


def start_with_frame_1_held_in_publishing(loaded, *held_frames):
    """Frame 1 handed to the publishing thread (held there), frame 2 submitted.

    Frame 2 is submitted while frame 1 infers, so an input waits when frame 1's inference
    ends: the worker hands frame 1 off and goes on to frame 2. Inferences of `held_frames`
    are held until let go.
    """
    runtime = gated(loaded)
    runtime.hold(1, *held_frames)
    recorder = Recorder()
    recorder.release.clear()
    worker, stats, _ = start(loaded, recorder)
    worker.submit(frame(1))
    assert wait_until(lambda: len(runtime.started) == 1, WAIT_S)
    worker.submit(frame(2))
    runtime.let_go(1)
    return runtime, recorder, worker, stats


def test_each_frame_is_published_in_order_with_its_own_header_and_pixels(loaded):
    recorder = Recorder()
    worker, stats, warnings = start(loaded, recorder)
    try:
        for index in range(1, 21):
            worker.submit(frame(index))
            assert wait_until(lambda i=index: len(recorder.published) == i, WAIT_S)
        assert recorder.published == [(f'f{i}', pytest.approx(2 * i / 255)) for i in
                                       range(1, 21)]
        assert wait_until(lambda: stats.snapshot().processed == 20, WAIT_S)
        assert (stats.snapshot().received, stats.snapshot().dropped) == (20, 0)
        assert warnings == []
    finally:
        assert worker.stop()


def test_with_no_input_waiting_the_inference_thread_publishes_the_result_itself(loaded):
    recorder = Recorder()
    worker, stats, _ = start(loaded, recorder)
    try:
        for index in (1, 2):
            worker.submit(frame(index))
            assert wait_until(lambda i=index: len(recorder.published) == i, WAIT_S)
        assert recorder.threads == ['worker-tiny', 'worker-tiny']
    finally:
        assert worker.stop()


def test_publishing_a_frame_overlaps_inferring_the_next(loaded):
    """While frame 1's publish is held, frame 2's inference runs (it would deadlock serially)."""
    runtime, recorder, worker, stats = start_with_frame_1_held_in_publishing(loaded)
    try:
        # Frame 1 is being published (held); frame 2 must reach the model meanwhile.
        assert wait_until(lambda: len(runtime.started) == 2, WAIT_S), (
            'inference waited for publishing')
        # Frame 2's inference ends with nothing waiting: the worker publishes it, but only
        # once frame 1 is out. Give a wrong order the time to show.
        time.sleep(0.2)
        assert recorder.entered == ['f1'] and recorder.published == []
        recorder.release.set()
        assert wait_until(lambda: len(recorder.published) == 2, WAIT_S)
        assert [frame_id for frame_id, _ in recorder.published] == ['f1', 'f2']
        # Frame 1 was handed off; nothing waited after frame 2, so the worker published it,
        # after frame 1.
        assert recorder.threads == ['publisher-tiny', 'worker-tiny']
    finally:
        recorder.release.set()
        assert worker.stop()


def test_a_held_publisher_backs_up_into_the_mailbox_not_a_queue(loaded):
    """At most one result waits in the handoff, then the worker stops taking inputs.

    Newer frames overwrite each other in the mailbox meanwhile, each counted as dropped.
    """
    runtime, recorder, worker, stats = start_with_frame_1_held_in_publishing(loaded, 2, 9)
    try:
        assert wait_until(lambda: len(runtime.started) == 2, WAIT_S)
        for index in range(3, 10):
            worker.submit(frame(index))
        assert stats.snapshot().dropped == 6
        # Frame 9 waited when frame 2 finished: frame 2 goes into the handoff's one slot.
        runtime.let_go(2)
        assert wait_until(lambda: len(runtime.started) == 3, WAIT_S)
        worker.submit(frame(10))
        # Frame 10 waits when frame 9 finishes, but the slot still holds frame 2: the worker
        # blocks there instead of queueing, so frames 10..14 are overwritten by 15.
        runtime.let_go(9)
        for index in range(11, 16):
            worker.submit(frame(index))
        assert stats.snapshot().dropped == 11
        assert len(runtime.started) == 3 and recorder.published == []
        recorder.release.set()
        assert wait_until(lambda: len(recorder.published) == 4, WAIT_S)
        assert [frame_id for frame_id, _ in recorder.published] == ['f1', 'f2', 'f9', 'f15']
        assert runtime.started == [pytest.approx(i / 255) for i in (1, 2, 9, 15)]
        assert recorder.threads == ['publisher-tiny'] * 3 + ['worker-tiny']
        assert wait_until(lambda: stats.snapshot().processed == 4, WAIT_S)
        snapshot = stats.snapshot()
        assert snapshot.received == snapshot.processed + snapshot.dropped == 15
    finally:
        recorder.release.set()
        assert worker.stop()


def test_an_idle_inference_thread_has_the_input_before_submit_returns(loaded):
    """The handoff: frame 1 is the model's before submit() returns, so frame 2 cannot drop it.

    Without it, the inference thread would still be waiting for the GIL here (this thread
    never gave it up), and frame 1 would still wait in the mailbox.
    """
    runtime = gated(loaded)
    runtime.release.clear()
    recorder = Recorder()
    worker, stats, _ = start(loaded, recorder)
    try:
        assert wait_until(lambda: worker.waiting_for_input, WAIT_S)
        worker.submit(frame(1))
        assert worker.waiting_for_input is False
        for index in range(2, 5):
            worker.submit(frame(index))
        assert (stats.snapshot().received, stats.snapshot().dropped) == (4, 2)
        runtime.release.set()
        assert wait_until(lambda: len(recorder.published) == 2, WAIT_S)
        assert [frame_id for frame_id, _ in recorder.published] == ['f1', 'f4']
    finally:
        runtime.release.set()
        assert worker.stop()


class NumpyRuntime(GatedRuntime):
    """The model's arithmetic (doubled = 2 x image) in numpy, on 256 pixels.

    It never lets go of the GIL, so the inference thread runs from take to publish before
    the submitting thread can resume.
    """

    def infer(self, handle, inputs):
        return {'doubled': inputs['image'] * 2}


def test_a_frame_is_counted_as_received_before_the_model_can_publish_it(loaded):
    """With the handoff the inference thread may publish a frame before submit() returns."""
    loaded.runtime = NumpyRuntime(loaded.runtime)
    stats = ModelStats()
    received_when_published = []
    worker = ModelWorker(loaded, stats, warn=print, publish=lambda header, outputs, nonfinite: (
        received_when_published.append(stats.snapshot().received)))
    worker.start()
    try:
        for index in range(1, 4):
            assert wait_until(lambda: worker.waiting_for_input, WAIT_S)
            worker.submit(frame(index))
            assert wait_until(lambda i=index: len(received_when_published) == i, WAIT_S)
        assert received_when_published == [1, 2, 3]
    finally:
        assert worker.stop()


def test_stop_publishes_the_frame_in_progress_and_counts_the_pending_one(loaded):
    runtime = gated(loaded)
    runtime.release.clear()
    recorder = Recorder()
    worker, stats, _ = start(loaded, recorder)
    worker.submit(frame(1))
    assert wait_until(lambda: len(runtime.started) == 1, WAIT_S)
    worker.submit(frame(2))
    threading.Timer(0.2, runtime.release.set).start()
    assert worker.stop()
    assert [frame_id for frame_id, _ in recorder.published] == ['f1']
    snapshot = stats.snapshot()
    assert (snapshot.received, snapshot.processed, snapshot.dropped) == (2, 1, 1)


def test_stop_after_a_half_failed_start_stops_the_thread_that_did_start(loaded, monkeypatch):
    class NoInferenceThread(threading.Thread):
        """The process is out of threads by the time the inference thread is created."""

        def start(self):
            if self.name.startswith('worker-'):
                raise RuntimeError("can't start new thread")
            super().start()
    monkeypatch.setattr(model_worker.threading, 'Thread', NoInferenceThread)
    worker = ModelWorker(loaded, ModelStats(), publish=Recorder(), warn=lambda _: None)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        worker.start()
    publishing = [t for t in threading.enumerate() if t.name == 'publisher-tiny']
    assert publishing, 'the publishing thread should have started'
    assert worker.stop()
    assert not publishing[0].is_alive()


def test_a_publish_failure_is_counted_and_the_next_frame_is_served(loaded):
    recorder = Recorder()
    recorder.fail_on = 'f2'
    worker, stats, warnings = start(loaded, recorder)
    try:
        for index in (1, 2, 3):
            worker.submit(frame(index))
            assert wait_until(lambda i=index: stats.snapshot().processed
                              + stats.snapshot().failed == i, WAIT_S)
        assert [frame_id for frame_id, _ in recorder.published] == ['f1', 'f3']
        snapshot = stats.snapshot()
        assert (snapshot.processed, snapshot.failed) == (2, 1)
        assert any('fault while publishing' in w and 'publisher is gone' in w for w in warnings)
    finally:
        assert worker.stop()


class SlowRuntime(GatedRuntime):
    """The real runtime, at least `seconds` per infer call."""

    def __init__(self, inner, seconds):
        super().__init__(inner)
        self.seconds = seconds

    def infer(self, handle, inputs):
        time.sleep(self.seconds)
        return super().infer(handle, inputs)


def test_inference_and_the_nodes_own_time_are_reported_apart(loaded):
    """A 50 ms model behind a 30 ms publisher: inference >= 50, node overhead >= 30 per frame."""
    loaded.runtime = SlowRuntime(loaded.runtime, 0.05)

    def slow_publish(header, outputs, nonfinite):
        time.sleep(0.03)

    worker, stats, _ = start(loaded, slow_publish)
    try:
        for index in range(1, 4):
            worker.submit(replace(frame(index), received_at=time.monotonic()))
            assert wait_until(lambda i=index: stats.snapshot().processed == i, WAIT_S)
        snapshot = stats.snapshot()
        assert snapshot.inference_p50_ms >= 50.0
        assert snapshot.node_overhead_p50_ms >= 30.0
        assert snapshot.latency_p50_ms >= snapshot.inference_p50_ms + 30.0
    finally:
        assert worker.stop()


def test_the_submitting_thread_prepares_the_input_while_the_model_is_busy(loaded, monkeypatch):
    """With frame 1's inference held, submit(frame 2) returns with frame 2 preprocessed."""
    prepared_on = []
    real_preprocess = model_worker.preprocess

    def recording_preprocess(image, contract, plan):
        prepared_on.append(threading.current_thread())
        return real_preprocess(image, contract, plan)

    monkeypatch.setattr(model_worker, 'preprocess', recording_preprocess)
    runtime = gated(loaded)
    runtime.release.clear()
    recorder = Recorder()
    worker, stats, warnings = start(loaded, recorder)
    try:
        worker.submit(frame(1))
        assert wait_until(lambda: len(runtime.started) == 1, WAIT_S)
        worker.submit(frame(2))
        assert prepared_on == [threading.current_thread()] * 2
        runtime.release.set()
        assert wait_until(lambda: len(recorder.published) == 2, WAIT_S)
        assert recorder.published == [('f1', pytest.approx(2 / 255)),
                                      ('f2', pytest.approx(4 / 255))]
        assert warnings == []
    finally:
        runtime.release.set()
        assert worker.stop()


def test_a_rejected_frame_is_counted_before_submit_returns_and_never_reaches_the_model(loaded):
    runtime = gated(loaded)
    recorder = Recorder()
    worker, stats, warnings = start(loaded, recorder)
    try:
        worker.submit(replace(frame(1), data=b'short'))
        snapshot = stats.snapshot()
        assert (snapshot.received, snapshot.rejected, snapshot.rejected_by_reason) == (
            1, 1, {'data_length': 1})
        assert len(warnings) == 1 and 'rejected input frame' in warnings[0]
        assert 'data is short' in warnings[0]
        worker.submit(frame(2))
        assert wait_until(lambda: len(recorder.published) == 1, WAIT_S)
        assert runtime.started == [pytest.approx(2 / 255)]
        assert recorder.published == [('f2', pytest.approx(4 / 255))]
    finally:
        assert worker.stop()


def test_a_preprocessing_fault_is_counted_and_does_not_reach_the_caller(loaded, monkeypatch):
    real_preprocess = model_worker.preprocess

    def failing_on_value_3(image, contract, plan):
        if int(image.pixels[0, 0]) == 3:
            raise MemoryError('no room for the input tensor')
        return real_preprocess(image, contract, plan)

    monkeypatch.setattr(model_worker, 'preprocess', failing_on_value_3)
    recorder = Recorder()
    worker, stats, warnings = start(loaded, recorder)
    try:
        for index in (3, 4):
            worker.submit(frame(index))
        assert wait_until(lambda: len(recorder.published) == 1, WAIT_S)
        assert recorder.published == [('f4', pytest.approx(8 / 255))]
        snapshot = stats.snapshot()
        assert (snapshot.received, snapshot.failed) == (2, 1)
        assert 'MemoryError: no room for the input tensor' in snapshot.last_error
        assert any('preprocessing failed, frame dropped' in w for w in warnings)
    finally:
        assert worker.stop()


def test_each_frame_publishes_the_resize_it_went_through_just_before_its_outputs(loaded):
    events = []
    recorder = Recorder()

    def publish(header, outputs, nonfinite):
        events.append(('outputs', header.frame_id))
        recorder(header, outputs, nonfinite)

    def geometry(header, plan):
        events.append(('geometry', header.frame_id, plan.src_width, plan.src_height,
                       plan.scale_x, plan.scale_y))
    worker, stats, warnings = start(loaded, publish, publish_geometry=geometry)
    try:
        for index, (width, height) in enumerate([(16, 16), (32, 8), (8, 64)], start=1):
            pixels = np.full((height, width), index, dtype=np.uint8)
            worker.submit(Frame(header=SimpleNamespace(frame_id=f'f{index}'), encoding='mono8',
                                height=height, width=width, step=width, is_bigendian=0,
                                data=pixels.tobytes(), received_at=0.0))
            assert wait_until(lambda i=index: len(recorder.published) == i, WAIT_S)
        assert events == [('geometry', 'f1', 16, 16, 1.0, 1.0), ('outputs', 'f1'),
                          ('geometry', 'f2', 32, 8, 0.5, 2.0), ('outputs', 'f2'),
                          ('geometry', 'f3', 8, 64, 2.0, 0.25), ('outputs', 'f3')]
        assert warnings == []
    finally:
        assert worker.stop()
