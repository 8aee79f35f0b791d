"""Faults: inside inference, during configure and activate, and in a crashed peer process.

Faults are injected into a real ONNX Runtime strategy (FaultyRuntime) through the node's
runtime factory; crashes are real processes killed with SIGKILL.
"""

import signal
import time

from diagnostic_msgs.msg import DiagnosticStatus
from node_harness import model_parameters, mono8, wait_until
import numpy as np
import pytest
from reliability_support import (
    Faults,
    footprint,
    latest_status,
    read_line,
    settled_footprint,
    start_peer,
    status_values,
)

from gps_denied_inference.errors import EngineLoadError, InferenceError, OutOfMemoryError
from gps_denied_inference.runtimes.protocol import build_inference_runtime

CAMERA = '/camera/image_raw'


@pytest.fixture
def faults():
    return Faults()


def _stats(harness, name='tiny'):
    return harness.node._stats[name].snapshot()


def _active(start, model, faults, **extra):
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(model)),
                     'diagnostics_period_s': 0.2, **extra},
                    runtime_factory=faults.factory(build_inference_runtime))
    harness.topic = harness.subscribe('tiny', 'doubled')
    assert harness.lifecycle.change('configure') and harness.lifecycle.change('activate')
    assert harness.wait_for_subscription(CAMERA)
    return harness


def _send(harness, frame_id, value=1):
    harness.publish(CAMERA, mono8(np.full((16, 16), value, np.uint8), frame_id=frame_id))


def _model_status(harness, level, text=''):
    """The newest model status: for the levels that last (ERROR, OK)."""
    status = latest_status(harness, 'model tiny')
    return status is not None and status.level == level and text in status.message


def _reported_since(harness, mark, level, text='', failed=None):
    """Any model status since `mark` at `level` (a WARN lasts one diagnostics period)."""
    return any(s.level == level and text in s.message
               and (failed is None or status_values(s)['frames_failed'] == str(failed))
               for s in harness.statuses_since(mark, 'model tiny'))


@pytest.mark.parametrize('fault, text', [
    (InferenceError('injected: engine execution failed'), 'inference failed: injected'),
    (RuntimeError('injected: CUDA error 700'), 'RuntimeError: injected: CUDA error 700'),
    (MemoryError('injected: cannot allocate'), 'MemoryError: injected: cannot allocate'),
    (ZeroDivisionError('injected'), 'ZeroDivisionError: injected'),
    (KeyError('injected'), "KeyError: 'injected'"),
], ids=['InferenceError', 'RuntimeError', 'MemoryError', 'ZeroDivisionError', 'KeyError'])
def test_fault_in_inference_drops_that_frame_and_is_reported(start, model, faults, fault, text):
    harness = _active(start, model, faults)
    baseline = footprint(harness)
    faults.on_infer['tiny'] = fault
    mark = len(harness.diagnostics)
    _send(harness, 'faulty')
    assert wait_until(lambda: _stats(harness).failed == 1, 30.0)
    assert text in _stats(harness).last_error
    assert wait_until(lambda: _reported_since(harness, mark, DiagnosticStatus.WARN,
                                              '1 frame(s) failed'), 30.0)
    faults.on_infer.clear()
    _send(harness, 'healthy')
    assert wait_until(lambda: len(harness.received(harness.topic)) == 1, 30.0)
    assert harness.received(harness.topic)[0].header.frame_id == 'healthy'
    # The worker counts a frame as processed just after publishing its outputs.
    assert wait_until(lambda: _stats(harness).processed == 1, 30.0)
    stats = _stats(harness)
    assert (stats.received, stats.processed, stats.failed, stats.consecutive_failures) == \
        (2, 1, 1, 0)
    assert harness.lifecycle.state() == 'active'
    assert footprint(harness) == baseline


@pytest.mark.parametrize('threshold', [1, 3, 5])
def test_persistent_fault_raises_the_model_to_error_and_recovers(start, model, faults,
                                                                 threshold):
    harness = _active(start, model, faults, persistent_fault_frames=threshold)
    faults.on_infer['tiny'] = InferenceError('injected: device lost')
    first = len(harness.diagnostics)
    for i in range(threshold):
        mark = len(harness.diagnostics)
        _send(harness, f'faulty{i}')
        assert wait_until(lambda n=i: _stats(harness).failed == n + 1, 30.0)
        if i == threshold - 2:
            # One frame short of the threshold: a WARN (for one period), never an ERROR.
            assert wait_until(lambda m=mark: _reported_since(
                harness, m, DiagnosticStatus.WARN, 'frame(s) failed', failed=threshold - 1), 30.0)
            assert not _reported_since(harness, first, DiagnosticStatus.ERROR,
                                       'persistent fault')
    assert wait_until(lambda: _model_status(
        harness, DiagnosticStatus.ERROR,
        f'persistent fault: the last {threshold} frames failed: inference failed: injected'),
        30.0)
    assert harness.lifecycle.state() == 'active'
    faults.on_infer.clear()
    _send(harness, 'recovered')
    assert wait_until(lambda: len(harness.received(harness.topic)) == 1, 30.0)
    assert wait_until(lambda: _model_status(harness, DiagnosticStatus.OK), 30.0)
    assert _stats(harness).consecutive_failures == 0


def _two_models(start, tmp_path, faults):
    from sealed_models import make_sealed_onnx
    a = make_sealed_onnx(tmp_path, 'a.onnx')
    b = make_sealed_onnx(tmp_path, 'b.onnx')
    return start({'models': ['a', 'b'], **model_parameters('a', str(a)),
                  **model_parameters('b', str(b), topic='/camera2/image_raw')},
                 runtime_factory=faults.factory(build_inference_runtime))


