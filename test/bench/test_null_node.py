"""The null node answers every frame at once: the input's header, the model's real layouts."""

import time

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image

from gps_denied_inference.bench import null_node as bench_null
from gps_denied_inference.bench.ros import CAMERA_QOS, OUTPUT_QOS
from gps_denied_inference.demo.models import write_demo_model
from gps_denied_inference.imaging.output_encoding import image_layout_for
from gps_denied_inference.node.lifecycle_node import input_qos, output_qos
from gps_denied_inference.spin_thread import SpinThread


@pytest.fixture
def spun(ros_context):
    """Nodes on one executor spinning on a thread, all in this test's context."""
    from rclpy.node import Node

    executor = SingleThreadedExecutor(context=ros_context)
    nodes = []

    def make(name):
        nodes.append(Node(name, context=ros_context))
        executor.add_node(nodes[-1])
        return nodes[-1]
    spinner = SpinThread(executor)
    make.start = spinner.start
    yield make
    spinner.stop()
    for node in nodes:
        node.destroy_node()


def wait_until(condition, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_every_frame_is_answered_with_its_header_and_the_models_output_sizes(spun, tmp_path):
    manifest = write_demo_model(tmp_path / 'dense.onnx', height=48, width=64, dense=True)
    null = bench_null.NullNode(spun('null_under_test'), 'dense', manifest, '/null_test/camera')
    client = spun('null_test_client')
    received = {'semi': [], 'desc': []}
    for output, messages in received.items():
        client.create_subscription(Image, f'/null_under_test/dense/{output}', messages.append,
                                   OUTPUT_QOS)
    camera = client.create_publisher(Image, '/null_test/camera', CAMERA_QOS)
    spun.start()
    assert wait_until(lambda: camera.get_subscription_count() > 0
                      and all(p.get_subscription_count() > 0 for p in null.publishers))
    for index in range(3):
        frame = Image(height=48, width=64, encoding='mono8', step=64)
        frame.data = bytes(48 * 64)
        frame.header.frame_id = f'camera/{index}'
        frame.header.stamp.sec = 1000 + index
        camera.publish(frame)
        time.sleep(0.05)
    assert wait_until(lambda: all(len(m) == 3 for m in received.values()))
    for spec in manifest.outputs:
        layout = image_layout_for(spec.shape, spec.dtype)
        messages = received[spec.name]
        assert [(m.header.frame_id, m.header.stamp.sec) for m in messages] == [
            (f'camera/{i}', 1000 + i) for i in range(3)]
        for msg in messages:
            assert (msg.height, msg.width, msg.encoding, msg.step) == (
                layout.height, layout.width, layout.encoding, layout.step)
            assert len(msg.data) == layout.nbytes == 4 * int(np.prod(spec.shape))
    assert null.answered == 3


def test_it_subscribes_and_publishes_with_the_nodes_qos(spun, tmp_path):
    manifest = write_demo_model(tmp_path / 'corners.onnx', height=48, width=64)
    null = bench_null.NullNode(spun('null_qos'), 'corners', manifest, '/null_qos/camera')
    assert null.subscription.qos_profile == input_qos('sensor_data')
    assert all(p.qos_profile == output_qos(bench_null.OUTPUT_DEPTH) for p in null.publishers)
    assert [p.topic_name for p in null.publishers] == [
        '/null_qos/corners/keypoints', '/null_qos/corners/descriptors']


def test_the_null_nodes_output_depth_is_the_nodes_default():
    from gps_denied_inference.node.parameters import NodeConfig

    assert NodeConfig.__dataclass_fields__['output_depth'].default == bench_null.OUTPUT_DEPTH


@pytest.mark.parametrize('argv', [[], ['name', 'model', 'manifest']])
def test_bad_command_lines_exit_2_before_any_ros(argv, capsys):
    assert bench_null.main(argv) == 2
    assert 'bench_null_node' in capsys.readouterr().err
