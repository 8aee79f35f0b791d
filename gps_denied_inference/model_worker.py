"""One worker thread per model: newest frame -> decode -> preprocess -> infer -> publish.

The subscription callback only calls submit(), which stores the frame in a one-slot mailbox;
all work happens here, off the executor, so a slow model never blocks ROS callbacks. A bad
frame or a failed inference is counted and reported; the worker always goes on.
"""

from dataclasses import dataclass
import threading
import time
from typing import Any, Callable, Dict, Optional

import numpy as np

from gps_denied_inference.errors import ImageRejectedError, InferenceError
from gps_denied_inference.image_decode import decode_image
from gps_denied_inference.inference_core import LoadedModel
from gps_denied_inference.mailbox import FrameMailbox
from gps_denied_inference.model_stats import ModelStats
from gps_denied_inference.output_encoding import count_nonfinite
from gps_denied_inference.preprocess import preprocess


@dataclass(frozen=True)
class Frame:
    """The fields of one sensor_msgs/Image, by reference (no pixel copy in the callback)."""

    header: Any
    encoding: str
    height: int
    width: int
    step: int
    is_bigendian: int
    data: Any
    received_at: float


Outputs = Dict[str, np.ndarray]
PublishFn = Callable[[Any, Outputs, bool], None]


class ModelWorker:
    """Runs one model on the newest frame, on its own thread, until stopped."""

    def __init__(self, model: LoadedModel, stats: ModelStats, publish: PublishFn,
                 warn: Callable[[str], None],
                 is_throttled: Callable[[], bool] = lambda: False) -> None:
        self.model = model
        self.stats = stats
        self._publish = publish
        self._warn = warn
        self._is_throttled = is_throttled
        self._mailbox: FrameMailbox[Frame] = FrameMailbox()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def submit(self, frame: Frame) -> None:
        """Store the newest frame; an overwritten, unprocessed frame counts as dropped."""
        self.stats.on_received(self._mailbox.put(frame))

    def start(self) -> None:
        """Start the worker thread."""
        self._thread = threading.Thread(target=self._run, name=f'worker-{self.model.config.name}',
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop after the frame in progress; a pending frame counts as dropped."""
        self._stop.set()
        if self._mailbox.clear():
            self.stats.on_dropped()
        self._mailbox.close()
        if self._thread is not None:
            self._thread.join(timeout_s)
            return not self._thread.is_alive()
        return True

    def process(self, frame: Frame) -> bool:
        """Run one frame end to end; return True when its outputs were published."""
        name = self.model.config.name
        try:
            image = decode_image(frame.encoding, frame.height, frame.width, frame.step,
                                 frame.is_bigendian, frame.data)
        except ImageRejectedError as err:
            self.stats.on_rejected(err.reason, f'rejected frame: {err}')
            self._warn(f'model {name}: rejected input frame: {err}')
            return False
        try:
            tensor = preprocess(image, self.model.contract)
            outputs = self.model.runtime.infer(self.model.handle,
                                               {self.model.input_name: tensor})
        except InferenceError as err:
            self.stats.on_failed(f'inference failed: {err}')
            self._warn(f'model {name}: inference failed, frame dropped: {err}')
            return False
        except Exception as err:  # noqa: B902 - a fault in one frame must not kill the worker
            self.stats.on_failed(f'{type(err).__name__}: {err}')
            self._warn(f'model {name}: unexpected fault, frame dropped: '
                       f'{type(err).__name__}: {err}')
            return False
        nonfinite = any(count_nonfinite(array) for array in outputs.values())
        if nonfinite:
            self._warn(f'model {name}: output contains NaN or Inf; published and flagged')
        self._publish(frame.header, outputs, nonfinite)
        self.stats.on_processed(time.monotonic() - frame.received_at, nonfinite)
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            frame = self._mailbox.take(timeout_s=0.1)
            if frame is None:
                continue
            started = time.monotonic()
            try:
                self.process(frame)
            except Exception as err:  # noqa: B902 - e.g. a publish failure during shutdown
                self.stats.on_failed(f'{type(err).__name__}: {err}')
                self._warn(f'model {self.model.config.name}: fault while publishing: {err}')
            if self._is_throttled():
                self._stop.wait(time.monotonic() - started)
