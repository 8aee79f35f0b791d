"""The engines the runtime checks load: the demo model on ONNX Runtime, its engine on TensorRT.

A Target names an artifact, how the gate must see it, and makes a fresh runtime of its
strategy (optionally under a budget), so each family can load, run and release it through
the same public runtime API the node uses.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from gps_denied_inference.artifacts.gate import GateExpectation
from gps_denied_inference.artifacts.manifest import Manifest, TensorSpec
from gps_denied_inference.resources.budget import MemoryBudget
from gps_denied_inference.runtimes.settings import RuntimeConfig
from gps_denied_inference.selftest.session import Session


@dataclass(frozen=True)
class Target:
    """One artifact and the strategy that loads it."""

    name: str
    runtime: str
    path: Path
    expectation: GateExpectation
    device_index: int = 0
    providers: Tuple[str, ...] = ('CPUExecutionProvider',)

    def make_runtime(self, budget: Optional[MemoryBudget] = None,
                     config: Optional[RuntimeConfig] = None) -> Any:
        """A fresh runtime of this strategy."""
        config = config or RuntimeConfig()
        if self.runtime == 'tensorrt':
            from gps_denied_inference.runtimes.tensorrt import TensorrtRuntime
            return TensorrtRuntime(config=config, budget=budget,
                                   device_index=self.device_index)
        from gps_denied_inference.runtimes.onnxruntime import OnnxRuntimeRuntime
        return OnnxRuntimeRuntime(config=config, budget=budget, providers=self.providers)

    def load(self, runtime: Any, name: Optional[str] = None) -> Any:
        """Gate and deserialize through `runtime`."""
        return runtime.deserialize_engine(name or self.name, str(self.path), self.expectation)

    def manifest(self) -> Manifest:
        """The sealed manifest beside the artifact."""
        from gps_denied_inference.artifacts.sealing import manifest_sidecar_path
        return Manifest.from_json(manifest_sidecar_path(self.path).read_text(encoding='utf-8'))


def demo_targets(session: Session) -> List[Union[Target, Tuple[str, str]]]:
    """The demo ONNX model on ONNX Runtime, and its FP16 engine on TensorRT or why not."""
    targets: List[Union[Target, Tuple[str, str]]] = []
    if session.demo_onnx is not None:
        targets.append(Target('demo_onnxruntime', 'onnxruntime', session.demo_onnx,
                              GateExpectation('onnxruntime')))
    else:
        targets.append(('onnxruntime', 'the demo model was not generated'))
    missing = session.engine_ready()
    if missing:
        targets.append(('tensorrt', missing))
    else:
        targets.append(Target('demo_tensorrt', 'tensorrt', session.demo_engine,
                              session.gpu.expectation(), session.options.device_index))
    return targets


def sample_inputs(manifest: Manifest, session: Optional[Session] = None,
                  seed: int = 0) -> Dict[str, np.ndarray]:
    """One input per tensor: the demo scene frame where it fits, else seeded values in [0, 1)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in manifest.inputs:
        shape = _input_shape(spec)
        if session is not None and shape == (1, 1, session.options.height,
                                             session.options.width) \
                and spec.dtype == 'float32':
            feeds[spec.name] = session.demo_input(seed)
        elif np.issubdtype(np.dtype(spec.dtype), np.floating):
            feeds[spec.name] = rng.random(shape).astype(spec.dtype)
        else:
            feeds[spec.name] = np.zeros(shape, dtype=spec.dtype)
    return feeds


def _input_shape(spec: TensorSpec) -> Tuple[int, ...]:
    return tuple(spec.shape) if spec.profile is None else tuple(spec.profile[1])
