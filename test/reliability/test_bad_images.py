"""Bad camera images are rejected by reason; valid odd layouts are served exactly.

Each bad image is rejected with its reason counted, nothing is published for it, the node
stays active with the same footprint, and the next good frame is served.

Images whose layout is unusual but valid (odd widths, padded rows, big-endian mono16) are
served, and give exactly the output of the same pixels in the plain layout.
"""

from node_harness import mono8, wait_until
import numpy as np
import pytest
from reliability_support import footprint, settled_footprint
from sensor_msgs.msg import Image

from gps_denied_inference.resources.measured_usage import current_rss_bytes

CAMERA = '/camera/image_raw'
MIB = 1 << 20

# sensor_msgs/image_encodings.hpp names the node does not decode, and a few it never will.
UNSUPPORTED_ENCODINGS = (
    ['rgb16', 'rgba16', 'bgr16', 'bgra16', '8UC2', '8UC4', '16UC1', '16UC2', '16UC3', '16UC4']
    + [f'{depth}C{channels}' for depth in ('8S', '16S', '32S', '32F', '64F')
       for channels in (1, 2, 3, 4)]
    + [f'bayer_{order}{bits}' for order in ('rggb', 'bggr', 'gbrg', 'grbg') for bits in (8, 16)]
    + ['yuv422', 'yuv422_yuy2', 'uyvy', 'yuyv', 'nv21', 'nv24', 'jpeg', 'MONO8', ''])


def _image(encoding='mono8', height=16, width=16, step=None, data=None, is_bigendian=0,
           frame_id='bad'):
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=is_bigendian,
                step=width if step is None else step)
    msg.data = bytes(msg.height * msg.step) if data is None else data
    msg.header.frame_id = frame_id
    return msg


@pytest.fixture
def active(start, model):
    harness = start({'models': ['tiny'], 'tiny.engine_path': str(model),
                     'tiny.input_topic': CAMERA, 'tiny.runtime': 'onnxruntime'})
    harness.topic = harness.subscribe('tiny', 'doubled')
    assert harness.lifecycle.change('configure') and harness.lifecycle.change('activate')
    assert harness.wait_for_subscription(CAMERA)
    harness.serve = lambda msg: _serve(harness, msg)
    assert harness.serve(mono8(np.zeros((16, 16), np.uint8), frame_id='warm-up')) is not None
    harness.baseline = footprint(harness)
    return harness


def _stats(harness):
    return harness.node._stats['tiny'].snapshot()


def _serve(harness, msg):
    """Publish `msg` and return its output message, or None when none arrives.

    Returns once the stats count it too (the worker counts a frame as processed just after
    publishing it), so a caller's next snapshot already includes this frame.
    """
    count = len(harness.received(harness.topic))
    harness.publish(CAMERA, msg)
    if not wait_until(lambda: len(harness.received(harness.topic)) > count, 10.0):
        return None
    assert wait_until(lambda: _stats(harness).processed > count, 30.0)
    return harness.received(harness.topic)[count]


def _expect_rejected(harness, msg, reason, message):
    before = _stats(harness)
    harness.publish(CAMERA, msg)
    assert wait_until(lambda: _stats(harness).rejected == before.rejected + 1, 30.0)
    after = _stats(harness)
    assert after.rejected_by_reason.get(reason, 0) == before.rejected_by_reason.get(reason,
                                                                                    0) + 1
    assert message in after.last_error
    assert (after.processed, after.failed) == (before.processed, before.failed)
    good = harness.serve(mono8(np.full((16, 16), 7, np.uint8), frame_id='next-good'))
    assert good is not None and good.header.frame_id == 'next-good'
    assert all(m.header.frame_id != 'bad' for m in harness.received(harness.topic))
    assert settled_footprint(harness, harness.baseline) == harness.baseline


@pytest.mark.parametrize('encoding', UNSUPPORTED_ENCODINGS)
def test_unsupported_encoding_is_rejected(active, encoding):
    _expect_rejected(active, _image(encoding, step=64), 'encoding',
                     f'encoding {encoding!r} is not supported')


