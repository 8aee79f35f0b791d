"""What the check families share: the options, a scratch folder, the GPU (if any), the demo model.

TensorRT and PyCUDA are imported here lazily, once, and only through the runtime's own
helpers; when either is missing, or the GPU cannot be opened, `gpu_missing` says why and
every device check reports that reason. The demo ONNX model and the FP16 engine built from it
are made once and reused by the later families.
"""

from dataclasses import dataclass, field
from pathlib import Path
import statistics
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from gps_denied_inference.artifacts.gate import GateExpectation
from gps_denied_inference.errors import GpsDeniedInferenceError
from gps_denied_inference.validation import GIB

MIB = 1 << 20


@dataclass(frozen=True)
class SelftestOptions:
    """Every knob of the selftest, with the defaults a flight engineer runs."""

    work_dir: Path
    params: Optional[Path] = None
    device_index: int = 0
    height: int = 480
    width: int = 640
    loads: int = 10
    infer_runs: int = 100
    cycles: int = 20
    sync_runs: int = 50
    load_p95_limit_s: float = 5.0
    latency_limit_ms: float = 100.0
    latency_limits_ms: Dict[str, float] = field(default_factory=dict)
    gpu_budget_bytes: int = 4 * GIB
    host_budget_bytes: int = 3 * GIB // 2
    memory_tolerance_bytes: int = 8 * MIB
    ledger_slack_bytes: int = 64 * MIB
    sync_cpu_limit: float = 0.5
    correctness_min_match: float = 0.9
    correctness_max_score_error: float = 0.05
    require_gpu: bool = False
    etc_root: str = '/etc'
    sys_root: str = '/sys'
    proc_root: str = '/proc'
    thermal_root: str = '/sys/class/thermal'
    nvpmodel: Sequence[str] = ('nvpmodel', '-q')

    def describe(self) -> Dict[str, Any]:
        """The options as JSON-friendly values (the report's `options`)."""
        return {name: (str(value) if isinstance(value, Path) else
                       list(value) if isinstance(value, tuple) else value)
                for name, value in vars(self).items()}


class Gpu:
    """TensorRT and PyCUDA modules and the session's retained primary context."""

    def __init__(self, trt: Any, cuda: Any, primary: Any, proc_root: str = '/proc') -> None:
        self.trt = trt
        self.cuda = cuda
        self.primary = primary
        self.proc_root = proc_root

    def device_name(self) -> str:
        """The name builds record and the gate compares: the device-tree model, else CUDA's.

        CUDA calls every Jetson Orin 'Orin'; the board's model string tells AGX, NX and Nano
        apart.
        """
        from gps_denied_inference.runtimes.device_probe import tegra_model_name
        return tegra_model_name(self.proc_root) or self.primary.describe()[0]

    def expectation(self) -> GateExpectation:
        """What the gate demands of an engine for this host: installed TensorRT, this GPU."""
        from gps_denied_inference.runtimes.device_probe import installed_tensorrt_version
        _, capability = self.primary.describe()
        return GateExpectation('tensorrt', None, installed_tensorrt_version()
                               or str(self.trt.__version__), capability, self.device_name())


