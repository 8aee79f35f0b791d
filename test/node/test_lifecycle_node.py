"""The lifecycle node with real rclpy, real Fast DDS and real ONNX Runtime sessions."""

import os
import subprocess
import sys
import time

from diagnostic_msgs.msg import DiagnosticStatus
from node_harness import model_parameters, mono8, wait_until
import numpy as np
import onnxruntime
import pytest
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.task import Future
from sealed_models import make_sealed_onnx

from gps_denied_inference.errors import InferenceError
from gps_denied_inference.node import lifecycle_node as node_module
from gps_denied_inference.runtimes.protocol import build_inference_runtime
from gps_denied_inference.spin_thread import SpinThread

CAMERA = '/camera/image_raw'


def _frames(count, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (16, 16), dtype=np.uint8) for _ in range(count)]


def _stats(harness, model_name='tiny'):
    return harness.node._stats[model_name].snapshot()


def test_full_lifecycle_outputs_equal_onnxruntime_on_the_same_tensor(start, model):
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(model))})
    topic = harness.subscribe('tiny', 'doubled')
    assert harness.lifecycle.change('configure')
    assert harness.lifecycle.state() == 'inactive'
    assert harness.lifecycle.change('activate')
    assert harness.lifecycle.state() == 'active'
    assert harness.wait_for_subscription(CAMERA)
    reference = onnxruntime.InferenceSession(str(model), providers=['CPUExecutionProvider'])
    frames = _frames(5)
    for i, pixels in enumerate(frames):
        harness.publish(CAMERA, mono8(pixels, frame_id=f'cam{i}', stamp_ns=1_000_000_000 + i))
        assert wait_until(lambda n=i: len(harness.received(topic)) > n, 30.0)
    outputs = harness.received(topic)
    for i, (pixels, msg) in enumerate(zip(frames, outputs)):
        assert msg.header.frame_id == f'cam{i}'
        assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1, i)
        assert (msg.height, msg.width, msg.encoding) == (16, 16, '32FC1')
        expected = reference.run(None, {'image': (pixels.astype(np.float32) / 255.0)[None, None]})
        got = np.frombuffer(bytes(msg.data), dtype=np.float32).reshape(16, 16)
        np.testing.assert_array_equal(got, expected[0][0, 0])
    core = harness.node._core
    assert harness.lifecycle.change('deactivate')
    assert harness.lifecycle.state() == 'inactive'
    assert not core.budget.is_empty()
    assert harness.lifecycle.change('cleanup')
    assert core.budget.is_empty() and harness.node._core is None
    assert harness.lifecycle.change('shutdown')
    assert harness.lifecycle.state() == 'finalized'
    assert harness.node.finalized.done()


def test_tampered_model_fails_configure_and_node_keeps_answering(start, model):
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(model))})
    assert not harness.lifecycle.change('configure')
    assert harness.lifecycle.state() == 'unconfigured'
    assert harness.node._core is None


def test_bad_parameter_fails_configure_without_crashing(start, model):
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(model)),
                     'gpu_memory_budget_bytes': -5})
    assert not harness.lifecycle.change('configure')
    assert harness.lifecycle.state() == 'unconfigured'


def test_budget_below_need_fails_activate_and_allocates_nothing(start, model):
    # weights (a 4-byte initializer) fit; the I/O buffers (2 x 1 KiB) do not.
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(model)),
                     'host_memory_budget_bytes': 512})
    assert harness.lifecycle.change('configure')
    core = harness.node._core
    before = dict(core.budget.host.reservations())
    assert not harness.lifecycle.change('activate')
    assert harness.lifecycle.state() == 'inactive'
    assert core.budget.host.reservations() == before
    assert not any(m.prepared for m in core.models)
    assert harness.lifecycle.change('cleanup')
    assert core.budget.is_empty()


def test_two_models_share_one_budget(start, tmp_path):
    a = make_sealed_onnx(tmp_path, 'a.onnx')
    b = make_sealed_onnx(tmp_path, 'b.onnx')
    parameters = {'models': ['a', 'b'], **model_parameters('a', str(a)),
                  **model_parameters('b', str(b), topic='/camera2/image_raw')}
    probe = start(dict(parameters), node_name='probe')
    assert probe.lifecycle.change('configure') and probe.lifecycle.change('activate')
    need = probe.node._core.budget.host.resident_bytes
    assert need > 0
    probe.lifecycle.change('deactivate')
    probe.lifecycle.change('cleanup')
    # Enough for everything of one model and the weights of the other, not for both active.
    tight = start({**parameters, 'host_memory_budget_bytes': need - 1}, node_name='tight')
    assert tight.lifecycle.change('configure')
    assert not tight.lifecycle.change('activate')
    exact = start({**parameters, 'host_memory_budget_bytes': need}, node_name='exact')
    assert exact.lifecycle.change('configure') and exact.lifecycle.change('activate')


