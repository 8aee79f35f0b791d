"""The benchmark's messages: well-formed camera frames and output sets, stamped by wall clock."""

import time

import numpy as np
import pytest

from gps_denied_inference.bench.frames import (
    age_s,
    FRAME_KINDS,
    frame_messages,
    output_messages,
    restamp,
)
from gps_denied_inference.demo.models import write_demo_model
from gps_denied_inference.demo.scene import AerialScene
from gps_denied_inference.imaging.decode import decode_image
from gps_denied_inference.imaging.output_encoding import decode_output


@pytest.fixture(scope='module')
def scene():
    return AerialScene(seed=3, size=(1280, 768))


@pytest.mark.parametrize('name', sorted(FRAME_KINDS))
def test_every_kind_builds_distinct_well_formed_messages(scene, name):
    kind = FRAME_KINDS[name]
    messages = frame_messages(scene, kind, count=2)
    assert len(messages) == 2
    for msg in messages:
        assert (msg.height, msg.width, msg.encoding) == (kind.height, kind.width, kind.encoding)
        assert msg.step == kind.width * kind.channels
        assert len(msg.data) == kind.nbytes
    assert bytes(messages[0].data) != bytes(messages[1].data)


@pytest.mark.parametrize('name', sorted(FRAME_KINDS))
def test_camera_frames_decode_as_the_node_decodes_them(scene, name):
    msg = frame_messages(scene, FRAME_KINDS[name], count=1)[0]
    image = decode_image(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian,
                         msg.data)
    assert image.pixels.shape[:2] == (msg.height, msg.width)


@pytest.mark.parametrize('superpoint, descriptor_channels', [(False, 8), (True, 256)])
def test_output_messages_are_laid_out_as_the_node_publishes_each_output(
        tmp_path, superpoint, descriptor_channels):
    manifest = write_demo_model(tmp_path / 'model.onnx', height=48, width=64,
                                superpoint=superpoint)
    messages = output_messages(manifest)
    assert list(messages) == [spec.name for spec in manifest.outputs]
    keypoints = messages['keypoints']
    assert (keypoints.height, keypoints.width, keypoints.encoding) == (1024, 3, '32FC1')
    descriptors = messages['descriptors']
    assert (descriptors.height, descriptors.width) == (1024, descriptor_channels)
    assert descriptors.encoding == '32FC1'
    for msg in messages.values():
        values = decode_output(msg.encoding, msg.height, msg.width, msg.data)
        assert values.dtype == np.float32 and len(msg.data) == msg.height * msg.step


def test_restamp_sets_frame_id_and_wall_clock(scene):
    msg = frame_messages(scene, FRAME_KINDS['mono8_640x480'], count=1)[0]
    before = time.time()
    restamp(msg, 'floor/x/3')
    stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
    assert msg.header.frame_id == 'floor/x/3'
    assert before - 1e-3 <= stamp <= time.time() + 1e-3
    assert 0.0 <= age_s(msg.header) < 60.0


def test_age_of_an_old_stamp(scene):
    msg = frame_messages(scene, FRAME_KINDS['mono8_640x480'], count=1)[0]
    msg.header.stamp.sec = int(time.time()) - 10
    assert 9.0 < age_s(msg.header) < 60.0  # 10-11 s, plus however long this thread stalled
