"""A decoded camera image -> the model's input tensor, exactly as its contract says.

OpenCV does the pixel work: 16-bit to 8-bit, colour conversion on the cheaper side of the
resize, stretch or letterbox resize, then per-channel normalisation by a lookup table written
straight into the tensor. The steps and why: docs/design.md, "Callback".
`plan_resize` returns the resize geometry; a caller that publishes it passes the same plan to
preprocess(), so the published mapping is the one the pixels went through (imaging/geometry.py).
"""

from dataclasses import dataclass
import functools
import sys
from typing import Optional, Tuple

import cv2
import numpy as np

from gps_denied_inference.imaging.contract import PreprocessContract
from gps_denied_inference.imaging.decode import DecodedImage

_CHANNELS = {'mono': 1, 'rgb': 3, 'bgr': 3, 'rgba': 4, 'bgra': 4}
_CONVERSIONS = {
    ('rgb', 'mono'): cv2.COLOR_RGB2GRAY, ('bgr', 'mono'): cv2.COLOR_BGR2GRAY,
    ('rgba', 'mono'): cv2.COLOR_RGBA2GRAY, ('bgra', 'mono'): cv2.COLOR_BGRA2GRAY,
    ('mono', 'rgb'): cv2.COLOR_GRAY2RGB, ('mono', 'bgr'): cv2.COLOR_GRAY2BGR,
    ('bgr', 'rgb'): cv2.COLOR_BGR2RGB, ('rgb', 'bgr'): cv2.COLOR_RGB2BGR,
    ('rgba', 'rgb'): cv2.COLOR_RGBA2RGB, ('rgba', 'bgr'): cv2.COLOR_RGBA2BGR,
    ('bgra', 'rgb'): cv2.COLOR_BGRA2RGB, ('bgra', 'bgr'): cv2.COLOR_BGRA2BGR,
}
_HIGH_BYTE = 1 if sys.byteorder == 'little' else 0


@dataclass(frozen=True)
class ResizePlan:
    """Where the source image lands in the model image: model = source * scale + pad.

    Coordinates are continuous pixel coordinates with pixel centres at integers, the
    convention cv2.resize samples with.
    """

    src_height: int
    src_width: int
    content_height: int
    content_width: int
    pad_x: int
    pad_y: int
    interpolation: Optional[int]
    model_height: int
    model_width: int

    @property
    def scale_x(self) -> float:
        """Model pixels per source pixel, horizontally."""
        return self.content_width / self.src_width

    @property
    def scale_y(self) -> float:
        """Model pixels per source pixel, vertically."""
        return self.content_height / self.src_height

    def to_source(self, x: float, y: float) -> Tuple[float, float]:
        """A model-image point (x right, y down) in source-image pixels."""
        return ((x - self.pad_x + 0.5) / self.scale_x - 0.5,
                (y - self.pad_y + 0.5) / self.scale_y - 0.5)

    def to_model(self, x: float, y: float) -> Tuple[float, float]:
        """A source-image point in model-image pixels (the inverse of to_source)."""
        return ((x + 0.5) * self.scale_x - 0.5 + self.pad_x,
                (y + 0.5) * self.scale_y - 0.5 + self.pad_y)


