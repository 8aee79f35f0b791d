"""A model that emits NaN or Inf: published, flagged, reported, and the node keeps running."""

from diagnostic_msgs.msg import DiagnosticStatus
from node_harness import model_parameters, mono8, RELIABLE_QOS, wait_until
import numpy as np
from onnx import helper, TensorProto
import pytest
from reliability_support import footprint, latest_status, make_sealed_graph, status_values
from std_msgs.msg import Header

CAMERA = '/camera/image_raw'
NONFINITE_MODELS = {
    'nan': ('Div', ['image', 'image'], lambda values: np.isnan(values)),
    'inf': ('Reciprocal', ['image'], lambda values: np.isinf(values)),
    'minus_inf': ('Log', ['image'], lambda values: np.isneginf(values)),
}


@pytest.mark.parametrize('kind', list(NONFINITE_MODELS))
def test_nonfinite_output_is_published_flagged_and_reported(start, tmp_path, kind):
    op, inputs, is_bad = NONFINITE_MODELS[kind]
    path = make_sealed_graph(
        tmp_path / f'{kind}.onnx', [helper.make_node(op, inputs, ['value'])],
        [helper.make_tensor_value_info('value', TensorProto.FLOAT, [1, 1, 16, 16])])
    harness = start({'models': ['odd'], **model_parameters('odd', str(path), topic=CAMERA),
                     'diagnostics_period_s': 0.2})
    topic = harness.subscribe('odd', 'value')
    flagged = []
    harness.client.create_subscription(Header, f'/{harness.node_name}/odd/nonfinite_frames',
                                       flagged.append, RELIABLE_QOS)
    assert harness.lifecycle.change('configure') and harness.lifecycle.change('activate')
    assert harness.wait_for_subscription(CAMERA)
    baseline = footprint(harness)
    frames = {'finite-1': np.full((16, 16), 200, np.uint8),
              'has-zeros': np.pad(np.full((14, 14), 100, np.uint8), 1),
              'finite-2': np.full((16, 16), 50, np.uint8)}
    for i, (frame_id, pixels) in enumerate(frames.items()):
        harness.publish(CAMERA, mono8(pixels, frame_id=frame_id))
        assert wait_until(lambda n=i: len(harness.received(topic)) == n + 1, 30.0)
    outputs = harness.received(topic)
    assert [m.header.frame_id for m in outputs] == list(frames)
    bad = [int(is_bad(np.frombuffer(bytes(m.data), np.float32)).sum()) for m in outputs]
    assert bad == [0, 16 * 16 - 14 * 14, 0]
    assert wait_until(lambda: len(flagged) == 1, 30.0)
    assert flagged[0].frame_id == 'has-zeros'
    # The worker counts a frame as processed just after publishing its outputs.
    assert wait_until(lambda: harness.node._stats['odd'].snapshot().processed == 3, 30.0)
    stats = harness.node._stats['odd'].snapshot()
    assert (stats.processed, stats.nonfinite_frames, stats.failed) == (3, 1, 0)
    assert wait_until(lambda: latest_status(harness, 'model odd') is not None
                      and status_values(latest_status(harness, 'model odd'))
                      ['frames_nonfinite'] == '1', 30.0)
    assert harness.lifecycle.state() == 'active'
    assert footprint(harness) == baseline


def test_nonfinite_frame_raises_the_model_to_warn_for_one_period(start, tmp_path):
    path = make_sealed_graph(
        tmp_path / 'nan.onnx', [helper.make_node('Div', ['image', 'image'], ['value'])],
        [helper.make_tensor_value_info('value', TensorProto.FLOAT, [1, 1, 16, 16])])
    harness = start({'models': ['odd'], **model_parameters('odd', str(path), topic=CAMERA),
                     'diagnostics_period_s': 0.2})
    assert harness.lifecycle.change('configure') and harness.lifecycle.change('activate')
    assert harness.wait_for_subscription(CAMERA)

    def shows(status, expected, text):
        return status is not None and status.level == expected and text in status.message
    mark = len(harness.diagnostics)
    harness.publish(CAMERA, mono8(np.zeros((16, 16), np.uint8)))
    # The WARN lasts one period: look in every array since the frame, not only the newest.
    warning = '1 output(s) contained NaN or Inf'
    assert wait_until(lambda: any(shows(s, DiagnosticStatus.WARN, warning)
                                  for s in harness.statuses_since(mark, 'model odd')), 30.0)
    harness.publish(CAMERA, mono8(np.ones((16, 16), np.uint8)))
    assert wait_until(lambda: shows(latest_status(harness, 'model odd'), DiagnosticStatus.OK,
                                    'running'), 30.0)
