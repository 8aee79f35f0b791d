"""Per model: decode and preprocess on arrival, then newest input -> infer -> publish.

submit() prepares each frame's input on the subscription callback's thread and stores it in a
one-slot mailbox; one inference thread only infers, and publishes the result itself or, when
another input already waits, hands it to a publishing thread, in frame order. The data path,
the threads and the measurements behind each choice: docs/design.md.
Each input carries the resize plan its tensor was made with, so the geometry published with a
frame's outputs (`publish_geometry`, called just before them) is the one its pixels went through.
"""

from dataclasses import dataclass
import queue
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from gps_denied_inference.errors import ImageRejectedError, InferenceError
from gps_denied_inference.imaging.decode import decode_image
from gps_denied_inference.imaging.output_encoding import count_nonfinite
from gps_denied_inference.imaging.preprocess import plan_resize, preprocess, ResizePlan
from gps_denied_inference.node.inference_core import LoadedModel
from gps_denied_inference.node.mailbox import FrameMailbox
from gps_denied_inference.node.model_stats import ModelStats


@dataclass(frozen=True)
class Frame:
    """The fields of one sensor_msgs/Image, by reference: submit() reads the pixels once."""

    header: Any
    encoding: str
    height: int
    width: int
    step: int
    is_bigendian: int
    data: Any
    received_at: float


@dataclass(frozen=True)
class _Input:
    """One frame ready for the model: header, input tensor, arrival, the resize it had."""

    header: Any
    tensor: np.ndarray
    received_at: float
    plan: ResizePlan


# The longest submit() waits for an idle inference thread to take its input: the default GIL
# switch interval, after which the interpreter itself would have made the submitting thread
# let go of the GIL for the waiting inference thread.
HANDOFF_TIMEOUT_S = 0.005

Outputs = Dict[str, np.ndarray]
PublishFn = Callable[[Any, Outputs, bool], None]
GeometryFn = Callable[[Any, ResizePlan], None]
# One inferred frame on its way to the publishing thread: the input, its outputs and the
# seconds the runtime's infer call took.
_Result = Tuple[_Input, Outputs, float]


