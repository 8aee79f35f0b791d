"""sensor_msgs/Image fields -> a numpy view of the pixels, or a refusal that says why.

ROS-free. Every claimed dimension is checked against the bytes that arrived before any array
exists, so a huge claim with few bytes allocates nothing; an accepted image is a zero-copy view
(big-endian mono16 excepted). The rules: docs/design.md, "Callback".
"""

from dataclasses import dataclass
import operator
from typing import Any, Dict, Tuple

import numpy as np

from gps_denied_inference.errors import ImageRejectedError

MAX_SIDE_PX = 16384
COLORS = ('mono', 'rgb', 'bgr', 'rgba', 'bgra')
# Stable short codes on ImageRejectedError.reason, for counting rejections in diagnostics.
REJECTION_REASONS = ('encoding', 'size', 'dimensions', 'step', 'endianness', 'data_type',
                     'data_length')


@dataclass(frozen=True)
class _PixelFormat:
    color: str
    channels: int
    bytes_per_channel: int


_FORMATS: Dict[str, _PixelFormat] = {
    'mono8': _PixelFormat('mono', 1, 1),
    'mono16': _PixelFormat('mono', 1, 2),
    'rgb8': _PixelFormat('rgb', 3, 1),
    'bgr8': _PixelFormat('bgr', 3, 1),
    'rgba8': _PixelFormat('rgba', 4, 1),
    'bgra8': _PixelFormat('bgra', 4, 1),
    '8UC1': _PixelFormat('mono', 1, 1),
    '8UC3': _PixelFormat('bgr', 3, 1),
}
SUPPORTED_ENCODINGS: Tuple[str, ...] = tuple(_FORMATS)


@dataclass(frozen=True)
class DecodedImage:
    """Pixels as H x W (mono) or H x W x C, uint8 or native uint16; read-only if `data` was."""

    pixels: np.ndarray
    color: str
    bit_depth: int

    @property
    def height(self) -> int:
        """Rows."""
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        """Columns."""
        return int(self.pixels.shape[1])

    @property
    def channels(self) -> int:
        """1 for mono, 3 or 4 otherwise."""
        return 1 if self.pixels.ndim == 2 else int(self.pixels.shape[2])


def rejection(reason: str, message: str) -> ImageRejectedError:
    """An ImageRejectedError carrying `reason`, one of REJECTION_REASONS."""
    err = ImageRejectedError(message)
    err.reason = reason
    return err


def _as_count(name: str, value: Any) -> int:
    try:
        count = operator.index(value)
    except TypeError:
        raise rejection('size', f'{name} = {value!r} is not an integer') from None
    if isinstance(value, bool) or count < 0:
        raise rejection('size', f'{name} = {value!r} must be a non-negative integer')
    return count


def byte_view(data: Any) -> memoryview:
    """`data` as a flat unsigned-byte memoryview, without copying it."""
    try:
        view = memoryview(data)
    except TypeError:
        raise rejection('data_type', f'data of type {type(data).__name__} is not a bytes-like '
                                     'buffer (expected bytes, bytearray, memoryview or '
                                     "array.array('B'))") from None
    if not view.c_contiguous:
        raise rejection('data_type', 'data is a non-contiguous buffer; expected contiguous bytes')
    return view if view.format == 'B' and view.ndim == 1 else view.cast('B')


def decode_image(encoding: str, height: int, width: int, step: int, is_bigendian: int,
                 data: Any) -> DecodedImage:
    """Decode one image's fields, or raise ImageRejectedError with `.reason` set."""
    fmt = _FORMATS.get(encoding) if isinstance(encoding, str) else None
    if fmt is None:
        raise rejection('encoding', f'encoding {encoding!r} is not supported; supported: '
                                    + ', '.join(SUPPORTED_ENCODINGS))
    height = _as_count('height', height)
    width = _as_count('width', width)
    step = _as_count('step', step)
    if height == 0 or width == 0:
        raise rejection('size', f'image is empty: height = {height}, width = {width} '
                                '(both must be > 0)')
    if height > MAX_SIDE_PX or width > MAX_SIDE_PX:
        raise rejection('dimensions', f'claimed size {width} x {height} px exceeds the limit '
                                      f'of {MAX_SIDE_PX} px per side')
    pixel_bytes = fmt.channels * fmt.bytes_per_channel
    row_bytes = width * pixel_bytes
    if step < row_bytes:
        raise rejection('step', f'step = {step} B is smaller than one row of {encoding}: '
                                f'width {width} x {pixel_bytes} B = {row_bytes} B')
    if step % fmt.bytes_per_channel:
        raise rejection('step', f'step = {step} B is not a multiple of the '
                                f'{fmt.bytes_per_channel}-byte {encoding} sample')
    if is_bigendian not in (0, 1):
        raise rejection('endianness', f'is_bigendian = {is_bigendian!r} must be 0 or 1')
    view = byte_view(data)
    expected = height * step
    if view.nbytes != expected:
        kind = 'short' if view.nbytes < expected else 'long'
        raise rejection('data_length', f'data is {kind} by {abs(view.nbytes - expected)} B: '
                                       f'{view.nbytes} B, expected height {height} x step '
                                       f'{step} = {expected} B')
    order = '>' if is_bigendian else '<'
    dtype = np.dtype(f'{order}u{fmt.bytes_per_channel}')
    if fmt.channels == 1:
        shape: Tuple[int, ...] = (height, width)
        strides: Tuple[int, ...] = (step, fmt.bytes_per_channel)
    else:
        shape = (height, width, fmt.channels)
        strides = (step, pixel_bytes, fmt.bytes_per_channel)
    pixels = np.ndarray(shape, dtype=dtype, buffer=view, strides=strides)
    # Native byte order: a view for little-endian data on this (little-endian) host; the
    # byte swap of big-endian mono16 makes the only copy.
    pixels = pixels.astype(dtype.newbyteorder('='), copy=False)
    return DecodedImage(pixels, fmt.color, 8 * fmt.bytes_per_channel)
