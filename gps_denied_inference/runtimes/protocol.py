"""The InferenceRuntime protocol every strategy implements, and the factory that picks one.

A strategy's library (TensorRT, ONNX Runtime) is imported only inside the strategy's own
methods; this module and the factory import neither, so the package imports on any host.
"""

import importlib
import importlib.util
from typing import Any, Dict, Mapping, Optional, Protocol, TYPE_CHECKING

import numpy as np

from gps_denied_inference.errors import RuntimeUnavailableError
from gps_denied_inference.runtimes.settings import RuntimeConfig

if TYPE_CHECKING:
    from gps_denied_inference.artifacts.gate import GateExpectation
    from gps_denied_inference.artifacts.manifest import Manifest
    from gps_denied_inference.resources.budget import MemoryBudget
    from gps_denied_inference.resources.thermal import ThermalState, ThermalStatePublisher


class EngineHandle(Protocol):
    """What a loaded engine exposes to its caller."""

    name: str
    manifest: 'Manifest'
    path: str

    @property
    def is_released(self) -> bool:
        """True once release_engine() has run for this handle."""


class InferenceRuntime(Protocol):
    """Compile, gate-and-load, run and release engines on one inference library."""

    def compile_engine(self, onnx_path: str, build_config: Any) -> 'Manifest':
        """Build an engine from ONNX and seal it; returns the written manifest."""

    def deserialize_engine(self, name: str, path: str,
                           expected: 'GateExpectation') -> EngineHandle:
        """Gate the artifact, reserve its weights in the budget, then load it."""

    def prepare_execution(self, handle: EngineHandle) -> None:
        """Reserve, then allocate execution memory and I/O buffers (idempotent)."""

    def infer(self, handle: EngineHandle,
              inputs: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
        """Run one inference on named arrays; failures raise InferenceError.

        The returned arrays belong to the caller, never views of buffers the next call reuses:
        the node publishes them on another thread while the next inference runs.
        """

    def release_engine(self, handle: EngineHandle) -> None:
        """Free everything the handle holds and its reservations; idempotent."""

    def thermal_state(self) -> 'ThermalState':
        """The latest thermal snapshot (telemetry unavailable when none is known)."""

    def current_runtime_label(self) -> str:
        """The strategy's label and, where it has one, the active provider."""


# label -> (module, class, the library the strategy needs)
STRATEGIES = {
    'tensorrt': ('gps_denied_inference.runtimes.tensorrt', 'TensorrtRuntime', 'tensorrt'),
    'onnxruntime': ('gps_denied_inference.runtimes.onnxruntime', 'OnnxRuntimeRuntime',
                    'onnxruntime'),
}


def is_strategy_available(label: str) -> bool:
    """True when the strategy's library is installed (checked without importing it)."""
    if label not in STRATEGIES:
        return False
    return importlib.util.find_spec(STRATEGIES[label][2]) is not None


def build_inference_runtime(label: str, *, config: Optional[RuntimeConfig] = None,
                            budget: Optional['MemoryBudget'] = None,
                            thermal: Optional['ThermalStatePublisher'] = None,
                            **options: Any) -> InferenceRuntime:
    """Create the strategy named by `label`; refuse unknown or uninstalled ones by name."""
    if label not in STRATEGIES:
        raise RuntimeUnavailableError(
            f'unknown inference runtime {label!r}: expected one of {", ".join(STRATEGIES)}')
    module_name, class_name, library = STRATEGIES[label]
    if not is_strategy_available(label):
        raise RuntimeUnavailableError(
            f'inference runtime {label!r} needs the Python module {library!r}, '
            'which is not installed on this host')
    strategy = getattr(importlib.import_module(module_name), class_name)
    return strategy(config=config or RuntimeConfig(), budget=budget, thermal=thermal,
                    **options)