def plan_resize(src_height: int, src_width: int, contract: PreprocessContract) -> ResizePlan:
    """The resize (and letterbox border) that maps a source size onto the contract's size."""
    width, height = contract.width, contract.height
    if contract.resize == 'letterbox':
        scale = min(width / src_width, height / src_height)
        content_w = min(width, max(1, int(src_width * scale + 0.5)))
        content_h = min(height, max(1, int(src_height * scale + 0.5)))
    else:
        content_w, content_h = width, height
    if (content_w, content_h) == (src_width, src_height):
        interpolation = None
    elif content_w <= src_width and content_h <= src_height:
        interpolation = cv2.INTER_AREA
    else:
        interpolation = cv2.INTER_LINEAR
    return ResizePlan(src_height, src_width, content_h, content_w, (width - content_w) // 2,
                      (height - content_h) // 2, interpolation, height, width)


@functools.lru_cache(maxsize=16)
def _lookup_tables(contract: PreprocessContract) -> np.ndarray:
    """Per channel, the output value of each of the 256 input values (channels x 256)."""
    dtype = np.dtype(contract.dtype)
    values = np.arange(256, dtype=np.float64)
    if dtype == np.uint8:
        tables = np.tile(values, (contract.channels, 1))
    else:
        mean = np.broadcast_to(np.asarray(contract.mean, np.float64), (contract.channels,))
        std = np.broadcast_to(np.asarray(contract.std, np.float64), (contract.channels,))
        tables = (values[None, :] * contract.scale - mean[:, None]) / std[:, None]
    tables = np.ascontiguousarray(tables.astype(dtype))
    tables.flags.writeable = False
    return tables


def _to_8bit(pixels: np.ndarray) -> np.ndarray:
    """uint8 as is; uint16 -> value >> 8 (the high byte of each sample, one copy if unpadded)."""
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.flags.c_contiguous:  # numpy < 1.23 (JetPack's 1.21) views only these as bytes
        return np.ascontiguousarray(pixels.view(np.uint8)[..., _HIGH_BYTE::2])
    return np.right_shift(pixels, 8).astype(np.uint8)


def _lut_into(pixels: np.ndarray, table: np.ndarray, target: np.ndarray) -> None:
    """target[...] = table[pixels], written in place by OpenCV."""
    written = cv2.LUT(pixels, table, dst=target)
    if written is not target:
        target[...] = written


def _fill_border(spatial: np.ndarray, plan: ResizePlan, value: np.ndarray) -> None:
    """Write `value` (one per channel) on the letterbox border of an H x W x C view."""
    top, left = plan.pad_y, plan.pad_x
    bottom, right = top + plan.content_height, left + plan.content_width
    spatial[:top] = value
    spatial[bottom:] = value
    spatial[top:bottom, :left] = value
    spatial[top:bottom, right:] = value


def convert_color(pixels: np.ndarray, code: int) -> np.ndarray:
    """cv2.cvtColor, including for a 1x1 multi-channel image (see _widened)."""
    if _is_one_multichannel_pixel(pixels):
        return np.ascontiguousarray(cv2.cvtColor(_widened(pixels), code)[:, :1])
    return cv2.cvtColor(pixels, code)


def _resize(pixels: np.ndarray, size: Tuple[int, int], interpolation: int) -> np.ndarray:
    if _is_one_multichannel_pixel(pixels):
        pixels = _widened(pixels)  # a constant image resizes to the same constant
    return cv2.resize(pixels, size, interpolation=interpolation)


def _is_one_multichannel_pixel(pixels: np.ndarray) -> bool:
    return pixels.ndim == 3 and pixels.shape[:2] == (1, 1)


def _widened(pixels: np.ndarray) -> np.ndarray:
    """The pixel twice, side by side.

    OpenCV 4.5.4 (Ubuntu 22.04's, JetPack 6's) rejects a 1x1 multi-channel array in cvtColor
    and resize ('_step >= minstep').
    """
    return np.repeat(pixels, 2, axis=1)


def preprocess(image: DecodedImage, contract: PreprocessContract,
               plan: Optional[ResizePlan] = None) -> np.ndarray:
    """A new C-contiguous array of exactly contract.input_shape and contract.dtype.

    `plan` is plan_resize(image.height, image.width, contract), computed here when not given;
    a plan made for another image or model size is refused with ValueError.
    """
    pixels = _to_8bit(image.pixels)
    if plan is None:
        plan = plan_resize(pixels.shape[0], pixels.shape[1], contract)
    elif plan != plan_resize(pixels.shape[0], pixels.shape[1], contract):
        raise ValueError(f'resize plan for {plan.src_width} x {plan.src_height} px -> '
                         f'{plan.model_width} x {plan.model_height} px given for an image of '
                         f'{pixels.shape[1]} x {pixels.shape[0]} px and a model input of '
                         f'{contract.width} x {contract.height} px')
    source_channels, channels = _CHANNELS[image.color], contract.channels
    conversion = _CONVERSIONS.get((image.color, contract.color))
    convert_first = conversion is not None and (
        channels < source_channels
        or (channels == source_channels
            and plan.content_width * plan.content_height >= plan.src_width * plan.src_height))
    if convert_first:
        pixels = convert_color(pixels, conversion)
    if plan.interpolation is not None:
        pixels = _resize(pixels, (plan.content_width, plan.content_height), plan.interpolation)
    if conversion is not None and not convert_first:
        pixels = convert_color(pixels, conversion)

    tables = _lookup_tables(contract)
    out = np.empty(contract.input_shape, dtype=tables.dtype)
    target = out
    if out.dtype == np.float16:
        # cv2.LUT only copies table entries: moving float16 bit patterns as uint16 also works
        # where OpenCV has no half-float LUT (OpenCV 4.x, as on JetPack).
        tables, target = tables.view(np.uint16), out.view(np.uint16)
    spatial = target[0].transpose(1, 2, 0) if contract.layout == 'NCHW' else target[0]
    if contract.resize == 'letterbox':
        _fill_border(spatial, plan, tables[:, contract.pad_value])
    rows = slice(plan.pad_y, plan.pad_y + plan.content_height)
    cols = slice(plan.pad_x, plan.pad_x + plan.content_width)
    if channels == 1:
        _lut_into(pixels, tables[0], spatial[rows, cols, 0])
    elif contract.layout == 'NCHW':
        for channel in range(channels):
            _lut_into(cv2.extractChannel(pixels, channel), tables[channel],
                      target[0, channel, rows, cols])
    else:
        _lut_into(pixels, np.ascontiguousarray(tables.T)[None], spatial[rows, cols])
    return out
