from array import array
import tracemalloc

import numpy as np
import pytest

from gps_denied_inference.errors import ImageRejectedError
from gps_denied_inference.imaging.decode import (
    decode_image,
    MAX_SIDE_PX,
    REJECTION_REASONS,
    SUPPORTED_ENCODINGS,
)

# encoding -> (channels, numpy dtype, colour)
FORMATS = {
    'mono8': (1, np.uint8, 'mono'), 'mono16': (1, np.uint16, 'mono'),
    'rgb8': (3, np.uint8, 'rgb'), 'bgr8': (3, np.uint8, 'bgr'),
    'rgba8': (4, np.uint8, 'rgba'), 'bgra8': (4, np.uint8, 'bgra'),
    '8UC1': (1, np.uint8, 'mono'), '8UC3': (3, np.uint8, 'bgr'),
}


def reference_pixels(encoding, height, width, seed=0):
    channels, dtype, _ = FORMATS[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    return np.random.default_rng(seed).integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)


def pack(pixels, padding, big_endian=False):
    """The message bytes of `pixels`: rows of width * pixel size, each followed by padding."""
    order = '>' if big_endian else '<'
    rows = pixels.astype(pixels.dtype.newbyteorder(order)).reshape(pixels.shape[0], -1)
    row_bytes = rows.view(np.uint8).reshape(pixels.shape[0], -1)
    pad = np.full((pixels.shape[0], padding), 0xEE, np.uint8)
    return np.hstack([row_bytes, pad]).tobytes(), row_bytes.shape[1] + padding


def test_supported_encodings_are_exactly_the_issue_list():
    assert set(SUPPORTED_ENCODINGS) == set(FORMATS)


@pytest.mark.parametrize('encoding', sorted(FORMATS))
@pytest.mark.parametrize('width', [1, 3, 7, 33])
@pytest.mark.parametrize('padding', [0, 1, 6])
def test_every_encoding_decodes_to_the_reference_pixels(encoding, width, padding):
    channels, dtype, color = FORMATS[encoding]
    if dtype == np.uint16 and padding % 2:
        padding += 1
    expected = reference_pixels(encoding, 5, width)
    data, step = pack(expected, padding)

    image = decode_image(encoding, 5, width, step, 0, data)

    assert image.color == color
    assert image.bit_depth == 8 * np.dtype(dtype).itemsize
    assert image.pixels.dtype == dtype
    assert (image.height, image.width, image.channels) == (5, width, channels)
    np.testing.assert_array_equal(image.pixels, expected)


@pytest.mark.parametrize('width,padding', [(1, 0), (5, 2), (640, 0), (641, 10)])
def test_big_endian_mono16_decodes_to_the_same_values_as_little_endian(width, padding):
    expected = reference_pixels('mono16', 4, width, seed=3)
    expected[0, 0] = 0x1234
    big, step = pack(expected, padding, big_endian=True)
    little, _ = pack(expected, padding, big_endian=False)

    from_big = decode_image('mono16', 4, width, step, 1, big).pixels
    from_little = decode_image('mono16', 4, width, step, 0, little).pixels

    assert from_big[0, 0] == 0x1234
    assert from_big.dtype == np.uint16 and from_big.dtype.isnative
    np.testing.assert_array_equal(from_big, expected)
    np.testing.assert_array_equal(from_little, expected)


@pytest.mark.parametrize('encoding', ['mono8', 'rgb8', 'bgra8'])
def test_is_bigendian_does_not_change_8_bit_images(encoding):
    expected = reference_pixels(encoding, 3, 5)
    data, step = pack(expected, 0)
    np.testing.assert_array_equal(decode_image(encoding, 3, 5, step, 1, data).pixels, expected)


@pytest.mark.parametrize('wrap', [bytearray, lambda b: memoryview(bytearray(b)),
                                  lambda b: array('B', b)])
def test_writable_buffers_are_viewed_not_copied(wrap):
    expected = reference_pixels('rgb8', 4, 6)
    data, step = pack(expected, 3)
    buffer = wrap(data)

    pixels = decode_image('rgb8', 4, 6, step, 0, buffer).pixels
    memoryview(buffer).cast('B')[step + 3] = 0x5A

    assert pixels[1, 1, 0] == 0x5A


def test_pixels_over_immutable_bytes_are_read_only():
    data, step = pack(reference_pixels('mono8', 2, 2), 0)
    pixels = decode_image('mono8', 2, 2, step, 0, data).pixels
    with pytest.raises(ValueError):
        pixels[0, 0] = 1


def test_a_multibyte_buffer_is_read_as_its_bytes():
    expected = reference_pixels('mono16', 3, 4)
    data, step = pack(expected, 0)
    words = array('H', data)
    np.testing.assert_array_equal(decode_image('mono16', 3, 4, step, 0, words).pixels, expected)


