"""Inference: p50 / p95 of infer per model against its latency limit; host RSS and GPU use.

The models are those of the params file (`--params`), loaded together under its budgets
as the node would, or else the demo model on each strategy. A model's latency limit is
`--latency-limit-ms NAME=MS`, else `M.latency_limit_ms` in the params file (which the node
also WARNs against on /diagnostics), else `--latency-limit-ms MS` (default 100 ms). For
TensorRT one infer is H2D -> enqueueV3 -> D2H -> stream sync on the handle's own stream.
"""

from dataclasses import replace
from pathlib import Path
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from gps_denied_inference.artifacts.gate import GateExpectation
from gps_denied_inference.errors import GpsDeniedInferenceError
from gps_denied_inference.resources.budget import MemoryBudget
from gps_denied_inference.resources.measured_usage import current_rss_bytes
from gps_denied_inference.runtimes.settings import RuntimeConfig
from gps_denied_inference.selftest.report import Report
from gps_denied_inference.selftest.session import mib, p50_p95, Session
from gps_denied_inference.selftest.targets import demo_targets, sample_inputs, Target

FAMILY = 'inference'


def run(session: Session, report: Report) -> None:
    """Load every model, time its inference, then measure memory with all of them active."""
    options = session.options
    config = RuntimeConfig(gpu_memory_budget_bytes=options.gpu_budget_bytes,
                           host_memory_budget_bytes=options.host_budget_bytes)
    if options.params is not None:
        targets, limits, config = params_targets(session, report)
    else:
        targets, limits = demo_targets(session), {}
    budget = MemoryBudget(config.gpu_memory_budget_bytes, config.host_memory_budget_bytes)
    loaded: List[Tuple[Target, Any, Any]] = []
    free_before = session.free_bytes()
    try:
        for target in targets:
            if not isinstance(target, Target):
                name, reason = target
                name = name if options.params is not None else f'demo_{name}'
                report.unavailable(FAMILY, f'latency-{name}', 'infer p95 within the limit',
                                   reason)
                continue
            limit_ms = options.latency_limits_ms.get(
                target.name, limits.get(target.name, options.latency_limit_ms))
            runtime = target.make_runtime(budget, config)
            try:
                handle = target.load(runtime)
                loaded.append((target, runtime, handle))
                runtime.prepare_execution(handle)
            except GpsDeniedInferenceError as err:
                report.failed(FAMILY, f'latency-{target.name}', 'the model loads and activates',
                              'not loaded', reason=str(err))
                continue
            time_inference(session, report, target, runtime, handle, limit_ms)
        check_memory(session, report, budget, free_before, config)
    finally:
        for _, runtime, handle in reversed(loaded):
            runtime.release_engine(handle)


def time_inference(session: Session, report: Report, target: Target, runtime: Any,
                   handle: Any, limit_ms: float) -> None:
    """Time `infer_runs` inferences on one model."""
    feeds = sample_inputs(handle.manifest, session)
    runtime.infer(handle, feeds)
    seconds = []
    for _ in range(session.options.infer_runs):
        started = time.perf_counter()
        runtime.infer(handle, feeds)
        seconds.append(time.perf_counter() - started)
    p50, p95 = p50_p95(seconds)
    report.verdict(p95 * 1e3 <= limit_ms, FAMILY, f'latency-{target.name}',
                   f'{target.runtime} infer p95 over {len(seconds)} runs',
                   f'p50 {p50 * 1e3:.2f} ms, p95 {p95 * 1e3:.2f} ms', f'p95 <= {limit_ms:g} ms',
                   'inference is slower than the limit')


def check_memory(session: Session, report: Report, budget: MemoryBudget,
                 free_before: Optional[int], config: RuntimeConfig) -> None:
    """Host RSS and GPU use with every model active, against the two budgets."""
    snapshot = budget.snapshot()
    rss = current_rss_bytes()
    host_limit = config.host_memory_budget_bytes
    report.verdict(rss <= host_limit, FAMILY, 'host-rss',
                   'process RSS with every model active within the host budget',
                   f'{mib(rss)} (ledger {mib(snapshot.host.resident_bytes)})',
                   f'<= {mib(host_limit)}', 'the process holds more host memory than budgeted')
    gpu_limit = config.gpu_memory_budget_bytes
    free_after = session.free_bytes()
    if free_before is None or free_after is None:
        report.unavailable(FAMILY, 'gpu-memory',
                           'device memory used with every model active within the GPU budget',
                           session.cuda_missing or 'no device', f'<= {mib(gpu_limit)}')
        return
    used = free_before - free_after
    report.verdict(used <= gpu_limit, FAMILY, 'gpu-memory',
                   'device memory used with every model active within the GPU budget',
                   f'{mib(used)} (cudaMemGetInfo; ledger {mib(snapshot.gpu.resident_bytes)})',
                   f'<= {mib(gpu_limit)}', 'the models take more device memory than budgeted')


def read_params(path: Path) -> Mapping[str, Any]:
    """The flat ros__parameters of the first node in a ROS 2 params file."""
    import yaml
    data = yaml.safe_load(Path(path).read_text(encoding='utf-8'))
    if isinstance(data, dict):
        for section in data.values():
            if isinstance(section, dict) and isinstance(section.get('ros__parameters'), dict):
                return section['ros__parameters']
    from gps_denied_inference.errors import ConfigError
    raise ConfigError(f'{path}: no "<node>: ros__parameters:" mapping found')


def params_targets(session: Session, report: Report) -> Tuple[
        List[Union[Target, Tuple[str, str]]], Dict[str, float], RuntimeConfig]:
    """The params file's models as targets, their latency limits, and its budgets."""
    from gps_denied_inference.node.parameters import node_config_from_values
    values = read_params(session.options.params)
    config = node_config_from_values(values)
    targets: List[Union[Target, Tuple[str, str]]] = []
    limits: Dict[str, float] = {}
    for model in config.models:
        if model.latency_limit_ms is not None:
            limits[model.name] = model.latency_limit_ms
        if not Path(model.engine_path).is_file():
            report.failed(FAMILY, f'latency-{model.name}', 'the model loads and activates',
                          'not loaded', reason=f'{model.engine_path} does not exist')
            continue
        if model.runtime == 'tensorrt':
            if session.gpu is None:
                targets.append((model.name, session.gpu_missing))
                continue
            expectation = replace(session.gpu.expectation(), pinned_sha256=model.sha256)
        else:
            expectation = GateExpectation('onnxruntime', model.sha256)
        targets.append(Target(model.name, model.runtime, Path(model.engine_path), expectation,
                              session.options.device_index, model.providers))
    return targets, limits, config.runtime