def test_autostart_configures_and_activates(start, model):
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(model)),
                     'autostart': True})
    assert wait_until(lambda: harness.lifecycle.state() == 'active', 30.0)


class _SlowRuntime:
    """A real ONNX Runtime strategy whose infer is slower than the camera (or fails)."""

    def __init__(self, inner, delay_s=0.0, fail=False):
        self._inner = inner
        self.delay_s = delay_s
        self.fail = fail

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def infer(self, handle, inputs):
        time.sleep(self.delay_s)
        if self.fail:
            raise InferenceError('injected fault')
        return self._inner.infer(handle, inputs)


def test_burst_faster_than_the_model_is_dropped_not_queued(start, model):
    delay_s = 0.5

    def slow_factory(label, **kwargs):
        return _SlowRuntime(build_inference_runtime(label, **kwargs), delay_s=delay_s)
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(model))},
                    runtime_factory=slow_factory)
    topic = harness.subscribe('tiny', 'doubled')
    assert harness.lifecycle.change('configure') and harness.lifecycle.change('activate')
    assert harness.wait_for_subscription(CAMERA)
    started = time.monotonic()
    for i, pixels in enumerate(_frames(30)):
        harness.publish(CAMERA, mono8(pixels, frame_id=f'f{i}'))
        time.sleep(0.01)
    # The newest frame always wins: the last frame published is the last one processed.
    assert wait_until(lambda: harness.received(topic)
                      and harness.received(topic)[-1].header.frame_id == 'f29', 30.0)
    assert wait_until(lambda: _stats(harness).processed == len(harness.received(topic)), 30.0)
    stats = _stats(harness)
    # The burst as the node saw it: from before the first publish to the last frame's arrival
    # (its own monotonic clock). Measured at the node, because delivery lags publishing: on a
    # loaded machine the last frames arrive well after the test thread published them.
    burst_s = time.monotonic() - stats.last_frame_age_s - started
    # Keep-last-1 DDS history may discard some frames before the callback; every frame the
    # node did receive was either processed or dropped (overwritten in the mailbox).
    assert stats.processed + stats.dropped == stats.received
    # A queue serves every received frame and drops none. The mailbox serves at most the
    # frames the model (delay_s each, at least) can start while frames arrive,
    # int(burst_s / delay_s) + 1, plus the newest waiting when the last arrived; the rest of
    # what arrived is dropped. The model is slow enough that even a burst stretched tenfold
    # by a loaded machine outruns it.
    served_at_most = int(burst_s / delay_s) + 2
    assert stats.dropped > 0, (stats, burst_s)
    assert stats.processed <= served_at_most, (stats, burst_s)
    assert stats.dropped >= stats.received - served_at_most, (stats, burst_s)


def test_rejected_inputs_are_counted_and_the_next_good_frame_is_served(start, model):
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(model))})
    topic = harness.subscribe('tiny', 'doubled')
    assert harness.lifecycle.change('configure') and harness.lifecycle.change('activate')
    assert harness.wait_for_subscription(CAMERA)
    good = _frames(1)[0]
    bad = [mono8(good), mono8(good), mono8(good), mono8(good)]
    bad[0].encoding = 'yuv422'
    bad[1].data = bytes(100)
    bad[2].height = 0
    bad[2].data = b''
    bad[3].height, bad[3].width, bad[3].step = 100000, 100000, 100000
    for i, msg in enumerate(bad):
        harness.publish(CAMERA, msg)
        assert wait_until(lambda n=i: _stats(harness).rejected == n + 1, 30.0)
    harness.publish(CAMERA, mono8(good, frame_id='good'))
    assert wait_until(lambda: len(harness.received(topic)) == 1, 30.0)
    assert harness.received(topic)[0].header.frame_id == 'good'
    assert harness.lifecycle.state() == 'active'
    assert sum(_stats(harness).rejected_by_reason.values()) == 4


def test_diagnostics_report_model_memory_thermal_and_lifecycle(start, model):
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(model)),
                     'diagnostics_period_s': 0.2, 'thermal.root': '/nonexistent'})
    assert harness.lifecycle.change('configure') and harness.lifecycle.change('activate')
    assert wait_until(lambda: any(s.name.endswith('model tiny') and s.level == DiagnosticStatus.OK
                                  for a in harness.diagnostics for s in a.status), 30.0)
    last = harness.diagnostics[-1]
    by_name = {s.name.split(': ', 1)[1]: s for s in last.status}
    assert {'lifecycle', 'thermal', 'model tiny', 'memory'} <= set(by_name)
    assert by_name['thermal'].level == DiagnosticStatus.STALE
    assert 'unavailable' in by_name['thermal'].message
    values = {kv.key: kv.value for kv in by_name['model tiny'].values}
    assert values['runtime'].startswith('onnxruntime')
    assert values['engine_sha256'] == harness.node._core.models[0].manifest.artifact_sha256[:12]
    memory = {kv.key: kv.value for kv in by_name['memory'].values}
    assert int(memory['host_resident_bytes']) > 0