def test_the_side_limit_itself_is_accepted():
    image = decode_image('mono8', 1, MAX_SIDE_PX, MAX_SIDE_PX, 0, bytes(MAX_SIDE_PX))
    assert image.pixels.shape == (1, MAX_SIDE_PX)


MONO8 = {'encoding': 'mono8', 'height': 4, 'width': 5, 'step': 5, 'is_bigendian': 0,
         'data': bytes(20)}
RGB8 = {'encoding': 'rgb8', 'height': 2, 'width': 3, 'step': 9, 'is_bigendian': 0,
        'data': bytes(18)}


def _mono8(**changes):
    return {**MONO8, **changes}


def _rgb8(**changes):
    return {**RGB8, **changes}


REJECTIONS = [
    # (case id, fields, reason, words the message must contain)
    ('yuv422', _mono8(encoding='yuv422'), 'encoding', ['yuv422', 'mono8', 'bgra8', '8UC3']),
    ('bayer', _mono8(encoding='bayer_rggb8'), 'encoding', ['bayer_rggb8']),
    ('float', _mono8(encoding='32FC1'), 'encoding', ['32FC1']),
    ('rgb16', _mono8(encoding='rgb16'), 'encoding', ['rgb16']),
    ('case', _mono8(encoding='RGB8'), 'encoding', ['RGB8']),
    ('empty-encoding', _mono8(encoding=''), 'encoding', ["''"]),
    ('none-encoding', _mono8(encoding=None), 'encoding', ['None']),
    ('zero-height', _mono8(height=0, data=b''), 'size', ['height = 0']),
    ('zero-width', _mono8(width=0, step=0, data=b''), 'size', ['width = 0']),
    ('negative-height', _mono8(height=-4), 'size', ['height', '-4']),
    ('text-width', _mono8(width='5'), 'size', ['width', "'5'"]),
    ('float-step', _mono8(step=5.0), 'size', ['step', '5.0']),
    ('huge', _mono8(height=100000, width=100000, step=100000, data=bytes(16)), 'dimensions',
     ['100000 x 100000', str(MAX_SIDE_PX)]),
    ('wide', _mono8(height=1, width=MAX_SIDE_PX + 1, step=MAX_SIDE_PX + 1,
                    data=bytes(MAX_SIDE_PX + 1)), 'dimensions', [str(MAX_SIDE_PX + 1)]),
    ('step-below-row', _rgb8(step=8, data=bytes(16)), 'step', ['step = 8', '9 B']),
    ('step-zero', _mono8(step=0, data=b''), 'step', ['step = 0', '5 B']),
    ('mono16-step-below-row', _mono8(encoding='mono16', step=9, data=bytes(36)), 'step',
     ['step = 9', '10 B']),
    ('mono16-odd-step', _mono8(encoding='mono16', step=11, data=bytes(44)), 'step',
     ['step = 11', '2-byte']),
    ('is-bigendian-2', _mono8(is_bigendian=2), 'endianness', ['is_bigendian = 2']),
    ('short', _rgb8(data=bytes(17)), 'data_length', ['short by 1 B', '17 B', '18 B']),
    ('long', _rgb8(data=bytes(19)), 'data_length', ['long by 1 B', '19 B', '18 B']),
    ('empty-data', _rgb8(data=b''), 'data_length', ['short by 18 B']),
    ('padded-step-unpadded-data', _rgb8(step=12, data=bytes(18)), 'data_length',
     ['short by 6 B', '24 B']),
    ('large-claim-little-data', _mono8(height=MAX_SIDE_PX, width=MAX_SIDE_PX, step=MAX_SIDE_PX,
                                       data=bytes(64)), 'data_length', ['short by']),
    ('list-data', _mono8(data=[0] * 20), 'data_type', ['list']),
    ('strided-data', _mono8(data=memoryview(bytes(40))[::2]), 'data_type', ['non-contiguous']),
]


@pytest.mark.parametrize('fields,reason,words', [case[1:] for case in REJECTIONS],
                         ids=[case[0] for case in REJECTIONS])
def test_bad_messages_are_rejected_with_reason_and_specific_message(fields, reason, words):
    with pytest.raises(ImageRejectedError) as caught:
        decode_image(**fields)
    assert caught.value.reason == reason
    for word in words:
        assert word in str(caught.value)


def test_every_rejection_reason_is_exercised_and_listed():
    assert {case[2] for case in REJECTIONS} == set(REJECTION_REASONS)


@pytest.mark.parametrize('height,width', [(100000, 100000), (MAX_SIDE_PX, MAX_SIDE_PX),
                                          (MAX_SIDE_PX, 1)])
def test_claimed_dimensions_never_allocate(height, width):
    tracemalloc.start()
    try:
        with pytest.raises(ImageRejectedError):
            decode_image('rgba8', height, width, width * 4, 0, bytes(64))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024
