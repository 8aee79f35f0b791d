"""One model's outputs as sensor_msgs/Image messages, published with the frame's header.

Per frame and output the only copy the node makes is rclpy's own, from the runtime's output
into the C message as it publishes: the message's data is a view of the output tensor
(`encode_output`), not a copy of it. The generated Image setter accepts only an
array('B') without copying each value, and building one copies the whole tensor while
holding the GIL (1.2 and 4.9 MB per frame for SuperPoint's dense heads at 640x480), so the
view goes into the field the setter would fill: every rosidl_generator_py message from
Humble on keeps a field in a `_<name>` slot, and its C conversion takes any buffer with one
memcpy. A message class without that slot gets the copy. The view is dropped right after
publishing, so the message never keeps an output alive.

One Image per output is built once and reused while the output's shape and dtype stay the
same: each frame sets the header and the data. One ModelWorker publishes one frame at a
time, so a message is never in two publishes at once.
"""

from array import array
from typing import Any, Dict, Tuple

import numpy as np

from gps_denied_inference.imaging.output_encoding import (
    encode_output,
    image_layout_for,
    message_data,
    OutputLayout,
)

_EMPTY = array('B')


def zero_copy_supported(message_type: Any) -> bool:
    """True when `message_type` keeps its uint8[] data in a `_data` slot (rosidl Python)."""
    return '_data' in getattr(message_type, '__slots__', ())


def attach_data(msg: Any, data: np.ndarray, zero_copy: bool) -> None:
    """Give `msg` the encoded bytes: the view itself when `zero_copy`, else an array('B')."""
    if zero_copy:
        msg._data = data  # noqa: SLF001 - the setter would copy; see the module docstring
    else:
        msg.data = message_data(data)


class OutputPublisher:
    """Publishes a model's outputs on their publishers; callable as the worker's PublishFn."""

    def __init__(self, publishers: Dict[str, Any], nonfinite_publisher: Any,
                 message_type: Any = None) -> None:
        if message_type is None:
            from sensor_msgs.msg import Image
            message_type = Image
        self._publishers = publishers
        self._nonfinite = nonfinite_publisher
        self._type = message_type
        self._zero_copy = zero_copy_supported(message_type)
        # Per output: (shape, dtype) -> its message and layout, for the last shape seen.
        self._messages: Dict[str, Tuple[Tuple[Any, str], Any, OutputLayout]] = {}

    @property
    def zero_copy(self) -> bool:
        """True when messages carry views of the outputs (no copy before rclpy's own)."""
        return self._zero_copy

    def __call__(self, header: Any, outputs: Dict[str, np.ndarray], nonfinite: bool) -> None:
        """Publish every output with `header`, then the header on nonfinite_frames if flagged."""
        for name, tensor in outputs.items():
            msg, layout = self._message(name, tensor)
            msg.header = header
            attach_data(msg, encode_output(tensor, layout), self._zero_copy)
            try:
                self._publishers[name].publish(msg)
            finally:
                msg.data = _EMPTY
        if nonfinite:
            self._nonfinite.publish(header)

    def _message(self, name: str, tensor: np.ndarray) -> Tuple[Any, OutputLayout]:
        key = (tensor.shape, tensor.dtype.str)
        cached = self._messages.get(name)
        if cached is None or cached[0] != key:
            layout = image_layout_for(tensor.shape, tensor.dtype, name=name)
            msg = self._type(height=layout.height, width=layout.width,
                             encoding=layout.encoding, is_bigendian=0, step=layout.step)
            cached = self._messages[name] = (key, msg, layout)
        return cached[1], cached[2]

