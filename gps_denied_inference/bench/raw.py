"""The benchmark's limits: ONNX Runtime alone, with the node's session settings.

`raw_runs` times `session.run` on an already preprocessed tensor in a tight loop (the node
cannot beat it); the driver also runs one `timed_run` right before each node phase, so the
node is compared with raw numbers measured seconds apart, not minutes. `raw_startups` times
creating the session from the file plus one warm-up run (what configure + activate do,
without the gate, the budget and the services). `callback_costs` times what the node's
subscription callback does per frame (decode, then preprocess to the model's input), per
camera format: the executor thread's price for having the next input ready. The session
options match OnnxRuntimeRuntime's: one intra-op thread, sequential, no spinning.
"""

import time
from typing import Any, Dict, List

import numpy as np

from gps_denied_inference.artifacts.manifest import Manifest
from gps_denied_inference.bench.frames import FRAME_KINDS
from gps_denied_inference.imaging.decode import decode_image
from gps_denied_inference.imaging.preprocess import preprocess


def create_session(path: str) -> Any:
    """An InferenceSession configured as the node configures its own."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    options.add_session_config_entry('session.intra_op.allow_spinning', '0')
    options.add_session_config_entry('session.inter_op.allow_spinning', '0')
    return onnxruntime.InferenceSession(path, sess_options=options,
                                        providers=['CPUExecutionProvider'])


def _frame_fields(scene: Any, kind: str) -> Dict[str, Any]:
    """decode_image's arguments for scene frame 0 of `kind`, as a message carries them."""
    frame = FRAME_KINDS[kind]
    pixels = scene.frame(0, width=frame.width, height=frame.height, encoding=frame.encoding)
    return {'encoding': frame.encoding, 'height': frame.height, 'width': frame.width,
            'step': frame.width * frame.channels, 'is_bigendian': 0, 'data': pixels.tobytes()}


def preprocessed_input(manifest: Manifest, scene: Any, kind: str = 'mono8_640x480') -> np.ndarray:
    """The tensor the node would feed for scene frame 0 of `kind` (decode, then preprocess)."""
    return preprocess(decode_image(**_frame_fields(scene, kind)), manifest.preprocess)


def callback_costs(manifest: Manifest, scene: Any, iterations: int) -> Dict[str, List[float]]:
    """{frame kind: seconds of decode + preprocess per frame}, `iterations` frames each."""
    costs = {}
    for kind in FRAME_KINDS:
        fields = _frame_fields(scene, kind)
        preprocess(decode_image(**fields), manifest.preprocess)
        seconds = []
        for _ in range(iterations):
            started = time.perf_counter()
            preprocess(decode_image(**fields), manifest.preprocess)
            seconds.append(time.perf_counter() - started)
        costs[kind] = seconds
    return costs


def timed_run(session: Any, manifest: Manifest, tensor: np.ndarray, seconds: float,
              min_iterations: int, period_s: float = 0.0) -> Dict[str, Any]:
    """One loop of session.run, at least `seconds` and `min_iterations`.

    Tight by default; with `period_s` each run starts one period after the previous one
    started, as frames arrive at a paced camera rate (a model that idles between frames
    runs each one colder than in a tight loop).
    """
    feeds = {manifest.inputs[0].name: tensor}
    names = [spec.name for spec in manifest.outputs]
    latencies: List[float] = []
    cpu_started = time.process_time()
    started = time.perf_counter()
    next_at = started
    while len(latencies) < min_iterations or time.perf_counter() - started < seconds:
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        begin = time.perf_counter()
        session.run(names, feeds)
        latencies.append(time.perf_counter() - begin)
        next_at = begin + period_s
    elapsed = time.perf_counter() - started
    return {'latencies_s': latencies, 'throughput_hz': len(latencies) / elapsed,
            'cpu_per_run_s': (time.process_time() - cpu_started) / len(latencies)}


def raw_runs(path: str, manifest: Manifest, tensor: np.ndarray, repeats: int,
             seconds: float, min_iterations: int) -> List[Dict[str, Any]]:
    """`repeats` tight loops of session.run on one warmed-up session."""
    session = create_session(path)
    session.run([spec.name for spec in manifest.outputs], {manifest.inputs[0].name: tensor})
    return [timed_run(session, manifest, tensor, seconds, min_iterations)
            for _ in range(repeats)]


def raw_startups(path: str, manifest: Manifest, tensor: np.ndarray,
                 repeats: int) -> List[float]:
    """Seconds to create the session and run one warm-up, `repeats` times."""
    feeds = {manifest.inputs[0].name: tensor}
    names = [spec.name for spec in manifest.outputs]
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        session = create_session(path)
        session.run(names, feeds)
        times.append(time.perf_counter() - started)
        del session
    return times
