"""A procedurally rendered aerial scene: camera frames for the demo and benchmarks, no assets.

`AerialScene` draws one large top-down texture once (fractal value-noise terrain, striped
fields, roads with lane marks, buildings with shadows, trees), deterministically from a
seed. `frame(i)` is what a nadir camera sees at frame i of a 30 Hz flight: one
cv2.warpAffine of that texture by the camera's pose, a smooth closed path (under 3.6 px of
motion per frame at the default size) with a slowly swinging heading (within +-5 degrees).
Buildings, lane marks and field corners give a corner detector plenty to find.
"""

from dataclasses import dataclass
import math
from typing import Tuple

import cv2
import numpy as np

from gps_denied_inference.errors import ConfigError
from gps_denied_inference.imaging.preprocess import convert_color

FRAME_RATE_HZ = 30.0
FRAME_ENCODINGS = ('rgb8', 'bgr8', 'mono8')
MIN_SIZE_PX = 256
# Path: centre +- PATH_EXTENT of the texture size, periods in seconds; heading swing.
PATH_EXTENT = 0.3
PATH_PERIODS_S = (60.0, 45.0)
HEADING_SWING_DEG = 5.0
HEADING_PERIOD_S = 20.0
# RGB colours.
_TERRAIN = np.array([(52, 84, 38), (78, 112, 52), (124, 132, 74), (150, 128, 92),
                     (112, 92, 70)], np.float32)
_CROPS = [(96, 138, 60), (176, 160, 90), (130, 104, 76), (70, 110, 48), (190, 178, 120)]
_ROOFS = [(168, 72, 58), (120, 120, 124), (196, 188, 176), (86, 90, 98), (150, 96, 70)]
_ROAD = (98, 98, 96)
_LANE_MARK = (226, 226, 214)
_TREE = (34, 66, 30)


@dataclass(frozen=True)
class CameraPose:
    """Where frame i looks: the texture pixel at the image centre, and the image's heading."""

    x: float
    y: float
    heading_deg: float


def _check_size(owner: str, width: object, height: object, limit: Tuple[int, int]) -> None:
    for name, value, most in (('width', width, limit[0]), ('height', height, limit[1])):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= most:
            raise ConfigError(f'{owner} {name} = {value!r} is invalid: must be an integer in '
                              f'[1, {most}]')


def _point(xy: np.ndarray) -> Tuple[int, int]:
    """A point as OpenCV drawing functions take it."""
    return int(round(float(xy[0]))), int(round(float(xy[1])))


def _region(texture: np.ndarray, points: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """The part of `texture` around `points`, clipped (maybe empty), and its top-left x, y."""
    height, width = texture.shape[:2]
    low = np.clip(np.floor(points.min(axis=0)).astype(int) - 2, 0, (width, height))
    high = np.clip(np.ceil(points.max(axis=0)).astype(int) + 3, low, (width, height))
    return texture[low[1]:high[1], low[0]:high[0]], low


def _fractal_noise(rng: np.random.Generator, width: int, height: int, base_cells: int,
                   octaves: int) -> np.ndarray:
    """Value noise summed over octaves (each twice as fine, half as strong), in [0, 1]."""
    total = np.zeros((height, width), np.float32)
    for octave in range(octaves):
        cells = base_cells * 2 ** octave
        grid = rng.random((cells + 1, cells + 1), dtype=np.float32)
        total += cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC) * 0.5 ** octave
    total -= total.min()
    return total / max(float(total.max()), 1e-6)


