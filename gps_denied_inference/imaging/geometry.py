"""The model image's geometry: its pixel mapping from the camera image and its intrinsics.

Every coordinate a model publishes is in pixels of the model image, the camera frame resized
(stretch) or resized and centred on a border (letterbox) to the model's input size; the
mapping is preprocess's ResizePlan for that frame. A camera's CameraInfo (as plain data here:
`Calibration`) describes the camera image; `model_image_calibration` turns it into the
CameraInfo of the model image, so a consumer uses the keypoints with intrinsics that match
the pixels they are in, as image_proc's resize and crop_decimate do for the images they make.

Conventions (sensor_msgs/CameraInfo, image_geometry's reading of it):
- K, R, P and D describe the camera at its calibration resolution (width x height). A camera
  image with a region of interest and binning has K and P with the principal point moved by
  the ROI offset, then x divided by binning_x and y by binning_y; the image is
  (roi.width or width) / binning_x by (roi.height or height) / binning_y pixels.
- The resize is exact in pixel-centre coordinates (those K uses, and cv2.resize samples
  with): x_model = (x_camera + 0.5) * scale_x - 0.5 + pad_x, the same for y. As a matrix,
  A = [[scale_x, 0, tx], [0, scale_y, ty], [0, 0, 1]] with tx = 0.5 * scale_x - 0.5 + pad_x;
  the model image's K is A K and its P is A P. image_proc's resize scales without the
  half-pixel terms, which puts its principal point up to half a pixel off.
- Distortion acts on normalised coordinates, before K: the model (D, distortion_model) and
  R carry over unchanged.
- The model image is a camera of its own: width x height = the model input, binning 0 and an
  all-zero ROI (full resolution), with the camera's ROI and binning folded into K and P.
"""

from dataclasses import dataclass, replace
import math
from typing import Optional, Sequence, Tuple

import numpy as np

from gps_denied_inference.errors import CameraInfoError
from gps_denied_inference.imaging.preprocess import ResizePlan


@dataclass(frozen=True)
class RegionOfInterest:
    """sensor_msgs/RegionOfInterest: a window of the full-resolution sensor; all zero = all."""

    x_offset: int = 0
    y_offset: int = 0
    height: int = 0
    width: int = 0
    do_rectify: bool = False

    @property
    def is_full(self) -> bool:
        """True for the all-zero ROI, which CameraInfo defines as the full resolution."""
        return (self.x_offset, self.y_offset, self.height, self.width) == (0, 0, 0, 0)


@dataclass(frozen=True)
class Calibration:
    """The fields of a sensor_msgs/CameraInfo but its header, as plain numbers."""

    width: int
    height: int
    distortion_model: str
    d: Tuple[float, ...]
    k: Tuple[float, ...]
    r: Tuple[float, ...]
    p: Tuple[float, ...]
    binning_x: int = 0
    binning_y: int = 0
    roi: RegionOfInterest = RegionOfInterest()

    @property
    def image_size(self) -> Tuple[int, int]:
        """(width, height) of the images this CameraInfo describes: ROI, then binning."""
        width, height = (self.width, self.height) if self.roi.is_full else (
            self.roi.width, self.roi.height)
        return width // max(self.binning_x, 1), height // max(self.binning_y, 1)


def is_uncalibrated(calibration: Calibration) -> bool:
    """K[0] = 0: CameraInfo's own mark of an uncalibrated camera (K, R, P, D left zero)."""
    return len(calibration.k) == 9 and calibration.k[0] == 0.0


def calibration_problem(calibration: Calibration) -> Optional[str]:
    """Why `calibration` gives no intrinsics (uncalibrated, malformed), or None if it does."""
    numbers = {'K': calibration.k, 'R': calibration.r, 'P': calibration.p, 'D': calibration.d}
    for name, size in (('K', 9), ('R', 9), ('P', 12)):
        if len(numbers[name]) != size:
            return f'{name} has {len(numbers[name])} values, expected {size}'
    if is_uncalibrated(calibration):
        return 'the camera is uncalibrated (K[0] = 0)'
    for name, values in numbers.items():
        if not all(math.isfinite(v) for v in values):
            return f'{name} holds a value that is not finite'
    if calibration.k[0] < 0.0 or calibration.k[4] <= 0.0:
        return f'focal lengths fx = {calibration.k[0]}, fy = {calibration.k[4]} must be > 0'
    if calibration.width == 0 or calibration.height == 0:
        return (f'calibration resolution {calibration.width} x {calibration.height} px is '
                'empty')
    return None


def mismatch(calibration: Calibration, width: int, height: int) -> Optional[str]:
    """Why `calibration` does not describe a width x height frame, or None if it does."""
    problem = calibration_problem(calibration)
    if problem is not None:
        return problem
    described = calibration.image_size
    if described != (width, height):
        return (f'the CameraInfo describes {described[0]} x {described[1]} px images '
                f'(calibration {calibration.width} x {calibration.height}, binning '
                f'{calibration.binning_x} x {calibration.binning_y}, ROI '
                f'{"full" if calibration.roi.is_full else _roi_text(calibration.roi)}), '
                f'the frame is {width} x {height} px')
    return None


def camera_image_calibration(calibration: Calibration) -> Calibration:
    """The CameraInfo of the camera image itself: ROI and binning folded into K and P."""
    bin_x, bin_y = max(calibration.binning_x, 1), max(calibration.binning_y, 1)
    offset_x, offset_y = calibration.roi.x_offset, calibration.roi.y_offset
    to_image = np.array([[1.0 / bin_x, 0.0, -offset_x / bin_x],
                         [0.0, 1.0 / bin_y, -offset_y / bin_y],
                         [0.0, 0.0, 1.0]])
    width, height = calibration.image_size
    return _transformed(calibration, to_image, width, height)


def model_image_calibration(calibration: Calibration, plan: ResizePlan) -> Calibration:
    """The CameraInfo of the model image made from a camera frame by `plan`.

    Raises CameraInfoError, saying why, when `calibration` gives no intrinsics or describes
    images of another size than the frame's.
    """
    problem = mismatch(calibration, plan.src_width, plan.src_height)
    if problem is not None:
        raise CameraInfoError(problem)
    camera = camera_image_calibration(calibration)
    to_model = np.array([[plan.scale_x, 0.0, 0.5 * plan.scale_x - 0.5 + plan.pad_x],
                         [0.0, plan.scale_y, 0.5 * plan.scale_y - 0.5 + plan.pad_y],
                         [0.0, 0.0, 1.0]])
    return _transformed(camera, to_model, plan.model_width, plan.model_height)


def _transformed(calibration: Calibration, pixels: np.ndarray, width: int,
                 height: int) -> Calibration:
    """`calibration` of the image whose pixels are `pixels` @ (the old image's pixels)."""
    k = pixels @ np.asarray(calibration.k, np.float64).reshape(3, 3)
    p = pixels @ np.asarray(calibration.p, np.float64).reshape(3, 4)
    return replace(calibration, width=width, height=height, k=_floats(k.ravel()),
                   p=_floats(p.ravel()), binning_x=0, binning_y=0, roi=RegionOfInterest())


def _floats(values: Sequence[float]) -> Tuple[float, ...]:
    return tuple(float(v) for v in values)


def _roi_text(roi: RegionOfInterest) -> str:
    return f'{roi.width} x {roi.height} at ({roi.x_offset}, {roi.y_offset})'
