"""The benchmark's messages: camera frames at three sizes, and a model's outputs as it sends them.

Messages are built before a timed phase and only re-stamped at publish, so the camera measures
transport and the node, not its own message construction. Stamp = wall clock at publish: latency
is the receiver's wall clock minus the stamp (same host, same clock).
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
        """Bytes per pixel: mono8 1, rgb8 3."""
        return {'mono8': 1, 'rgb8': 3}[self.encoding]

    @property
    def nbytes(self) -> int:
        """Pixel bytes of one frame."""
        return self.width * self.height * self.channels


FRAME_KINDS: Dict[str, FrameKind] = {
    'mono8_640x480': FrameKind('mono8', 640, 480),
    'rgb8_640x480': FrameKind('rgb8', 640, 480),
    'rgb8_1280x720': FrameKind('rgb8', 1280, 720),
}


def frame_messages(scene: Any, kind: FrameKind, count: int = FRAME_POOL) -> List[Any]:
    """`count` consecutive frames of `scene` as ready-to-publish Image messages."""
    from sensor_msgs.msg import Image

    from gps_denied_inference.imaging.output_encoding import message_data

    messages = []
    for i in range(count):
        pixels = scene.frame(i, width=kind.width, height=kind.height, encoding=kind.encoding)
        msg = Image(height=kind.height, width=kind.width, encoding=kind.encoding,
                    is_bigendian=0, step=kind.width * kind.channels)
        msg.data = message_data(pixels)
        messages.append(msg)
    return messages


def output_messages(manifest: Any) -> Dict[str, Any]:
    """{output name: Image} laid out as the node publishes that output of `manifest`.

    The return floor sends these: the same sizes and encodings as the node's outputs, so it
    measures what carrying one frame's results back costs. The values are random (seeded);
    the transport does not look at them.
    """
    import numpy as np
    from sensor_msgs.msg import Image

    from gps_denied_inference.imaging.output_encoding import image_layout_for, message_data

    rng = np.random.default_rng(0)
    messages = {}
    for spec in manifest.outputs:
        layout = image_layout_for(spec.shape, spec.dtype, spec.name)
        msg = Image(height=layout.height, width=layout.width, encoding=layout.encoding,
                    is_bigendian=0, step=layout.step)
        msg.data = message_data(rng.integers(0, 256, layout.nbytes, dtype=np.uint8))
        messages[spec.name] = msg
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