class AerialScene:
    """A seeded top-down world; frames are views of it along a smooth 30 Hz flight path."""

    def __init__(self, seed: int, size: Tuple[int, int] = (2048, 2048)) -> None:
        """Draw the texture (width x height = `size`); about a second at the default size."""
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ConfigError(f'AerialScene seed = {seed!r} is invalid: must be an integer')
        width, height = size
        _check_size('AerialScene size', width, height, (1 << 14, 1 << 14))
        if min(width, height) < MIN_SIZE_PX:
            raise ConfigError(f'AerialScene size = {size!r} is invalid: both sides must be at '
                              f'least {MIN_SIZE_PX} px')
        self.seed = seed
        self.size = (width, height)
        rng = np.random.default_rng(seed)
        texture = self._terrain(rng, width, height)
        self._fields(rng, texture)
        self._roads(rng, texture)
        self._buildings(rng, texture)
        self._trees(rng, texture)
        grain = rng.standard_normal(texture.shape, dtype=np.float32)
        grain *= 3.0
        texture += grain
        del grain
        np.clip(texture, 0, 255, out=texture)
        texture = cv2.GaussianBlur(texture.astype(np.uint8), (3, 3), 0)
        texture.flags.writeable = False
        self._rgb = texture
        self._mono = cv2.cvtColor(texture, cv2.COLOR_RGB2GRAY)
        self._mono.flags.writeable = False
        self._phase = rng.uniform(0.0, 2.0 * math.pi)

    @staticmethod
    def _terrain(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
        """Smoothly varying ground colour, float32 RGB."""
        scale = max(width, height) // 256
        elevation = _fractal_noise(rng, width, height, 2 * scale, 6)
        moisture = _fractal_noise(rng, width, height, 4 * scale, 4)
        stops = np.linspace(0.0, 1.0, len(_TERRAIN))
        texture = np.empty((height, width, 3), np.float32)
        for channel in range(3):
            texture[..., channel] = np.interp(elevation, stops, _TERRAIN[:, channel])
        texture *= (0.8 + 0.4 * moisture)[..., None]
        return texture

    @staticmethod
    def _fields(rng: np.random.Generator, texture: np.ndarray) -> None:
        """Rotated rectangular fields with crop rows."""
        height, width = texture.shape[:2]
        for _ in range(width * height // 65536):
            centre = (float(rng.uniform(0, width)), float(rng.uniform(0, height)))
            extent = (float(rng.uniform(80, 260)), float(rng.uniform(60, 200)))
            angle = float(rng.uniform(0, 180))
            colour = np.array(_CROPS[rng.integers(len(_CROPS))], np.float32)
            spacing = float(rng.uniform(5, 9))
            corners = cv2.boxPoints((centre, extent, angle))
            region, origin = _region(texture, corners)
            if region.size == 0:
                continue
            local = (corners - origin).astype(np.int32)
            mask = np.zeros(region.shape[:2], np.uint8)
            cv2.fillConvexPoly(mask, local, 255)
            rows = np.zeros_like(mask)
            theta = math.radians(angle)
            along = np.array([math.cos(theta), math.sin(theta)]) * max(extent)
            normal = np.array([-math.sin(theta), math.cos(theta)])
            middle = np.array(centre) - origin
            for offset in np.arange(-max(extent), max(extent), spacing):
                start, end = middle + normal * offset - along, middle + normal * offset + along
                cv2.line(rows, _point(start), _point(end), 255, 2)
            inside = mask > 0
            shade = np.where(rows[inside] > 0, 0.82, 1.0).astype(np.float32)
            region[inside] = colour * shade[:, None]

    @staticmethod
    def _roads(rng: np.random.Generator, texture: np.ndarray) -> None:
        """Winding roads across the whole texture, with dashed centre lines."""
        height, width = texture.shape[:2]
        for road in range(max(2, max(width, height) // 512)):
            steps = 12
            if road % 2:
                xs = np.linspace(-50, width + 50, steps)
                ys = rng.uniform(0, height) + np.cumsum(rng.normal(0, height / 20, steps))
            else:
                ys = np.linspace(-50, height + 50, steps)
                xs = rng.uniform(0, width) + np.cumsum(rng.normal(0, width / 20, steps))
            points = np.stack([xs, ys], axis=1).astype(np.int32)
            cv2.polylines(texture, [points], False, _ROAD, 16, cv2.LINE_AA)
            for start, end in zip(points[:-1], points[1:]):
                length = float(np.hypot(*(end - start)))
                for t in np.arange(0.0, length - 12.0, 24.0):
                    a = start + (end - start) * (t / length)
                    b = start + (end - start) * ((t + 12.0) / length)
                    cv2.line(texture, tuple(int(v) for v in a), tuple(int(v) for v in b),
                             _LANE_MARK, 2)

    @staticmethod
    def _buildings(rng: np.random.Generator, texture: np.ndarray) -> None:
        """Rotated boxes with a cast shadow and a roof ridge."""
        height, width = texture.shape[:2]
        for _ in range(width * height // 8192):
            centre = (float(rng.uniform(0, width)), float(rng.uniform(0, height)))
            extent = (float(rng.uniform(14, 48)), float(rng.uniform(12, 36)))
            angle = float(rng.uniform(0, 90))
            colour = _ROOFS[rng.integers(len(_ROOFS))]
            shadow = cv2.boxPoints(((centre[0] + 7, centre[1] + 9), extent, angle))
            region, origin = _region(texture, shadow)
            if region.size:
                mask = np.zeros(region.shape[:2], np.uint8)
                cv2.fillConvexPoly(mask, (shadow - origin).astype(np.int32), 255)
                region[mask > 0] *= 0.45
            roof = cv2.boxPoints((centre, extent, angle)).astype(np.int32)
            cv2.fillConvexPoly(texture, roof, colour)
            cv2.line(texture, _point((roof[0] + roof[1]) / 2), _point((roof[2] + roof[3]) / 2),
                     tuple(0.7 * c for c in colour), 2)

    @staticmethod
    def _trees(rng: np.random.Generator, texture: np.ndarray) -> None:
        """Round crowns with a shadow, in clumps."""
        height, width = texture.shape[:2]
        for _ in range(width * height // 32768):
            clump = rng.uniform((0, 0), (width, height))
            for offset in rng.normal(0, 30, (int(rng.integers(4, 20)), 2)):
                x, y = (int(v) for v in clump + offset)
                radius = int(rng.integers(3, 8))
                cv2.circle(texture, (x + 3, y + 4), radius, (20, 32, 18), -1, cv2.LINE_AA)
                cv2.circle(texture, (x, y), radius, _TREE, -1, cv2.LINE_AA)

    def camera_pose(self, i: int) -> CameraPose:
        """The camera's pose at frame i (ground truth for odometry checks)."""
        t = i / FRAME_RATE_HZ
        width, height = self.size
        x = width / 2 + PATH_EXTENT * width * math.sin(2 * math.pi * t / PATH_PERIODS_S[0])
        y = height / 2 + PATH_EXTENT * height * math.sin(2 * math.pi * t / PATH_PERIODS_S[1]
                                                         + self._phase)
        heading = HEADING_SWING_DEG * math.sin(2 * math.pi * t / HEADING_PERIOD_S)
        return CameraPose(x, y, heading)

    def frame(self, i: int, width: int = 640, height: int = 480,
              encoding: str = 'rgb8') -> np.ndarray:
        """Frame i, height x width (x 3 for rgb8/bgr8), uint8, C-contiguous and new."""
        if not isinstance(i, int) or isinstance(i, bool) or i < 0:
            raise ConfigError(f'AerialScene frame index = {i!r} is invalid: must be an '
                              'integer >= 0')
        _check_size('AerialScene frame', width, height, self.size)
        if encoding not in FRAME_ENCODINGS:
            raise ConfigError(f'AerialScene frame encoding = {encoding!r} is invalid: must be '
                              'one of ' + ', '.join(FRAME_ENCODINGS))
        pose = self.camera_pose(i)
        theta = math.radians(pose.heading_deg)
        cos, sin = math.cos(theta), math.sin(theta)
        # Image pixel (u, v) -> texture: rotate about the image centre, then move to the pose.
        to_texture = np.array([
            [cos, -sin, pose.x - cos * width / 2 + sin * height / 2],
            [sin, cos, pose.y - sin * width / 2 - cos * height / 2]])
        source = self._mono if encoding == 'mono8' else self._rgb
        pixels = cv2.warpAffine(source, to_texture, (width, height),
                                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REFLECT_101)
        if encoding == 'bgr8':
            pixels = convert_color(pixels, cv2.COLOR_RGB2BGR)
        return pixels