BAD_LAYOUTS = {
    'data_shorter_than_height_x_step': (
        {'data': bytes(16 * 16 - 1)}, 'data_length', 'data is short by 1 B'),
    'data_longer_than_height_x_step': (
        {'data': bytes(16 * 16 + 3)}, 'data_length', 'data is long by 3 B'),
    'empty_data': ({'data': b''}, 'data_length', 'data is short by 256 B'),
    'step_smaller_than_a_row': (
        {'step': 15, 'data': bytes(16 * 15)}, 'step',
        'step = 15 B is smaller than one row'),
    'rgb8_step_smaller_than_a_row': (
        {'encoding': 'rgb8', 'step': 16 * 3 - 1, 'data': bytes(16 * 47)}, 'step',
        'width 16 x 3 B = 48 B'),
    'odd_step_for_mono16': (
        {'encoding': 'mono16', 'step': 33, 'data': bytes(16 * 33)}, 'step',
        'is not a multiple of the 2-byte mono16 sample'),
    'zero_width': ({'width': 0, 'step': 0, 'data': b''}, 'size', 'width = 0'),
    'zero_height': ({'height': 0, 'data': b''}, 'size', 'height = 0'),
    'claims_100000_x_100000': (
        {'height': 100_000, 'width': 100_000, 'step': 100_000, 'data': bytes(64)},
        'dimensions', 'claimed size 100000 x 100000 px exceeds the limit'),
    'claims_16384_x_16384_with_64_bytes': (
        {'height': 16384, 'width': 16384, 'step': 16384 * 4, 'encoding': 'rgba8',
         'data': bytes(64)},
        'data_length', 'expected height 16384 x step 65536'),
    'claims_uint32_max_step': (
        {'height': 2, 'step': 2 ** 32 - 1, 'data': bytes(64)}, 'data_length',
        'data is short'),
    'is_bigendian_not_0_or_1': ({'is_bigendian': 2}, 'endianness', 'is_bigendian = 2'),
}


@pytest.mark.parametrize('fields, reason, message', list(BAD_LAYOUTS.values()),
                         ids=list(BAD_LAYOUTS))
def test_bad_layout_is_rejected_by_reason(active, fields, reason, message):
    _expect_rejected(active, _image(**fields), reason, message)


def test_huge_claimed_images_allocate_nothing(active):
    # Warm the path once, so the first-use costs of the rejection path are not counted.
    _expect_rejected(active, _image(height=100_000, width=100_000, step=100_000,
                                    data=bytes(64)), 'dimensions', '100000 x 100000')
    rss_before = current_rss_bytes()
    for i in range(20):
        huge = _image(encoding='rgba8', height=16384, width=16384, step=16384 * 4,
                      data=bytes(64))
        active.publish(CAMERA, huge)
        assert wait_until(lambda n=i: _stats(active).rejected == n + 2, 30.0)
    # One 16384 x 16384 rgba8 image is 1 GiB; twenty refused claims cost (far) less than one.
    assert current_rss_bytes() - rss_before < 32 * MIB
    assert footprint(active) == active.baseline


def _values(msg):
    return np.frombuffer(bytes(msg.data), dtype=np.float32).reshape(msg.height, msg.width)


RNG = np.random.default_rng(8)
ODD = RNG.integers(0, 256, (13, 15), dtype=np.uint8)


def _padded_mono8(pixels, padding):
    rows = np.zeros((pixels.shape[0], pixels.shape[1] + padding), np.uint8)
    rows[:, :pixels.shape[1]] = pixels
    return _image('mono8', *pixels.shape, step=rows.shape[1], data=rows.tobytes(),
                  frame_id='variant')


def _gray_as(encoding, pixels):
    channels = {'rgb8': 3, 'bgr8': 3, '8UC3': 3, 'rgba8': 4, 'bgra8': 4}[encoding]
    stacked = np.repeat(pixels[:, :, None], channels, axis=2)
    if channels == 4:
        stacked[:, :, 3] = 255
    return _image(encoding, *pixels.shape, step=pixels.shape[1] * channels,
                  data=stacked.tobytes(), frame_id='variant')


def _mono16(pixels, big_endian):
    wide = pixels.astype(np.uint16) << 8 | 0x5A
    data = wide.astype('>u2' if big_endian else '<u2').tobytes()
    return _image('mono16', *pixels.shape, step=pixels.shape[1] * 2, data=data,
                  is_bigendian=int(big_endian), frame_id='variant')


VARIANTS = {
    'odd_width_padded_step_1': lambda: _padded_mono8(ODD, 1),
    'odd_width_padded_step_49': lambda: _padded_mono8(ODD, 49),
    'odd_width_rgb8': lambda: _gray_as('rgb8', ODD),
    'odd_width_bgr8': lambda: _gray_as('bgr8', ODD),
    'odd_width_bgra8': lambda: _gray_as('bgra8', ODD),
    'odd_width_8UC3': lambda: _gray_as('8UC3', ODD),
    'odd_width_mono16_little_endian': lambda: _mono16(ODD, big_endian=False),
    'odd_width_mono16_big_endian': lambda: _mono16(ODD, big_endian=True),
}


@pytest.mark.parametrize('variant', list(VARIANTS.values()), ids=list(VARIANTS))
def test_valid_odd_layouts_give_the_output_of_the_plain_image(active, variant):
    plain = active.serve(_image('mono8', *ODD.shape, data=ODD.tobytes(), frame_id='plain'))
    other = active.serve(variant())
    assert plain is not None and other is not None
    assert other.header.frame_id == 'variant'
    np.testing.assert_array_equal(_values(other), _values(plain))
    stats = _stats(active)
    assert stats.rejected == 0 and stats.failed == 0