class ModelWorker:
    """Runs one model on the newest frame, on its own two threads, until stopped."""

    def __init__(self, model: LoadedModel, stats: ModelStats, publish: PublishFn,
                 warn: Callable[[str], None],
                 is_throttled: Callable[[], bool] = lambda: False,
                 publish_geometry: Optional[GeometryFn] = None) -> None:
        self.model = model
        self.stats = stats
        self._publish = publish
        self._publish_geometry = publish_geometry
        self._warn = warn
        self._is_throttled = is_throttled
        self._mailbox: FrameMailbox[_Input] = FrameMailbox(HANDOFF_TIMEOUT_S)
        self._results: 'queue.Queue[Optional[_Result]]' = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._publishing: Optional[threading.Thread] = None

    def submit(self, frame: Frame) -> None:
        """Decode and preprocess `frame` on the caller's thread, then store its input.

        An overwritten, unprocessed input counts as dropped; a frame that cannot be decoded
        or preprocessed is counted and warned about, and nothing escapes to the caller.
        """
        name = self.model.config.name
        # Counted first: with the handoff, the model may publish the frame before put()
        # returns, and processed must never run ahead of received.
        self.stats.on_received()
        try:
            image = decode_image(frame.encoding, frame.height, frame.width, frame.step,
                                 frame.is_bigendian, frame.data)
            plan = plan_resize(image.height, image.width, self.model.contract)
            tensor = preprocess(image, self.model.contract, plan)
        except ImageRejectedError as err:
            self.stats.on_rejected(err.reason, f'rejected frame: {err}')
            self._warn(f'model {name}: rejected input frame: {err}')
            return
        except Exception as err:  # noqa: B902 - a bad frame must not reach the executor
            self.stats.on_failed(f'preprocessing failed: {type(err).__name__}: {err}')
            self._warn(f'model {name}: preprocessing failed, frame dropped: '
                       f'{type(err).__name__}: {err}')
            return
        if self._mailbox.put(_Input(frame.header, tensor, frame.received_at, plan)):
            self.stats.on_dropped()

    @property
    def waiting_for_input(self) -> bool:
        """True while the inference thread waits for an input: submit() hands it straight over."""
        return self._mailbox.taker_waiting

    def start(self) -> None:
        """Start the inference and publishing threads."""
        name = self.model.config.name
        self._publishing = threading.Thread(target=self._publish_results,
                                            name=f'publisher-{name}', daemon=True)
        self._thread = threading.Thread(target=self._run, name=f'worker-{name}', daemon=True)
        self._publishing.start()
        try:
            self._thread.start()
        except BaseException:
            self._results.put(None)  # only the inference thread would have ended it
            raise

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Stop after the frame in progress is published; a pending frame counts as dropped."""
        self._stop.set()
        if self._mailbox.clear():
            self.stats.on_dropped()
        self._mailbox.close()
        deadline = time.monotonic() + timeout_s
        # A thread that never started (start() failed half-way: no thread could be created)
        # has nothing to join; the one that did start must still be stopped.
        started = [thread for thread in (self._thread, self._publishing)
                   if thread is not None and thread.ident is not None]
        for thread in started:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in started)

    def _infer(self, item: _Input) -> Optional[Tuple[Outputs, float]]:
        """Infer one input; None (counted, warned) when it failed.

        Returns the outputs and the seconds the runtime's infer call took.
        """
        name = self.model.config.name
        try:
            started = time.monotonic()
            outputs = self.model.runtime.infer(self.model.handle,
                                               {self.model.input_name: item.tensor})
            return outputs, time.monotonic() - started
        except InferenceError as err:
            self.stats.on_failed(f'inference failed: {err}')
            self._warn(f'model {name}: inference failed, frame dropped: {err}')
        except Exception as err:  # noqa: B902 - a fault in one frame must not kill the worker
            self.stats.on_failed(f'{type(err).__name__}: {err}')
            self._warn(f'model {name}: unexpected fault, frame dropped: '
                       f'{type(err).__name__}: {err}')
        return None

    def _deliver(self, item: _Input, outputs: Outputs, inference_s: float) -> None:
        """Flag NaN/Inf, publish with the frame's header, count it published or failed."""
        name = self.model.config.name
        try:
            nonfinite = any(count_nonfinite(array) for array in outputs.values())
            if nonfinite:
                self._warn(f'model {name}: output contains NaN or Inf; published and flagged')
            if self._publish_geometry is not None:
                self._publish_geometry(item.header, item.plan)
            self._publish(item.header, outputs, nonfinite)
        except Exception as err:  # noqa: B902 - e.g. a publish failure during shutdown
            self.stats.on_failed(f'{type(err).__name__}: {err}')
            self._warn(f'model {name}: fault while publishing: {err}')
            return
        self.stats.on_processed(time.monotonic() - item.received_at, nonfinite, inference_s)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                item = self._mailbox.take(timeout_s=None)
                if item is None:
                    continue
                started = time.monotonic()
                inferred = self._infer(item)
                if inferred is not None:
                    self._publish_or_hand_off((item, *inferred))
                if self._is_throttled():
                    self._stop.wait(time.monotonic() - started)
        finally:
            self._results.put(None)

    def _publish_or_hand_off(self, result: _Result) -> None:
        """Hand off when an input waits for the model; otherwise publish here, in order."""
        if self._mailbox.pending:
            self._results.put(result)
            return
        self._results.join()
        self._deliver(*result)

    def _publish_results(self) -> None:
        """Publish handed-off results in order until the inference thread says it is done."""
        while True:
            result = self._results.get()
            try:
                if result is None:
                    return
                self._deliver(*result)
            finally:
                self._results.task_done()