def test_params_file_loads_in_a_separate_process(tmp_path, ros_context):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from gps_denied_inference.demo.lifecycle_client import LifecycleClient
    model_path = make_sealed_onnx(tmp_path, 'tiny.onnx')
    params = tmp_path / 'params.yaml'
    params.write_text(
        'proc_node:\n  ros__parameters:\n    models: ["tiny"]\n'
        f'    model_dir: "{tmp_path}"\n    tiny.runtime: "onnxruntime"\n'
        f'    tiny.engine_path: "{model_path.name}"\n    tiny.input_topic: "/cam"\n')
    process = subprocess.Popen(
        [sys.executable, '-m', 'gps_denied_inference.node', '--ros-args', '-r',
         '__node:=proc_node', '--params-file', str(params)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ))
    client = rclpy.create_node('proc_client', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(client)
    spinner = SpinThread(executor).start()
    try:
        lifecycle = LifecycleClient(client, '/proc_node')
        assert lifecycle.wait_for_services(30.0)
        assert lifecycle.change('configure')
        assert lifecycle.change('shutdown')
        assert process.wait(30.0) == 0
    finally:
        if process.poll() is None:
            process.kill()
        spinner.stop()
        client.destroy_node()
    output = process.stdout.read().decode()
    assert 'configured tiny' in output


def test_critical_thermal_level_throttles_and_the_diagnostics_say_so(start, model, tmp_path):
    from sysfs import make_zone, set_temp
    root = tmp_path / 'thermal'
    make_zone(root, 0, 'gpu-thermal', 99000)
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(model)),
                     'thermal.root': str(root), 'thermal.throttle': True,
                     'thermal.warn_c': 85.0, 'thermal.critical_c': 95.0,
                     'diagnostics_period_s': 0.2})
    assert harness.lifecycle.change('configure') and harness.lifecycle.change('activate')

    def latest(name):
        for array in reversed(harness.diagnostics):
            for s in array.status:
                if s.name.endswith(name):
                    return s
        return None

    assert wait_until(lambda: latest('thermal') is not None
                      and latest('thermal').level == DiagnosticStatus.ERROR, 30.0)
    assert 'halved' in latest('thermal').message
    assert wait_until(lambda: {kv.key: kv.value for kv in latest('model tiny').values}
                      .get('throttled') == 'true', 30.0)
    # A waited check: the reading goes stale after three polls of a held-up thermal thread.
    assert wait_until(harness.node._is_throttled, 30.0)
    set_temp(root, 0, 40000)
    assert wait_until(lambda: latest('thermal').level == DiagnosticStatus.OK, 30.0)
    assert wait_until(lambda: not harness.node._is_throttled(), 30.0)


class _ShutdownRacingExecutor(SingleThreadedExecutor):
    """A signal's shutdown landing after the context check: building the wait set fails."""

    def spin_until_future_complete(self, future, timeout_sec=None):
        rclpy.shutdown(context=self.context)
        _rclpy.WaitSet(0, 0, 0, 0, 0, 0, self.context.handle)


class _FailingExecutor(SingleThreadedExecutor):
    def spin_until_future_complete(self, future, timeout_sec=None):
        raise _rclpy.RCLError('failed to take message')


def test_a_signal_shutdown_racing_the_executor_is_an_external_shutdown(ros_context):
    with pytest.raises(ExternalShutdownException):
        node_module._spin(_ShutdownRacingExecutor(context=ros_context), Future(), ros_context)


def test_an_rcl_error_while_the_context_is_valid_is_a_fault(ros_context):
    with pytest.raises(_rclpy.RCLError, match='failed to take'):
        node_module._spin(_FailingExecutor(context=ros_context), Future(), ros_context)


def test_a_misspelt_parameter_fails_configure_and_names_the_closest(start, model):
    digest = 'ab' * 32
    harness = start({'models': ['tiny'], **model_parameters('tiny', str(model)),
                     'tiny.sha265': digest})
    assert not harness.lifecycle.change('configure')
    assert harness.lifecycle.state() == 'unconfigured'
    assert harness.node._config is None


def test_destroying_an_active_node_releases_engines_threads_and_thermal(ros_context, model):
    from node_harness import NodeHarness

    harness = NodeHarness(ros_context, {'models': ['tiny'], **model_parameters('tiny',
                                                                                str(model))},
                          node_name='destroyed_active')
    try:
        assert harness.lifecycle.change('configure') and harness.lifecycle.change('activate')
        node = harness.node
        core, thermal = node._core, node._thermal
        threads = [t for w in node._workers.values() for t in (w._thread, w._publishing)]
        threads.append(thermal._thread)
        assert all(t.is_alive() for t in threads) and not core.budget.is_empty()
        harness.spinner.stop()
        node.destroy_node()
        assert not any(t.is_alive() for t in threads)
        assert core.budget.is_empty() and node._core is None
    finally:
        harness.client.destroy_node()
