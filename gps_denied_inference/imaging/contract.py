"""The preprocessing contract: what a model expects of its input image, and per-model overrides."""

from dataclasses import dataclass
import math
from typing import Optional, Tuple

from gps_denied_inference.validation import one_of, positive_int, positive_number, require

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

    def apply(self, contract: PreprocessContract) -> PreprocessContract:
        """Return the contract with every set override applied (validated again)."""
        changes = {k: v for k, v in vars(self).items() if v is not None}
        return PreprocessContract(**{**vars(contract), **changes})
