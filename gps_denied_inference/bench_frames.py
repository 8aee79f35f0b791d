"""The benchmark's camera frames: one aerial flight at three sizes, as sensor_msgs/Image.

Messages are built before a timed phase (building a 921 KB Image in Python costs about a
millisecond) and only re-stamped at publish, so the camera measures transport and the node,
not its own message construction. Stamp = wall clock at publish: latency is the receiver's
wall clock minus the stamp (same host, same clock).
"""

from dataclasses import dataclass
import time
from typing import Any, Dict, List

FRAME_POOL = 10


@dataclass(frozen=True)
class FrameKind:
    """One camera format the benchmark streams."""

    encoding: str
    width: int
    height: int

    @property
    def channels(self) -> int:
        """Bytes per pixel: mono8 1, rgb8 3, 32FC1 4."""
        return {'mono8': 1, 'rgb8': 3, '32FC1': 4}[self.encoding]

    @property
    def nbytes(self) -> int:
        """Pixel bytes of one frame."""
        return self.width * self.height * self.channels


FRAME_KINDS: Dict[str, FrameKind] = {
    'mono8_640x480': FrameKind('mono8', 640, 480),
    'rgb8_640x480': FrameKind('rgb8', 640, 480),
    'rgb8_1280x720': FrameKind('rgb8', 1280, 720),
}
# The size of the node's keypoints output (480x640 float32): what sending a result back costs.
OUTPUT_KINDS: Dict[str, FrameKind] = {'keypoints_32FC1_640x480': FrameKind('32FC1', 640, 480)}
ALL_KINDS: Dict[str, FrameKind] = {**FRAME_KINDS, **OUTPUT_KINDS}


def frame_messages(scene: Any, kind: FrameKind, count: int = FRAME_POOL) -> List[Any]:
    """`count` consecutive frames of `scene` as ready-to-publish Image messages."""
    from sensor_msgs.msg import Image

    messages = []
    for i in range(count):
        if kind.encoding == '32FC1':
            pixels = scene.frame(i, width=kind.width, height=kind.height,
                                 encoding='mono8').astype('<f4') / 255.0
        else:
            pixels = scene.frame(i, width=kind.width, height=kind.height,
                                 encoding=kind.encoding)
        msg = Image(height=kind.height, width=kind.width, encoding=kind.encoding,
                    is_bigendian=0, step=kind.width * kind.channels)
        msg.data = pixels.tobytes()
        messages.append(msg)
    return messages


def restamp(msg: Any, frame_id: str) -> None:
    """Set the header to `frame_id` and the wall clock now, just before publishing."""
    now = time.time_ns()
    msg.header.frame_id = frame_id
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now, 10 ** 9)


def age_s(header: Any) -> float:
    """Wall-clock seconds since the header's stamp."""
    now = time.time_ns()
    return (now - header.stamp.sec * 10 ** 9 - header.stamp.nanosec) * 1e-9