@pytest.mark.parametrize('fault, outcome', [
    (RuntimeError('injected: loader crashed'), 'configure failed with a fault: RuntimeError'),
    (EngineLoadError('injected: plan rejected'), 'configure refused: injected: plan rejected'),
    (OutOfMemoryError('GPU', 'b:weights', 10, 0, 5), 'configure refused: GPU memory budget'),
], ids=['fault', 'load_refusal', 'out_of_memory'])
def test_failure_loading_the_second_model_releases_the_first(start, tmp_path, faults, capfd,
                                                            fault, outcome):
    harness = _two_models(start, tmp_path, faults)
    before = footprint(harness)
    faults.on_load['b'] = fault
    assert not harness.lifecycle.change('configure')
    assert faults.released == ['a']
    assert settled_footprint(harness, before) == before
    assert outcome in capfd.readouterr().err
    faults.on_load.clear()
    assert harness.lifecycle.change('configure') and harness.lifecycle.change('activate')


def test_fault_during_activate_rolls_back_to_unconfigured_with_nothing_held(start, tmp_path,
                                                                           faults, capfd):
    harness = _two_models(start, tmp_path, faults)
    unconfigured = footprint(harness)
    assert harness.lifecycle.change('configure')
    faults.on_prepare['b'] = RuntimeError('injected: warm-up crashed')
    assert not harness.lifecycle.change('activate')
    # A fault (ERROR) goes through error processing: every engine released, unconfigured.
    assert settled_footprint(harness, unconfigured) == unconfigured
    assert sorted(faults.released) == ['a', 'b']
    assert 'activate failed with a fault: RuntimeError: injected: warm-up crashed' in \
        capfd.readouterr().err
    faults.on_prepare.clear()
    assert harness.lifecycle.change('configure') and harness.lifecycle.change('activate')


def test_refusal_during_activate_stays_inactive_without_workers(start, tmp_path, faults,
                                                                capfd):
    harness = _two_models(start, tmp_path, faults)
    assert harness.lifecycle.change('configure')
    inactive = footprint(harness)
    faults.on_prepare['b'] = OutOfMemoryError('host', 'b:execution', 10, 0, 5)
    assert not harness.lifecycle.change('activate')
    after = footprint(harness)
    assert after.state == inactive.state == 'inactive' and after.configured
    assert (after.worker_threads, after.image_subscriptions) == ((), 0)
    assert after.host_resident_bytes <= harness.node._core.budget.host.budget_bytes
    assert 'activate refused: host memory budget refused' in capfd.readouterr().err
    faults.on_prepare.clear()
    assert harness.lifecycle.change('activate')
    core = harness.node._core
    assert harness.lifecycle.change('deactivate') and harness.lifecycle.change('cleanup')
    assert core.budget.is_empty()


def test_publisher_process_killed_mid_stream_does_not_affect_the_node(start, model, faults):
    harness = _active(start, model, faults)
    camera = start_peer('camera', CAMERA)
    try:
        assert read_line(camera, 'MATCHED', 30.0) is not None
        assert wait_until(lambda: _stats(harness).processed >= 10, 30.0)
        camera.send_signal(signal.SIGKILL)
        assert camera.wait(10.0) == -signal.SIGKILL
    finally:
        if camera.poll() is None:
            camera.kill()
            camera.wait(10.0)
    processed = _stats(harness).processed
    time.sleep(0.2)
    assert harness.lifecycle.state() == 'active'
    assert harness.wait_for_subscription(CAMERA)
    _send(harness, 'after-crash')
    assert wait_until(lambda: any(m.header.frame_id == 'after-crash'
                                  for m in harness.received(harness.topic)), 30.0)
    # The worker counts a frame as processed just after publishing its outputs.
    assert wait_until(lambda: _stats(harness).processed > processed, 30.0)
    stats = _stats(harness)
    assert (stats.failed, stats.rejected) == (0, 0)


def test_lifecycle_client_killed_mid_call_does_not_affect_the_node(start, model, faults):
    # A name of its own: nodes of earlier tests' contexts stay in the graph for a few seconds,
    # and a new process's request to a service name that a stale server shares can be lost.
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(model))},
                    node_name='crash_target',
                    runtime_factory=faults.factory(build_inference_runtime))
    assert harness.lifecycle.change('configure')
    # Far longer than the test thread can be held up between the prepare starting and the
    # SIGKILL: the client must die before the transition ends (no RESULT).
    faults.prepare_delay_s = 10.0
    client = start_peer('lifecycle', '/crash_target', 'activate')
    try:
        assert read_line(client, 'CALLING', 30.0) is not None
        # Killed while the node is inside the activate transition it was asked for.
        assert faults.prepare_started.wait(10.0)
        client.send_signal(signal.SIGKILL)
        assert client.wait(10.0) == -signal.SIGKILL
        assert read_line(client, 'RESULT', 1.0) is None
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(10.0)
    # The node finishes the transition it was asked for and answers a new client.
    assert wait_until(lambda: harness.lifecycle.state() == 'active', 30.0), \
        harness.lifecycle.state()
    assert harness.wait_for_subscription(CAMERA)
    core = harness.node._core
    assert harness.lifecycle.change('deactivate') and harness.lifecycle.change('cleanup')
    assert core.budget.is_empty()
