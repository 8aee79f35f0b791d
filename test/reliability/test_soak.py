"""Soak: camera-rate frames through the node running as its own process, as in flight.

Asserts: no RSS growth of the node process beyond 5 MiB after warm-up; every processed
frame's output published with its own header (and its own pixels: frame i is filled with
one value, so the output says which frame it came from); every received frame accounted for
(received == processed + dropped + rejected + failed), and the drops are the mailbox's.
Writes the figures to build/reliability/soak[_full].txt.
"""

import os
from pathlib import Path
import time

from node_harness import wait_until
import numpy as np
import pytest
from reliability_support import NodeProcess, ProcessClient
from sealed_models import make_sealed_onnx
from sensor_msgs.msg import Image

CAMERA = '/soak/camera'
MIB = 1 << 20
HEIGHT, WIDTH = 480, 640
FIGURES = Path(__file__).resolve().parents[2] / 'build' / 'reliability'


def _frame(index):
    msg = Image(height=HEIGHT, width=WIDTH, encoding='mono8', is_bigendian=0, step=WIDTH)
    msg.data = bytes([index % 251]) * (HEIGHT * WIDTH)
    msg.header.frame_id = f'f{index}'
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + index // 30, (index % 30) * 1000
    return msg


def _summary(msg):
    """What the check needs of one output: its header and its first value."""
    first = float(np.frombuffer(bytes(msg.data[:4]), dtype='<f4')[0])
    return (msg.header.frame_id, msg.header.stamp.sec, msg.header.stamp.nanosec,
            msg.height, msg.width, first)


@pytest.mark.slow
def test_soak_at_camera_rate(ros_context, tmp_path, sizing):
    model = make_sealed_onnx(tmp_path, 'tiny.onnx', height=120, width=160)
    node = NodeProcess(tmp_path, 'soak_node', {
        'models': ['tiny'], 'tiny.engine_path': str(model), 'tiny.input_topic': CAMERA,
        'tiny.runtime': 'onnxruntime', 'diagnostics_period_s': 0.5}).start()
    client = ProcessClient(ros_context, '/soak_node', CAMERA)
    try:
        client.collect('/soak_node/tiny/doubled', _summary)
        assert client.lifecycle.wait_for_services(30.0)
        assert client.lifecycle.change('configure') and client.lifecycle.change('activate')
        assert client.wait_for_camera_subscriber(30.0)
        figures = _stream(node, client, sizing)
        streamed = client.diagnostics_mark()
        assert wait_until(lambda: _settled(client, streamed), 30.0)
        rss_end = node.rss_bytes()
        assert client.lifecycle.change('deactivate')
        final = _final_counters(client)
        assert client.lifecycle.change('cleanup') and client.lifecycle.change('shutdown')
        assert node.process.wait(15.0) == 0
    finally:
        client.close()
        node.kill()
    outputs = client.collected()
    figures.update(rss_end_bytes=rss_end, outputs=len(outputs), **final)
    figures['rss_growth_bytes'] = rss_end - figures['rss_after_warmup_bytes']
    figures['transport_lost'] = figures['published'] - final['received']
    _write(figures, sizing)

    published = figures['published']
    assert final['received'] == (final['processed'] + final['dropped'] + final['rejected']
                                 + final['failed'])
    assert (final['rejected'], final['failed']) == (0, 0)
    # A fast model at camera rate: the mailbox overwrites only when the worker was held up
    # for a frame period (half of one after a skipped slot), which a shared 2-core machine
    # allows now and then (0 to 9 of about 600 with busy loops or another test run beside
    # it; 13 of 585 when the stream still caught up on missed slots back to back). A worker
    # slower than the camera drops about half.
    assert final['dropped'] <= max(3, final['received'] // 20), figures
    # Best effort into a keep-last-5 history: a node process kept off the CPU for 5 frame
    # periods loses frames before its callback (590 of 600 with a busy loop beside the suite).
    assert final['received'] >= published * 0.95, figures
    assert len(outputs) == final['processed']
    indices = [int(frame_id[1:]) for frame_id, *_ in outputs]
    assert indices == sorted(set(indices)) and 0 <= indices[0] and indices[-1] < published
    for index, (_, sec, nanosec, height, width, first) in zip(indices, outputs):
        assert (sec, nanosec) == (1000 + index // 30, (index % 30) * 1000)
        assert (height, width) == (120, 160)
        assert first == pytest.approx(2 * (index % 251) / 255, abs=1e-6)
    assert abs(figures['rss_growth_bytes']) <= 5 * MIB, figures


def _stream(node, client, sizing):
    period = 1 / sizing.soak_rate_hz
    started = time.monotonic()
    rss_after_warmup = None
    samples = []
    slot = 0
    for index in range(sizing.soak_frames):
        # Slots missed while this thread was held up are skipped, not caught up with
        # back-to-back frames (which the node's one-slot mailbox would drop, as a camera never
        # sends them): a frame late by half a period or more waits for the next slot, so
        # frames are never less than half a period apart.
        slot = max(slot, round((time.monotonic() - started) / period))
        delay = started + slot * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        client.camera.publish(_frame(index))
        slot += 1
        if index + 1 == sizing.soak_warmup_frames:
            rss_after_warmup = node.rss_bytes()
        if (index + 1) % (sizing.soak_frames // 10) == 0:
            samples.append((index + 1, node.rss_bytes()))
    return {'published': sizing.soak_frames, 'rate_hz': sizing.soak_rate_hz,
            'warmup_frames': sizing.soak_warmup_frames,
            'rss_after_warmup_bytes': rss_after_warmup, 'rss_by_frame': samples,
            'stream_s': round(time.monotonic() - started, 1),
            'skipped_slots': slot - sizing.soak_frames,
            'load_average': os.getloadavg()}


def _settled(client, mark):
    """True when the node has processed every frame it received (diagnostics say so).

    Only statuses received after the stream ended count, and the newest two must agree on
    frames_received: frames still in flight when the stream ended have arrived by then.
    """
    history = client.model_values_since('tiny', mark)
    if len(history) < 2:
        return False
    previous, values = history[-2:]
    counts = [int(values[k]) for k in ('frames_received', 'frames_processed', 'frames_dropped',
                                        'frames_rejected', 'frames_failed')]
    return (counts[0] > 0 and values['frames_received'] == previous['frames_received']
            and counts[0] == sum(counts[1:]))


def _final_counters(client):
    """The counters the node reports once inactive (STALE status, values kept)."""
    keys = ('received', 'processed', 'dropped', 'rejected', 'failed', 'nonfinite')
    result = {}

    def final():
        values = client.model_values('tiny')
        if values is None or values.get('frames_received') is None:
            return False
        with client._lock:
            stale = any(s.message == 'not active' for a in client.diagnostics[-2:]
                        for s in a.status if s.name.endswith('model tiny'))
        result.update({k: int(values[f'frames_{k}']) for k in keys})
        return stale
    assert wait_until(final, 30.0)
    return result


def _write(figures, sizing):
    FIGURES.mkdir(parents=True, exist_ok=True)
    path = FIGURES / f'soak{"_full" if sizing.full else ""}.txt'
    path.write_text(''.join(f'{key} {value}\n' for key, value in figures.items()))
