"""Outputs leave as Image messages whose bytes are the tensors', through real rclpy."""

import time

import numpy as np
import pytest
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from gps_denied_inference.imaging.output_encoding import decode_output
from gps_denied_inference.node.output_publisher import (
    attach_data,
    OutputPublisher,
    zero_copy_supported,
)
from gps_denied_inference.spin_thread import SpinThread

QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10,
                 reliability=ReliabilityPolicy.RELIABLE)


class Loopback:
    """A publisher per output and a subscriber receiving them, in one spun node."""

    def __init__(self, context, names):
        from rclpy.node import Node

        self.node = Node('output_publisher_test', context=context)
        self.received = {name: [] for name in names}
        self.publishers = {}
        for name in names:
            topic = f'/output_publisher_test/{name}'
            self.publishers[name] = self.node.create_publisher(Image, topic, QOS)
            self.node.create_subscription(Image, topic, self.received[name].append, QOS)
        self.nonfinite = self.node.create_publisher(Header, '/output_publisher_test/nf', QOS)
        self.flagged = []
        self.node.create_subscription(Header, '/output_publisher_test/nf', self.flagged.append,
                                      QOS)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.spinner = SpinThread(self.executor).start()

    def wait_for(self, count, timeout_s=10.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if all(len(msgs) >= count for msgs in self.received.values()):
                return True
            time.sleep(0.01)
        return False

    def close(self):
        self.spinner.stop()
        self.node.destroy_node()


@pytest.fixture
def loopback(ros_context):
    created = []

    def make(names):
        created.append(Loopback(ros_context, names))
        return created[-1]
    yield make
    for loop in created:
        loop.close()


def header(frame_id, sec):
    return Header(frame_id=frame_id, stamp=Image().header.stamp.__class__(sec=sec, nanosec=7))


def dense_outputs(seed):
    rng = np.random.default_rng(seed)
    return {'semi': rng.standard_normal((1, 65, 6, 8)).astype(np.float32),
            'desc': rng.standard_normal((1, 256, 6, 8)).astype(np.float32)}


def test_rosidl_images_keep_their_data_in_a_slot():
    assert zero_copy_supported(Image)
    assert not zero_copy_supported(dict)


def test_published_images_carry_the_tensors_bytes_and_the_frames_header(loopback):
    loop = loopback(['semi', 'desc'])
    publish = OutputPublisher(loop.publishers, loop.nonfinite, Image)
    assert publish.zero_copy
    frames = [dense_outputs(seed) for seed in range(3)]
    for index, outputs in enumerate(frames):
        publish(header(f'camera/{index}', 100 + index), outputs, False)
    assert loop.wait_for(3)
    for name in ('semi', 'desc'):
        for index, msg in enumerate(loop.received[name]):
            assert (msg.header.frame_id, msg.header.stamp.sec) == (f'camera/{index}',
                                                                   100 + index)
            assert (msg.encoding, msg.height, msg.width, msg.step) == (
                '32FC8', frames[index][name].shape[1], 6, 6 * 8 * 4)
            values = decode_output(msg.encoding, msg.height, msg.width, msg.data)
            np.testing.assert_array_equal(values.reshape(frames[index][name].shape),
                                          frames[index][name])
    assert loop.flagged == []


def test_a_message_keeps_no_output_alive_after_publishing(loopback):
    loop = loopback(['semi', 'desc'])
    publish = OutputPublisher(loop.publishers, loop.nonfinite, Image)
    publish(header('f', 1), dense_outputs(0), False)
    messages = [entry[1] for entry in publish._messages.values()]
    assert len(messages) == 2 and all(len(msg.data) == 0 for msg in messages)
    publish(header('f', 2), dense_outputs(1), False)
    assert [entry[1] for entry in publish._messages.values()] == messages
    assert all(a is b for a, b in zip(messages, (e[1] for e in publish._messages.values())))


def test_a_new_shape_gets_its_own_layout(loopback):
    loop = loopback(['scores'])
    publish = OutputPublisher(loop.publishers, loop.nonfinite, Image)
    publish(header('a', 1), {'scores': np.ones((1, 4, 3), np.float32)}, False)
    publish(header('b', 2), {'scores': np.ones((1, 2, 5), np.float16)}, True)
    assert loop.wait_for(2)
    first, second = loop.received['scores']
    assert (first.height, first.width, first.encoding) == (4, 3, '32FC1')
    assert (second.height, second.width, second.encoding, len(second.data)) == (
        2, 5, '32FC1', 2 * 5 * 4)
    deadline = time.monotonic() + 5.0
    while not loop.flagged and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [h.frame_id for h in loop.flagged] == ['b']


class SlotlessImage:
    """A message class whose data goes only through its setter."""

    def __init__(self, **fields):
        self.__dict__.update(fields)
        self.data = None


def test_without_a_data_slot_the_data_is_copied():
    tensor = np.arange(6, dtype=np.float32)
    msg = SlotlessImage()
    attach_data(msg, tensor.view(np.uint8), zero_copy=zero_copy_supported(SlotlessImage))
    assert bytes(msg.data) == tensor.tobytes()
    tensor[0] = 5.0
    assert bytes(msg.data) != tensor.tobytes()


def test_with_a_data_slot_the_message_holds_the_view_itself():
    tensor = np.arange(6, dtype=np.float32)
    msg = Image()
    attach_data(msg, tensor.view(np.uint8), zero_copy=True)
    assert np.shares_memory(msg.data, tensor)
