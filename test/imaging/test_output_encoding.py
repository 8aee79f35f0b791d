from array import array

import numpy as np
import pytest
from sensor_msgs.msg import Image

from gps_denied_inference.errors import ConfigError, ImageRejectedError, InferenceError
from gps_denied_inference.imaging.output_encoding import (
    count_nonfinite,
    decode_output,
    encode_output,
    image_layout_for,
    MAX_CHANNELS,
    message_data,
)


@pytest.mark.parametrize('shape,expected', [
    ((5,), (1, 5, 1)),
    ((1, 5), (1, 5, 1)),
    ((3, 4), (3, 4, 1)),
    ((1, 1, 480, 640), (480, 640, 1)),
    ((1, 60, 80, 256), (60, 80, 256)),
    ((2, 3, 4), (2, 3, 4)),
    ((1, 1, 1), (1, 1, 1)),
    ((), (1, 1, 1)),
    ((1, 5, 1, 3), (5, 1, 3)),
    ((3, 1), (3, 1, 1)),
])
def test_shapes_map_to_rows_columns_channels(shape, expected):
    layout = image_layout_for(shape, 'float32')
    assert (layout.height, layout.width, layout.channels) == expected
    assert layout.step == expected[1] * expected[2] * 4


@pytest.mark.parametrize('dtype,encoding,size', [
    ('float32', '32FC', 4), ('float64', '64FC', 8), ('float16', '32FC', 4),
    ('int32', '32SC', 4), ('int16', '16SC', 2), ('uint16', '16UC', 2), ('int8', '8SC', 1),
    ('uint8', '8UC', 1), ('bool', '8UC', 1),
])
@pytest.mark.parametrize('channels', [1, 3, 256])
def test_dtypes_map_to_encodings(dtype, encoding, size, channels):
    layout = image_layout_for((1, 6, 7, channels), dtype)
    assert layout.encoding == f'{encoding}{channels}'
    assert layout.step == 7 * channels * size


@pytest.mark.parametrize('shape,dtype,words', [
    ((1, 2, 3, 4, 5), 'float32', ['scores', 'rank 4']),
    ((2, 1, 3, 4), 'float32', ['scores', 'rank 4']),
    ((1, -1, 4), 'float32', ['scores', 'dynamic']),
    ((1, 'height', 4), 'float32', ['scores', "'height'"]),
    ((1, None, 4), 'float32', ['scores', 'None']),
    ((1, 0, 4), 'float32', ['scores', 'empty']),
    ((1, 2, 4, MAX_CHANNELS + 1), 'float32', ['scores', str(MAX_CHANNELS + 1), 'channels']),
    ((4, 4), 'int64', ['scores', 'int64', 'cast']),
    ((4, 4), 'complex64', ['scores', 'complex64']),
    ((4, 4), 'object', ['scores', 'object']),
    ((2 ** 32, 1), 'uint8', ['scores', '4294967295']),
    ((2, 2 ** 30, 2), 'float32', ['scores', 'step']),
])
def test_unpublishable_outputs_are_refused_naming_the_tensor(shape, dtype, words):
    with pytest.raises(ConfigError) as caught:
        image_layout_for(shape, dtype, name='scores')
    for word in words:
        assert word in str(caught.value)


def test_the_channel_limit_itself_is_accepted():
    assert image_layout_for((2, 2, MAX_CHANNELS), 'uint8').channels == MAX_CHANNELS


def test_numpy_shapes_and_dtypes_are_accepted():
    tensor = np.zeros((1, 4, 5), np.int16)
    layout = image_layout_for(tensor.shape, str(tensor.dtype))
    assert (layout.height, layout.width, layout.encoding) == (4, 5, '16SC1')
    layout = image_layout_for(np.array([1, 3, 4]), np.dtype('>u2'))
    assert (layout.height, layout.width, layout.channels, layout.encoding) == (3, 4, 1, '16UC1')
    with pytest.raises(ConfigError, match=r'shape \(3, 4, 5, 6\) has rank 4'):
        image_layout_for(np.array([3, 4, 5, 6]), np.float32)


@pytest.mark.parametrize('dtype', ['float32', 'float64', 'float16', 'int32', 'int16',
                                   'uint16', 'int8', 'uint8', 'bool'])
@pytest.mark.parametrize('shape', [(1, 1, 6, 5), (1, 4, 3, 2), (7,), (3, 2, 5)])
def test_encode_then_decode_gives_the_tensor_back(dtype, shape):
    rng = np.random.default_rng(0)
    tensor = (rng.standard_normal(shape) * 100).astype(dtype)
    layout = image_layout_for(tensor.shape, dtype)

    data = encode_output(tensor, layout)
    values = decode_output(layout.encoding, layout.height, layout.width, bytes(data))

    assert len(data) == layout.nbytes == layout.height * layout.step
    assert values.dtype == np.dtype(layout.wire_dtype)
    np.testing.assert_array_equal(values.reshape(tensor.shape), tensor.astype(layout.wire_dtype))


def test_encoded_bytes_are_the_c_order_little_endian_bytes():
    tensor = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    layout = image_layout_for(tensor.shape, 'float32')
    assert bytes(encode_output(tensor, layout)) == tensor.astype('<f4').tobytes(order='C')


