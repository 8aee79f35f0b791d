"""The preprocessing contract: what a model expects of its input image, and per-model overrides."""

from dataclasses import dataclass
import math
from typing import Dict, Optional, Sequence, Tuple

from gps_denied_inference.validation import (
    named_as,
    one_of,
    positive_int,
    positive_number,
    require,
)

COLOR_ORDERS = ('mono', 'rgb', 'bgr')
RESIZE_MODES = ('stretch', 'letterbox')
LAYOUTS = ('NCHW', 'NHWC')
TENSOR_DTYPES = ('float32', 'float16', 'uint8')


@dataclass(frozen=True)
class PreprocessContract:
    """What a model expects of its input: out = ((pixel * scale) - mean) / std, in layout."""

    width: int
    height: int
    color: str = 'mono'
    resize: str = 'stretch'
    mean: Tuple[float, ...] = (0.0,)
    std: Tuple[float, ...] = (1.0,)
    scale: float = 1.0 / 255.0
    layout: str = 'NCHW'
    dtype: str = 'float32'
    pad_value: int = 0

    def __post_init__(self) -> None:
        owner = 'PreprocessContract'
        positive_int(owner, 'width', self.width)
        positive_int(owner, 'height', self.height)
        one_of(owner, 'color', self.color, COLOR_ORDERS)
        one_of(owner, 'resize', self.resize, RESIZE_MODES)
        one_of(owner, 'layout', self.layout, LAYOUTS)
        one_of(owner, 'dtype', self.dtype, TENSOR_DTYPES)
        positive_number(owner, 'scale', self.scale)
        require(isinstance(self.pad_value, int) and 0 <= self.pad_value <= 255,
                owner, 'pad_value', self.pad_value, 'an integer in [0, 255]')
        for name in ('mean', 'std'):
            values = getattr(self, name)
            require(isinstance(values, tuple) and len(values) in (1, self.channels)
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                            and math.isfinite(v) for v in values),
                    owner, name, values,
                    f'a tuple of 1 or {self.channels} finite numbers')
        require(all(v > 0 for v in self.std), owner, 'std', self.std, 'all > 0')

    @property
    def channels(self) -> int:
        """Number of colour channels the model input has."""
        return 1 if self.color == 'mono' else 3

    @property
    def input_shape(self) -> Tuple[int, int, int, int]:
        """The batch-1 tensor shape this contract produces."""
        if self.layout == 'NCHW':
            return (1, self.channels, self.height, self.width)
        return (1, self.height, self.width, self.channels)

    def mismatch(self, shape: Sequence[int], dtype: str,
                 profile: Optional[Sequence[Sequence[int]]] = None) -> Optional[str]:
        """Why an input of `shape` and `dtype` cannot take this contract's tensors, or None.

        -1 in `shape` is a dynamic dimension within `profile`'s min and max. Checked before
        any frame: otherwise the model configures and then fails every frame.
        """
        ours = self.input_shape
        fits = len(shape) == len(ours) and all(
            dim == want if dim != -1 else (
                profile is not None and profile[0][axis] <= want <= profile[2][axis])
            for axis, (dim, want) in enumerate(zip(shape, ours)))
        if fits and dtype == self.dtype:
            return None
        channels = f'{self.channels} channel(s) for color {self.color}'
        return (f'the preprocessing makes {self.dtype} tensors of shape {ours} ({channels}, '
                f'layout {self.layout}), but the input takes {dtype} {tuple(shape)}'
                + ('' if profile is None else f' (profile min {tuple(profile[0])}, max '
                   f'{tuple(profile[2])})'))


# PreprocessOverrides field -> the node's per-model parameter that sets it (M.<parameter>).
OVERRIDE_PARAMETERS = {'width': 'input_width', 'height': 'input_height', 'color': 'color',
                       'resize': 'resize', 'mean': 'mean', 'std': 'std'}


@dataclass(frozen=True)
class PreprocessOverrides:
    """Per-model parameters that override the manifest's preprocessing contract."""

    width: Optional[int] = None
    height: Optional[int] = None
    color: Optional[str] = None
    resize: Optional[str] = None
    mean: Optional[Tuple[float, ...]] = None
    std: Optional[Tuple[float, ...]] = None

    def __post_init__(self) -> None:
        owner = 'PreprocessOverrides'
        for name in ('width', 'height'):
            if getattr(self, name) is not None:
                positive_int(owner, name, getattr(self, name))
        if self.color is not None:
            one_of(owner, 'color', self.color, COLOR_ORDERS)
        if self.resize is not None:
            one_of(owner, 'resize', self.resize, RESIZE_MODES)

    def apply(self, contract: PreprocessContract, model: str = '') -> PreprocessContract:
        """Return the contract with every set override applied (validated again).

        A set override the result refuses (a mean of 2 values for 3 channels) is named as the
        node parameter `model`.<parameter> when `model` is given.
        """
        changes = {k: v for k, v in vars(self).items() if v is not None}
        with named_as(override_labels(model) if model else {}, changes):
            return PreprocessContract(**{**vars(contract), **changes})


def override_labels(model: str) -> Dict[str, str]:
    """PreprocessOverrides field -> the node parameter that sets it for `model`."""
    return {field: f'{model}.{parameter}' for field, parameter in OVERRIDE_PARAMETERS.items()}
