"""Output tensors <-> sensor_msgs/Image fields, and the NaN/Inf check that flags a frame.

Shapes map to height x width x channels after dropping leading 1-dims and dtypes to
`<depth>C<channels>` encodings, widening only losslessly; anything that cannot be published
exactly is refused at configure. The rules: docs/design.md, "Output encoding".
"""

from array import array
from dataclasses import dataclass
import re
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from gps_denied_inference.errors import ConfigError, InferenceError
from gps_denied_inference.imaging.decode import byte_view, rejection

MAX_CHANNELS = 512
UINT32_MAX = 2 ** 32 - 1
# dtype name -> (wire dtype, encoding depth prefix)
_WIRE: Dict[str, Tuple[str, str]] = {
    'float32': ('float32', '32F'), 'float64': ('float64', '64F'),
    'float16': ('float32', '32F'), 'int32': ('int32', '32S'), 'int16': ('int16', '16S'),
    'uint16': ('uint16', '16U'), 'int8': ('int8', '8S'), 'uint8': ('uint8', '8U'),
    'bool': ('uint8', '8U'),
}
_DEPTHS = {depth: np.dtype(wire).newbyteorder('<') for wire, depth in _WIRE.values()}
_ENCODING = re.compile(r'^(8U|8S|16U|16S|32S|32F|64F)C([1-9][0-9]*)$')


@dataclass(frozen=True)
class OutputLayout:
    """How one output tensor is laid out as an image message."""

    height: int
    width: int
    channels: int
    encoding: str
    step: int
    wire_dtype: str

    @property
    def nbytes(self) -> int:
        """Size of the message's data."""
        return self.height * self.step


def _squeeze(shape: Tuple[int, ...]) -> Tuple[int, ...]:
    """`shape` without its leading 1-dims, keeping at least one dimension."""
    dims = tuple(int(d) for d in shape)
    while len(dims) > 1 and dims[0] == 1:
        dims = dims[1:]
    return dims or (1,)


def _image_shape(shape: Tuple[int, ...]) -> Optional[Tuple[int, int, int]]:
    """(rows, columns, channels) of a tensor shape, or None when its rank is above 3."""
    dims = _squeeze(shape)
    if len(dims) == 1:
        return 1, dims[0], 1
    if len(dims) == 2:
        return dims[0], dims[1], 1
    if len(dims) == 3:
        return dims[0], dims[1], dims[2]
    return None


def image_layout_for(shape: Tuple[int, ...], dtype: Union[str, np.dtype],
                     name: str = 'output') -> OutputLayout:
    """The image layout of a tensor (dtype by name or numpy dtype), or ConfigError naming it."""
    try:
        dtype_name = np.dtype(dtype).name
    except TypeError:
        dtype_name = str(dtype)
    wire = _WIRE.get(dtype_name)
    if wire is None:
        raise ConfigError(f'output {name!r}: dtype {dtype} has no sensor_msgs/Image encoding '
                          f'(publishable: {", ".join(_WIRE)}); cast it inside the model')
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0
               for d in shape):
        raise ConfigError(f'output {name!r}: shape {tuple(shape)} has a dynamic or empty '
                          'dimension; every dimension must be a fixed size > 0')
    dims = tuple(int(d) for d in shape)
    rows_columns_channels = _image_shape(dims)
    if rows_columns_channels is None:
        raise ConfigError(f'output {name!r}: shape {dims} has rank {len(_squeeze(dims))} after '
                          'dropping leading 1-dims; an image holds at most 3 '
                          '(rows, columns, channels)')
    height, width, channels = rows_columns_channels
    if channels > MAX_CHANNELS:
        raise ConfigError(f'output {name!r}: shape {dims} maps to {channels} channels; '
                          f'at most {MAX_CHANNELS} (OpenCV CV_CN_MAX) are publishable')
    step = width * channels * np.dtype(wire[0]).itemsize
    if height > UINT32_MAX or step > UINT32_MAX:
        raise ConfigError(f'output {name!r}: shape {dims} needs height {height} and '
                          f'step {step} B; sensor_msgs/Image allows at most {UINT32_MAX}')
    return OutputLayout(height, width, channels, f'{wire[1]}C{channels}', step, wire[0])


def encode_output(tensor: np.ndarray, layout: OutputLayout) -> np.ndarray:
    """The tensor's C-order little-endian bytes as a flat uint8 array.

    A view of the tensor itself when it already is C-contiguous in its little-endian wire
    dtype (what runtimes return): no copy. Otherwise (float16, bool, strided or big-endian
    tensors) a view of one converted copy.
    """
    if _image_shape(tensor.shape) != (layout.height, layout.width, layout.channels):
        raise InferenceError(f'output of shape {tensor.shape} does not map to its layout '
                             f'{layout.height} x {layout.width} x {layout.channels} '
                             f'{layout.encoding}')
    wire = np.ascontiguousarray(tensor, dtype=np.dtype(layout.wire_dtype).newbyteorder('<'))
    return wire.reshape(-1).view(np.uint8)


def message_data(values: np.ndarray) -> array:
    """An array's C-order bytes as array('B'): what a uint8[] message field takes fastest.

    rclpy stores an array('B') with one memcpy, and as is where it checks fields (Humble
    always, later releases with ROS_PYTHON_CHECK_FIELDS=1). bytes are then checked value by
    value (about 0.1 s for a 640x480 rgb8 frame), and a memoryview is always copied value by
    value.
    """
    data = array('B')
    data.frombytes(memoryview(np.ascontiguousarray(values)).cast('B'))
    return data


def decode_output(encoding: str, height: int, width: int, data: Any) -> np.ndarray:
    """A published output image's values: H x W, or H x W x C; a read-only view of data."""
    match = _ENCODING.match(encoding) if isinstance(encoding, str) else None
    if match is None:
        raise rejection('encoding', f'output encoding {encoding!r} is not '
                                    '<8U|8S|16U|16S|32S|32F|64F>C<channels>')
    dtype, channels = _DEPTHS[match.group(1)], int(match.group(2))
    if height < 0 or width < 0:
        raise rejection('size', f'output size {width} x {height} is negative')
    buffer = byte_view(data)
    expected = height * width * channels * dtype.itemsize
    if buffer.nbytes != expected:
        raise rejection('data_length', f'output data is {buffer.nbytes} B, expected {height} x '
                                       f'{width} x {channels} x {dtype.itemsize} = {expected} '
                                       f'B for {encoding}')
    values = np.frombuffer(buffer, dtype=dtype)
    shape = (height, width) if channels == 1 else (height, width, channels)
    return values.reshape(shape)


def count_nonfinite(tensor: np.ndarray) -> int:
    """How many values are NaN or +-Inf (0 for integer and bool tensors)."""
    if tensor.dtype.kind != 'f':
        return 0
    return int(tensor.size - np.count_nonzero(np.isfinite(tensor)))