@pytest.mark.parametrize('tensor', [
    np.arange(24, dtype=np.float32).reshape(4, 6).T,
    np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2],
    np.arange(12, dtype='>i4').reshape(3, 4),
], ids=['fortran-order', 'strided', 'big-endian'])
def test_non_contiguous_and_foreign_byte_order_tensors_encode_in_c_order(tensor):
    layout = image_layout_for(tensor.shape, tensor.dtype)
    values = decode_output(layout.encoding, layout.height, layout.width,
                           encode_output(tensor, layout))
    np.testing.assert_array_equal(values.reshape(tensor.shape), tensor)


def test_float16_is_widened_without_loss():
    tensor = np.array([[0.1, 65504.0, -6e-8, np.inf]], np.float16)
    layout = image_layout_for(tensor.shape, 'float16')
    values = decode_output(layout.encoding, 1, 4, encode_output(tensor, layout))
    assert values.dtype == np.float32
    np.testing.assert_array_equal(values.ravel(), tensor.astype(np.float32).ravel())


def test_bool_is_published_as_zero_and_one():
    tensor = np.array([[True, False, True]])
    layout = image_layout_for(tensor.shape, 'bool')
    assert list(encode_output(tensor, layout)) == [1, 0, 1]


def test_a_contiguous_wire_dtype_tensor_is_encoded_without_a_copy():
    tensor = np.arange(2 * 65 * 3, dtype=np.float32).reshape(1, 65, 2, 3)
    data = encode_output(tensor, image_layout_for(tensor.shape, 'float32'))
    assert data.dtype == np.uint8 and data.ndim == 1 and data.flags.c_contiguous
    assert np.shares_memory(data, tensor)
    tensor[0, 0, 0, 0] = -1.0
    assert bytes(data[:4]) == np.float32(-1.0).tobytes()


@pytest.mark.parametrize('tensor', [
    np.ones((2, 3), np.float16), np.ones((2, 3), bool), np.ones((3, 2), np.float32).T,
    np.ones((2, 3), '>f4'),
], ids=['float16', 'bool', 'fortran-order', 'big-endian'])
def test_a_tensor_that_needs_converting_is_encoded_from_a_copy(tensor):
    data = encode_output(tensor, image_layout_for(tensor.shape, tensor.dtype))
    assert not np.shares_memory(data, tensor)


@pytest.mark.parametrize('shape', [(2, 4), (1, 9), (3, 3, 3)])
def test_a_tensor_that_does_not_fit_its_layout_is_refused(shape):
    layout = image_layout_for((3, 3), 'float32')
    with pytest.raises(InferenceError, match=r'3 x 3 x 1 32FC1'):
        encode_output(np.zeros(shape, np.float32), layout)


@pytest.mark.parametrize('encoding,height,width,data,reason,words', [
    ('rgb8', 1, 1, bytes(3), 'encoding', ['rgb8']),
    ('32FC0', 1, 1, bytes(0), 'encoding', ['32FC0']),
    ('32FC', 1, 1, bytes(4), 'encoding', ['32FC']),
    ('32FC1', 2, 2, bytes(15), 'data_length', ['15 B', '16 B']),
    ('16UC3', 1, 2, bytes(14), 'data_length', ['14 B', '12 B']),
    ('8UC1', -1, 2, bytes(0), 'size', ['negative']),
    ('8UC1', 1, 2, [0, 0], 'data_type', ['list']),
])
def test_undecodable_outputs_are_rejected(encoding, height, width, data, reason, words):
    with pytest.raises(ImageRejectedError) as caught:
        decode_output(encoding, height, width, data)
    assert caught.value.reason == reason
    for word in words:
        assert word in str(caught.value)


def test_decoded_multichannel_output_is_rows_columns_channels():
    tensor = np.arange(2 * 3 * 4, dtype=np.int32).reshape(2, 3, 4)
    layout = image_layout_for(tensor.shape, 'int32')
    values = decode_output(layout.encoding, 2, 3, encode_output(tensor, layout))
    assert values.shape == (2, 3, 4)
    np.testing.assert_array_equal(values, tensor)


@pytest.mark.parametrize('dtype', ['float32', 'float16', 'float64'])
@pytest.mark.parametrize('bad,count', [([], 0), ([np.nan], 1), ([np.inf], 1),
                                       ([-np.inf, np.nan, np.inf], 3)])
def test_count_nonfinite_counts_nan_and_inf(dtype, bad, count):
    tensor = np.linspace(-1e3, 1e3, 1000).astype(dtype)
    tensor[[5, 500, 999][:len(bad)]] = bad
    assert count_nonfinite(tensor.reshape(1, 10, 100)) == count


def test_count_nonfinite_does_not_count_huge_finite_values():
    tensor = np.full(8, np.finfo(np.float64).max)
    assert count_nonfinite(tensor) == 0


@pytest.mark.parametrize('dtype', ['int32', 'uint8', 'int8', 'bool'])
def test_integer_tensors_have_no_nonfinite_values(dtype):
    assert count_nonfinite(np.ones((3, 3), dtype)) == 0


def test_count_nonfinite_of_an_empty_tensor_is_zero():
    assert count_nonfinite(np.zeros((0, 3), np.float32)) == 0


def test_message_data_is_an_array_of_bytes_in_c_order():
    """array('B') is the form rclpy stores without checking each value (Humble checks all)."""
    pixels = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)[:, ::-1]
    data = message_data(pixels)
    assert isinstance(data, array) and data.typecode == 'B'
    msg = Image()
    msg.data = data
    assert bytes(msg.data) == np.ascontiguousarray(pixels).tobytes()