class Session:
    """Shared state of one selftest run."""

    def __init__(self, options: SelftestOptions) -> None:
        self.options = options
        self.work_dir = Path(options.work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._gpu: Optional[Gpu] = None
        self._gpu_missing: Optional[str] = None
        self._cuda_missing: Optional[str] = None
        self._cuda: Any = None
        self._opened = False
        self.demo_onnx: Optional[Path] = None
        self.demo_engine: Optional[Path] = None
        self.engine_missing = 'the FP16 demo engine was not built (see build/)'
        self._scene: Any = None
        self.context_overhead: Optional[int] = None
        self.context_overhead_note = 'the GPU was not opened'

    # -- GPU ---------------------------------------------------------------------------------
    def _open(self) -> None:
        if self._opened:
            return
        self._opened = True
        from gps_denied_inference.runtimes.cuda_context import (
            import_cuda_driver,
            import_tensorrt,
            PrimaryContext,
        )
        try:
            self._cuda = import_cuda_driver()
        except GpsDeniedInferenceError as err:
            self._cuda_missing = str(err)
        trt = None
        try:
            trt = import_tensorrt()
        except GpsDeniedInferenceError as err:
            self._gpu_missing = str(err)
        if self._cuda is None:
            self._gpu_missing = '; '.join(r for r in (self._gpu_missing, self._cuda_missing)
                                          if r)
            return
        self._measure_context_overhead()
        try:
            primary = PrimaryContext(self._cuda, self.options.device_index)
        except Exception as err:  # noqa: B902 - pycuda raises its own Error classes
            self._cuda_missing = (f'no usable CUDA device {self.options.device_index}: '
                                  f'{type(err).__name__}: {err}')
            self._gpu_missing = self._gpu_missing or self._cuda_missing
            self._cuda = None
            return
        self.primary = primary
        if trt is not None:
            self._gpu = Gpu(trt, self._cuda, primary, self.options.proc_root)

    def _measure_context_overhead(self) -> None:
        """On a Jetson, the memory the first primary context takes (before the session's own).

        Off a Jetson the GPU has its own memory and the host's MemAvailable says nothing
        about it, so nothing is measured and the note says why.
        """
        from gps_denied_inference.runtimes import cuda_context
        from gps_denied_inference.runtimes.device_probe import l4t_release
        options = self.options
        if l4t_release(options.etc_root) is None:
            self.context_overhead_note = (f'not a Jetson (no {options.etc_root}/'
                                          'nv_tegra_release): GPU memory is not host memory')
            return
        meminfo = f'{options.proc_root}/meminfo'
        try:
            measured = cuda_context.measure_context_overhead(
                self._cuda, options.device_index,
                lambda: cuda_context.mem_available_bytes(meminfo))
        except Exception as err:  # noqa: B902 - pycuda raises its own Error classes
            self.context_overhead_note = f'measuring failed: {type(err).__name__}: {err}'
            return
        self.context_overhead = measured
        self.context_overhead_note = (f'{meminfo} unreadable' if measured is None else
                                      'MemAvailable drop at the first retain')

    @property
    def gpu(self) -> Optional[Gpu]:
        """TensorRT + PyCUDA + device, or None (then `gpu_missing` says why)."""
        self._open()
        return self._gpu

    @property
    def gpu_missing(self) -> str:
        """Why TensorRT checks cannot run ('' when they can)."""
        self._open()
        return self._gpu_missing or ''

    @property
    def cuda(self) -> Any:
        """pycuda.driver with a usable device, or None (then `cuda_missing` says why)."""
        self._open()
        return self._cuda

    @property
    def cuda_missing(self) -> str:
        """Why PyCUDA-only checks cannot run ('' when they can)."""
        self._open()
        return self._cuda_missing or ''

    def engine_ready(self) -> str:
        """'' when the TensorRT device checks can run on the demo engine, else why not."""
        if self.gpu is None:
            return self.gpu_missing
        if self.demo_engine is None:
            return self.engine_missing
        return ''

    def free_bytes(self) -> Optional[int]:
        """Device free memory through PyCUDA, or None without a device."""
        if self.cuda is None:
            return None
        with self.primary.current():
            free, _ = self.cuda.mem_get_info()
        return int(free)

    # -- demo data ---------------------------------------------------------------------------
    def demo_frame(self, index: int) -> Any:
        """Frame `index` of the procedural aerial scene, mono8, at the demo model's size."""
        if self._scene is None:
            from gps_denied_inference.demo.scene import AerialScene
            side = max(512, 2 * self.options.width, 2 * self.options.height)
            self._scene = AerialScene(seed=7, size=(side, side))
        return self._scene.frame(index, self.options.width, self.options.height, 'mono8')

    def demo_input(self, index: int = 0) -> Any:
        """The demo model's input for frame `index`: float32 [1, 1, H, W] in [0, 1]."""
        import numpy as np
        frame = self.demo_frame(index).astype(np.float32) / np.float32(255.0)
        return frame[None, None]

    def close(self) -> None:
        """Give back the primary context the session retained."""
        primary = getattr(self, 'primary', None)
        if primary is not None:
            primary.detach()


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p95 of 20 values is the 19th smallest)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError('percentile of no values')
    rank = max(1, min(len(ordered), int(-(-fraction * len(ordered) // 1))))
    return ordered[rank - 1]


def p50_p95(values: Sequence[float]) -> Tuple[float, float]:
    """(median, nearest-rank 95th percentile)."""
    return statistics.median(values), percentile(values, 0.95)


def run_in_thread(name: str, target: Callable[[], Any]) -> Any:
    """Run `target` on a new thread named `name`; return its result or raise its error."""
    outcome: List[Any] = [None, None]

    def body() -> None:
        try:
            outcome[0] = target()
        except BaseException as err:  # noqa: B902 - handed back to the caller
            outcome[1] = err

    thread = threading.Thread(target=body, name=name)
    thread.start()
    thread.join()
    if outcome[1] is not None:
        raise outcome[1]
    return outcome[0]


def mib(nbytes: Optional[float]) -> str:
    """Bytes as 'x.y MiB' ('n/a' for None)."""
    return 'n/a' if nbytes is None else f'{nbytes / MIB:.1f} MiB'
