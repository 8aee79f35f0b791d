"""Shutdown of the node process while it is active and frames flow.

SIGINT, SIGTERM and the shutdown transition all exit 0 promptly, release the engines, and
leave no rclpy teardown abort ("terminate called without an active exception") on stderr.
"""

import itertools
import signal
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
