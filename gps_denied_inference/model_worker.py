"""Two threads per model: newest frame -> decode -> preprocess -> infer, then -> publish.

The subscription callback only calls submit(), which stores the frame in a one-slot mailbox;
all work happens off the executor, so a slow model never blocks ROS callbacks. The inference
thread hands each result to a publishing thread through a one-slot handoff and goes straight
back to the model: checking, encoding and publishing one frame's outputs overlap the next
inference instead of adding to it. That matters for dense outputs (about 1.3 ms of Python for
5.9 MiB) and where the model runs on the GPU; for a few KiB of outputs the handoff costs
about 0.16 ms of latency more than publishing inline (README, "Benchmark"). The handoff
blocks while the previous result is still being published, so results are never queued or
dropped there, and they are published in frame order. A bad frame or a failed inference is
counted and reported; the worker always goes on.
"""

from dataclasses import dataclass
import queue
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

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
# One inferred frame on its way to the publishing thread: the frame, its outputs and the
# seconds the runtime's infer call took.
_Result = Tuple[Frame, Outputs, float]


class ModelWorker:
    """Runs one model on the newest frame, on its own two threads, until stopped."""

    def __init__(self, model: LoadedModel, stats: ModelStats, publish: PublishFn,
                 warn: Callable[[str], None],
                 is_throttled: Callable[[], bool] = lambda: False) -> None:
        self.model = model
        self.stats = stats
        self._publish = publish
        self._warn = warn
        self._is_throttled = is_throttled
        self._mailbox: FrameMailbox[Frame] = FrameMailbox()
        self._results: 'queue.Queue[Optional[_Result]]' = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._publishing: Optional[threading.Thread] = None

    def submit(self, frame: Frame) -> None:
        """Store the newest frame; an overwritten, unprocessed frame counts as dropped."""
        self.stats.on_received(self._mailbox.put(frame))

    def start(self) -> None:
        """Start the inference and publishing threads."""
        name = self.model.config.name
        self._publishing = threading.Thread(target=self._publish_results,
                                            name=f'publisher-{name}', daemon=True)
        self._thread = threading.Thread(target=self._run, name=f'worker-{name}', daemon=True)
        self._publishing.start()
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop after the frame in progress is published; a pending frame counts as dropped."""
        self._stop.set()
        if self._mailbox.clear():
            self.stats.on_dropped()
        self._mailbox.close()
        deadline = time.monotonic() + timeout_s
        for thread in (self._thread, self._publishing):
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread is not None and thread.is_alive()
                       for thread in (self._thread, self._publishing))

    def _infer(self, frame: Frame) -> Optional[Tuple[Outputs, float]]:
        """Decode, preprocess and infer one frame; None (counted, warned) when it failed.

        Returns the outputs and the seconds the runtime's infer call took.
        """
        name = self.model.config.name
        try:
            image = decode_image(frame.encoding, frame.height, frame.width, frame.step,
                                 frame.is_bigendian, frame.data)
        except ImageRejectedError as err:
            self.stats.on_rejected(err.reason, f'rejected frame: {err}')
            self._warn(f'model {name}: rejected input frame: {err}')
            return None
        try:
            tensor = preprocess(image, self.model.contract)
            started = time.monotonic()
            outputs = self.model.runtime.infer(self.model.handle,
                                               {self.model.input_name: tensor})
            return outputs, time.monotonic() - started
        except InferenceError as err:
            self.stats.on_failed(f'inference failed: {err}')
            self._warn(f'model {name}: inference failed, frame dropped: {err}')
        except Exception as err:  # noqa: B902 - a fault in one frame must not kill the worker
            self.stats.on_failed(f'{type(err).__name__}: {err}')
            self._warn(f'model {name}: unexpected fault, frame dropped: '
                       f'{type(err).__name__}: {err}')
        return None

    def _deliver(self, frame: Frame, outputs: Outputs, inference_s: float) -> bool:
        """Flag NaN/Inf, publish with the frame's header, count; True when published."""
        name = self.model.config.name
        try:
            nonfinite = any(count_nonfinite(array) for array in outputs.values())
            if nonfinite:
                self._warn(f'model {name}: output contains NaN or Inf; published and flagged')
            self._publish(frame.header, outputs, nonfinite)
        except Exception as err:  # noqa: B902 - e.g. a publish failure during shutdown
            self.stats.on_failed(f'{type(err).__name__}: {err}')
            self._warn(f'model {name}: fault while publishing: {err}')
            return False
        self.stats.on_processed(time.monotonic() - frame.received_at, nonfinite, inference_s)
        return True

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                frame = self._mailbox.take(timeout_s=0.1)
                if frame is None:
                    continue
                started = time.monotonic()
                inferred = self._infer(frame)
                if inferred is not None:
                    self._results.put((frame, *inferred))
                if self._is_throttled():
                    self._stop.wait(time.monotonic() - started)
        finally:
            self._results.put(None)

    def _publish_results(self) -> None:
        """Publish handed-off results in order until the inference thread says it is done."""
        while True:
            result = self._results.get()
            if result is None:
                return
            self._deliver(*result)
