"""Shutdown of the node process while it is active and frames flow.

SIGINT, SIGTERM and the shutdown transition all exit 0 promptly, release the engines, and
leave no rclpy teardown abort ("terminate called without an active exception") on stderr.
The teardown starts only once rclpy's signal thread is gone (docs/shutdown.md), and a native
crash leaves every thread's Python stack on stderr (faulthandler).
"""

import itertools
from pathlib import Path
import signal
import subprocess
import sys
import time

from node_harness import mono8, wait_until
import numpy as np
import pytest
from reliability_support import NodeProcess, ProcessClient
from sealed_models import make_sealed_onnx

CAMERA = '/shutdown/camera'
_NUMBERS = itertools.count()


@pytest.fixture
def running(ros_context, tmp_path):
    model = make_sealed_onnx(tmp_path, 'tiny.onnx')
    name = f'shutdown_node_{next(_NUMBERS)}'
    node = NodeProcess(tmp_path, name, {
        'models': ['tiny'], 'tiny.engine_path': str(model), 'tiny.input_topic': CAMERA,
        'tiny.runtime': 'onnxruntime', 'autostart': True}).start()
    client = ProcessClient(ros_context, f'/{name}', CAMERA)
    client.collect(f'/{name}/tiny/doubled', lambda msg: msg.header.frame_id)
    try:
        yield node, client
    finally:
        client.close()
        node.kill()


def _stream_until(node, client, stop):
    """Publish frames at 30 Hz until `stop()`; returns how many were published."""
    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    count = 0
    while not stop() and node.process.poll() is None:
        client.camera.publish(mono8(pixels, frame_id=f'f{count}'))
        count += 1
        time.sleep(1 / 30)
    return count


@pytest.mark.parametrize('how', ['SIGINT', 'SIGTERM', 'shutdown transition'])
def test_shutdown_while_processing_exits_0_and_releases_the_engines(running, how):
    node, client = running
    assert client.lifecycle.wait_for_services(30.0)
    assert wait_until(lambda: client.lifecycle.state() == 'active', 30.0)
    assert client.wait_for_camera_subscriber(30.0)
    streaming_since = time.monotonic()
    _stream_until(node, client, lambda: len(client.collected()) >= 10
                  or time.monotonic() - streaming_since > 30.0)
    assert len(client.collected()) >= 10, \
        f'{len(client.collected())} outputs in 30 s of frames (node exit {node.process.poll()})'
    if how == 'shutdown transition':
        assert client.lifecycle.change('shutdown')
    else:
        node.process.send_signal(getattr(signal, how))
    sent_at = time.monotonic()
    # Frames keep coming while the node exits: the camera does not know.
    _stream_until(node, client, lambda: time.monotonic() - sent_at > 10.0)
    assert node.process.wait(10.0) == 0
    stdout, stderr = node.output()
    assert 'terminate called' not in stdout + stderr
    assert 'released engines (tiny); memory ledger GPU 0 B, host 0 B' in stdout + stderr
    assert 'Traceback' not in stdout + stderr
    assert 'Failed to publish log message' not in stderr, stderr


def test_a_native_crash_leaves_every_threads_python_stack_on_stderr(running):
    node, client = running
    assert client.lifecycle.wait_for_services(30.0)
    assert wait_until(lambda: client.lifecycle.state() == 'active', 30.0)
    node.process.send_signal(signal.SIGSEGV)
    # faulthandler reports, then chains to the default action: the process still dies of it.
    assert node.process.wait(30.0) == -signal.SIGSEGV
    _, stderr = node.output()
    assert 'Fatal Python error: Segmentation fault' in stderr, stderr
    assert 'in _spin' in stderr and 'in main' in stderr, stderr
    assert 'model_worker.py' in stderr and 'thermal.py' in stderr, stderr


# Runs the node's main() with the executor's shutdown recording whether rclpy's signal thread
# still exists and rclpy's signal handlers are still installed when the teardown starts.
_ORDERING_PROBE = """
import os, sys
sys.path.insert(0, sys.argv[1])
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from shutdown_stress import rclpy_signal_thread
from gps_denied_inference.node import lifecycle_node

spin, shutdown, found = lifecycle_node._spin, lifecycle_node.SingleThreadedExecutor.shutdown, []


def recording_spin(*args):
    found.append(rclpy_signal_thread(os.getpid()))
    print(f'SPINNING signal thread {found[0]}', flush=True)
    return spin(*args)


def recording_shutdown(self, *args, **kwargs):
    alive = found[0] is not None and os.path.exists(f'/proc/self/task/{found[0]}')
    handlers = _rclpy.get_current_signal_handlers_options().name
    print(f'TEARDOWN signal thread alive={alive} handlers={handlers}', flush=True)
    return shutdown(self, *args, **kwargs)


lifecycle_node._spin = recording_spin
lifecycle_node.SingleThreadedExecutor.shutdown = recording_shutdown
raise SystemExit(lifecycle_node.main(sys.argv[2:]))
"""


@pytest.mark.parametrize('how', ['SIGINT', 'SIGTERM'])
def test_the_teardown_starts_after_rclpys_signal_thread_is_gone(how):
    """What makes the exit safe: no teardown step overlaps rclpy's signal thread."""
    name = f'ordering_node_{next(_NUMBERS)}'
    process = subprocess.Popen(
        [sys.executable, '-c', _ORDERING_PROBE, str(Path(__file__).resolve().parent),
         '--ros-args', '-r', f'__node:={name}'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        spinning = next((line for line in process.stdout if line.startswith('SPINNING')), '')
        assert spinning.split()[-1] != 'None', spinning
        process.send_signal(getattr(signal, how))
        output, _ = process.communicate(timeout=30.0)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, output
    assert 'TEARDOWN signal thread alive=False handlers=NO' in output, output
    assert 'Traceback' not in output and 'KeyboardInterrupt' not in output, output
