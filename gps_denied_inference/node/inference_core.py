"""The node's engine lifecycle, ROS-free: gate and load on configure, budget on activate.

configure gates every model before any GPU call, then loads; activate refuses before
allocating when execution memory does not fit the budget; cleanup releases every engine.
Every step is idempotent and a failure releases what it loaded: docs/design.md.
"""

from dataclasses import dataclass
import logging
from typing import Callable, Dict, List, Optional, Tuple

from gps_denied_inference.artifacts.gate import EngineGate, GateExpectation
from gps_denied_inference.artifacts.manifest import Manifest
from gps_denied_inference.errors import ConfigError, OutOfMemoryError
from gps_denied_inference.imaging.contract import override_labels, PreprocessContract
from gps_denied_inference.imaging.output_encoding import image_layout_for, OutputLayout
from gps_denied_inference.node.parameters import ModelConfig, NodeConfig
from gps_denied_inference.resources.budget import (
    execution_need,
    in_flight_need,
    MemoryBudget,
    MemoryNeed,
    weights_need,
)
from gps_denied_inference.resources.thermal import ThermalStatePublisher
from gps_denied_inference.runtimes.protocol import (
    build_inference_runtime,
    EngineHandle,
    InferenceRuntime,
)

RuntimeFactory = Callable[..., InferenceRuntime]
CPU_PROVIDER = 'CPUExecutionProvider'
_LOG = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """One gated, loaded model and what the worker needs to feed it and publish its outputs."""

    config: ModelConfig
    manifest: Manifest
    runtime: InferenceRuntime
    handle: EngineHandle
    contract: PreprocessContract
    outputs: Dict[str, OutputLayout]
    on_gpu: bool
    prepared: bool = False

    @property
    def input_name(self) -> str:
        """The model's single image input."""
        return self.manifest.inputs[0].name


@dataclass(frozen=True)
class _Plan:
    """What configure knows about a model after its gate passed, before loading it."""

    model: ModelConfig
    manifest: Manifest
    contract: PreprocessContract
    on_gpu: bool
    outputs: Dict[str, OutputLayout]
    runtime: InferenceRuntime


