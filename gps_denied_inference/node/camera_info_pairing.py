"""Which camera CameraInfo describes which processed frame; the model image's CameraInfo.

ROS-free and thread-safe: the node calls on_camera_info() from the CameraInfo subscription
and the model worker calls on_frame() just before it publishes a frame's outputs.

The rule, per frame:
1. The camera CameraInfo stamped exactly like the frame (as image_transport pairs an image
   with its CameraInfo). When it arrives after the frame's outputs were published (the two
   topics race), the model image's CameraInfo is published on its arrival, still with the
   frame's header, for any of the last HISTORY frames.
2. Only while the camera's CameraInfo stamps have never equalled a frame's (a publisher that
   stamps its own way, or stamps 0): the newest CameraInfo stamped before the frame.
A CameraInfo stamped after a frame never describes it; one that is uncalibrated (K[0] = 0),
malformed or made for another image size than the frame's gives that frame nothing. So the
geometry always follows the frame it belongs to: a driver that changes its resolution or
its calibration mid-flight stamps the new CameraInfo like the first frame it applies to.
"""

from collections import OrderedDict
from dataclasses import dataclass
import threading
from typing import Any, Callable, Optional, Tuple

from gps_denied_inference.errors import CameraInfoError
from gps_denied_inference.imaging.geometry import (
    Calibration,
    is_uncalibrated,
    model_image_calibration,
)
from gps_denied_inference.imaging.preprocess import ResizePlan

# Frames and CameraInfos remembered per model: a CameraInfo may arrive this many frames late.
HISTORY = 32

PublishCalibration = Callable[[Any, Calibration], None]


@dataclass(frozen=True)
class GeometryReport:
    """A model's geometry as /diagnostics shows it.

    `plan` is the pixel mapping of the newest processed frame (None before the first);
    `intrinsics` and `detail` say whether the newest frame decided got the model image's
    CameraInfo, and from which rule or why not; `problem` is set while the camera's
    CameraInfo exists but does not describe its frames.
    """

    topic: str
    resize: str
    model_width: int
    model_height: int
    plan: Optional[ResizePlan]
    intrinsics: bool
    detail: str
    received: int
    published: int
    missed: int
    problem: Optional[str]


class CameraInfoPairing:
    """Pairs one model's processed frames with its camera's CameraInfo by header stamp."""

    def __init__(self, publish: PublishCalibration, topic: str, resize: str, model_width: int,
                 model_height: int, history: int = HISTORY) -> None:
        self._publish = publish
        self._topic = topic
        self._resize = resize
        self._model_size = (model_width, model_height)
        self._history = history
        self._lock = threading.Lock()
        self._infos: 'OrderedDict[int, Calibration]' = OrderedDict()
        # Recent frames by stamp: (header, plan) while waiting for their CameraInfo, else None.
        self._frames: 'OrderedDict[int, Optional[Tuple[Any, ResizePlan]]]' = OrderedDict()
        self._paired = False
        self._plan: Optional[ResizePlan] = None
        self._status: Tuple[bool, str] = (False, f'no CameraInfo received on {topic}')
        self._problem: Optional[str] = None
        self._received = 0
        self._published = 0
        self._missed = 0

    @property
    def topic(self) -> str:
        """The camera's CameraInfo topic this pairing is fed from."""
        return self._topic

    def on_camera_info(self, stamp_ns: int, calibration: Calibration) -> None:
        """Remember a camera CameraInfo; serve the frame with its stamp if it waits for it."""
        with self._lock:
            self._received += 1
            self._infos[stamp_ns] = calibration
            self._infos.move_to_end(stamp_ns)
            while len(self._infos) > self._history:
                self._infos.popitem(last=False)
            if stamp_ns not in self._frames:
                return
            self._paired = True
            waiting = self._frames[stamp_ns]
            if waiting is not None:
                self._frames[stamp_ns] = None
                self._serve(waiting[0], waiting[1], calibration, 'the CameraInfo of its stamp')

    def on_frame(self, header: Any, stamp_ns: int, plan: ResizePlan) -> None:
        """A frame's outputs are about to be published: publish its geometry, or wait for it."""
        with self._lock:
            self._plan = plan
            exact = self._infos.get(stamp_ns)
            if exact is not None:
                self._paired = True
                self._remember(stamp_ns, None)
                self._serve(header, plan, exact, 'the CameraInfo of its stamp')
                return
            earlier = [stamp for stamp in self._infos if stamp < stamp_ns]
            if not self._paired and earlier:
                self._remember(stamp_ns, None)
                self._serve(header, plan, self._infos[max(earlier)],
                            'the newest CameraInfo stamped before it (stamps never paired)')
                return
            self._remember(stamp_ns, (header, plan))

    def report(self) -> GeometryReport:
        """The newest frame's mapping, whether it had intrinsics, and the counters."""
        with self._lock:
            return GeometryReport(self._topic, self._resize, self._model_size[0],
                                  self._model_size[1], self._plan, self._status[0],
                                  self._status[1], self._received, self._published,
                                  self._missed, self._problem)

    def _remember(self, stamp_ns: int, waiting: Optional[Tuple[Any, ResizePlan]]) -> None:
        self._frames[stamp_ns] = waiting
        self._frames.move_to_end(stamp_ns)
        while len(self._frames) > self._history:
            _, evicted = self._frames.popitem(last=False)
            if evicted is not None and self._received > 0:
                self._missed += 1
                self._status = (False, f'no CameraInfo stamped like the frame arrived within '
                                       f'{self._history} frames')

    def _serve(self, header: Any, plan: ResizePlan, calibration: Calibration,
               rule: str) -> None:
        try:
            model = model_image_calibration(calibration, plan)
        except CameraInfoError as err:
            self._status = (False, str(err))
            self._problem = None if is_uncalibrated(calibration) else (
                f'the CameraInfo on {self._topic} does not describe the frames: {err}')
            return
        self._publish(header, model)
        self._published += 1
        self._status = (True, f'from {rule}')
        self._problem = None