class InferenceCore:
    """Owns the budget and every engine of one node; thread-compatible (lifecycle thread)."""

    def __init__(self, config: NodeConfig, *, thermal: Optional[ThermalStatePublisher] = None,
                 runtime_factory: RuntimeFactory = build_inference_runtime,
                 gate: Optional[EngineGate] = None) -> None:
        self.config = config
        self.budget = MemoryBudget(config.runtime.gpu_memory_budget_bytes,
                                   config.runtime.host_memory_budget_bytes)
        self._thermal = thermal
        self._runtime_factory = runtime_factory
        self._gate = gate or EngineGate()
        self.models: List[LoadedModel] = []

    def configure(self) -> List[LoadedModel]:
        """Gate all, check weights against the budgets, check outputs, then load all."""
        try:
            gated = [(model, self._gate.validate(model.engine_path, self._expectation(model)))
                     for model in self.config.models]
            plans = [self._plan(model, manifest) for model, manifest in gated]
            needs = [(p.model.name, weights_need(p.manifest, p.on_gpu)) for p in plans]
            if any(p.model.runtime == 'tensorrt' for p in plans):
                needs.append(('cuda-context', MemoryNeed(
                    gpu_bytes=self.config.runtime.cuda_context_overhead_bytes)))
            self._refuse_unless_fits('weights', needs)
            for plan in plans:
                model = plan.model
                handle = plan.runtime.deserialize_engine(model.name, model.engine_path,
                                                         self._expectation(model))
                self.models.append(LoadedModel(
                    model, handle.manifest, plan.runtime, handle, plan.contract, plan.outputs,
                    on_gpu=getattr(handle, 'on_gpu', plan.on_gpu)))
        except BaseException:
            self.cleanup()
            raise
        return self.models

    def activate(self) -> None:
        """Refuse before allocating if execution memory does not fit; then prepare all.

        Execution is the runtime's activations and I/O buffers plus what the worker holds in
        flight (prepared inputs waiting for the model, outputs handed to the publishing
        thread), reserved here by the core.
        """
        pending = [m for m in self.models if not m.prepared]
        self._refuse_unless_fits('execution', [
            (m.config.name, execution_need(m.manifest, m.on_gpu) + in_flight_need(m.manifest))
            for m in pending])
        for model in pending:
            in_flight = f'{model.config.name}:in_flight'
            self.budget.reserve(in_flight, in_flight_need(model.manifest))
            try:
                model.runtime.prepare_execution(model.handle)
            except BaseException:
                self.budget.release(in_flight)
                raise
            model.prepared = True

    def cleanup(self) -> None:
        """Release every engine (idempotent); the budget ledger returns to zero."""
        errors = []
        for model in self.models:
            self.budget.release(f'{model.config.name}:in_flight')
            try:
                model.runtime.release_engine(model.handle)
            except Exception as err:  # noqa: B902 - release the others, then report
                errors.append(err)
        self.models = []
        if errors:
            raise errors[0]

    def _plan(self, model: ModelConfig, manifest: Manifest) -> _Plan:
        """After every gate passed: contract, publishable outputs, strategy, memory pool."""
        contract = model.overrides.apply(manifest.preprocess, model.name)
        _refuse_unless_feedable(model, manifest, contract)
        outputs = {t.name: image_layout_for(t.max_shape, t.dtype, name=f'{model.name}/{t.name}')
                   for t in manifest.outputs}
        runtime = self._runtime(model)
        providers = getattr(runtime, 'providers', ('TensorrtExecution',))
        return _Plan(model, manifest, contract, providers[0] != CPU_PROVIDER, outputs, runtime)

    def _refuse_unless_fits(self, stage: str, needs: List[Tuple[str, MemoryNeed]]) -> None:
        for pool, ledger, key in (('GPU', self.budget.gpu, 'gpu_bytes'),
                                  ('host', self.budget.host, 'host_bytes')):
            requested = sum(getattr(need, key) for _, need in needs)
            if ledger.resident_bytes + requested > ledger.budget_bytes:
                names = '+'.join(f'{name}:{stage}' for name, _ in needs)
                raise OutOfMemoryError(pool, names, requested, ledger.resident_bytes,
                                       ledger.budget_bytes)

    def _runtime(self, model: ModelConfig) -> InferenceRuntime:
        """One strategy instance per model: ONNX Runtime providers are per model."""
        options = {'providers': model.providers} if model.runtime == 'onnxruntime' else {}
        return self._runtime_factory(model.runtime, config=self.config.runtime,
                                     budget=self.budget, thermal=self._thermal, gate=self._gate,
                                     **options)

    def _expectation(self, model: ModelConfig) -> GateExpectation:
        if model.runtime == 'tensorrt':
            from gps_denied_inference.runtimes.device_probe import tensorrt_gate_expectation
            return tensorrt_gate_expectation(pinned_sha256=model.sha256)
        return GateExpectation(runtime=model.runtime, pinned_sha256=model.sha256)


def _refuse_unless_feedable(model: ModelConfig, manifest: Manifest,
                            contract: PreprocessContract) -> None:
    """Refuse a model the node cannot feed: one image input, of the preprocessing's shape.

    Without this a model with two inputs, or a contract the model's input does not take,
    configures and then fails every frame.
    """
    inputs = manifest.inputs
    if len(inputs) != 1:
        raise ConfigError(
            f'model {model.name}: {model.engine_path} has {len(inputs)} inputs '
            f'({", ".join(spec.name for spec in inputs)}); the node feeds one image input')
    spec = inputs[0]
    why = contract.mismatch(spec.shape, spec.dtype, spec.profile)
    if why is not None:
        labels = override_labels(model.name)
        given = [labels[field] for field in ('width', 'height', 'color')
                 if getattr(model.overrides, field) is not None]
        cause = (f'set {", ".join(given)} to fit it' if given else
                 'its manifest contradicts its own input: seal it again')
        raise ConfigError(f'model {model.name}: input {spec.name!r} of {model.engine_path}: '
                          f'{why}; {cause}')
