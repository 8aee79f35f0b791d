"""Budget: a budget one byte short is refused before any allocation; the ledger vs the device.

Each stage's need is the one the runtime reserves. For TensorRT: at load, the weights and
the CUDA context's overhead (once per budget) on the GPU, and the plan's host copy while it
is deserialized; at activate, activations and I/O on top. For ONNX Runtime: weights, then
activations and I/O, on the host. Each stage is given a budget exactly one byte below its
need in one pool (the other pool exactly enough); the refusal must come from that pool as
OutOfMemoryError, short by 1 B, with the device's free memory unchanged (within a tolerance:
on a Jetson the GPU's free memory is the system's and moves with other processes). Then the
engine is activated under the real budgets and the ledger's GPU prediction is set beside
what the device reports (cudaMemGetInfo, and NvMapMemUsed on a Jetson), with the context
overhead parameter beside the figure measured at the session's first retain (on a Jetson).
"""

from dataclasses import dataclass
from typing import List, Optional, Tuple

from gps_denied_inference.errors import OutOfMemoryError
from gps_denied_inference.resources.budget import execution_need, MemoryBudget, weights_need
from gps_denied_inference.resources.measured_usage import read_nvmap_used
from gps_denied_inference.runtimes.settings import RuntimeConfig
from gps_denied_inference.selftest.report import Report
from gps_denied_inference.selftest.session import mib, Session
from gps_denied_inference.selftest.targets import demo_targets, Target

FAMILY = 'budget'
UNLIMITED = 1 << 50
STAGES = {'tensorrt': ('weights', 'plan-copy', 'activate'),
          'onnxruntime': ('weights', 'activate')}


@dataclass(frozen=True)
class Stage:
    """One refusal: the pool held one byte short, what its need is made of, the other pool."""

    name: str
    pool: str
    parts: Tuple[Tuple[str, int], ...]
    other_pool_bytes: int

    @property
    def need(self) -> int:
        """Bytes the runtime reserves in `pool` by the end of this stage."""
        return sum(nbytes for _, nbytes in self.parts)

    def short_budget(self) -> MemoryBudget:
        """A budget one byte below the need in `pool`, exactly enough in the other."""
        if self.pool == 'GPU':
            return MemoryBudget(self.need - 1, self.other_pool_bytes)
        return MemoryBudget(self.other_pool_bytes, self.need - 1)

    def composition(self) -> str:
        """'weights 369 B + CUDA context 536870912 B'."""
        return ' + '.join(f'{label} {nbytes} B' for label, nbytes in self.parts)


def stages(target: Target, config: RuntimeConfig) -> List[Stage]:
    """The stages of `target`'s strategy with the needs its runtime reserves."""
    manifest = target.manifest()
    if target.runtime != 'tensorrt':
        weights = (('weights', weights_need(manifest, False).host_bytes),)
        execution = (('activations + I/O', execution_need(manifest, False).host_bytes),)
        return [Stage('weights', 'host', weights, UNLIMITED),
                Stage('activate', 'host', weights + execution, UNLIMITED)]
    plan = target.path.stat().st_size
    loaded = (('weights', weights_need(manifest, True).gpu_bytes),
              ('CUDA context', config.cuda_context_overhead_bytes))
    execution = execution_need(manifest, True)
    loaded_bytes = sum(nbytes for _, nbytes in loaded)
    return [Stage('weights', 'GPU', loaded, plan),
            Stage('plan-copy', 'host', (('plan host copy', plan),), loaded_bytes),
            Stage('activate', 'GPU', loaded + (('activations + I/O', execution.gpu_bytes),),
                  max(plan, execution.host_bytes))]


def runtime_config(session: Session) -> RuntimeConfig:
    """The params file's runtime settings (its context overhead), else the defaults."""
    if session.options.params is None:
        return RuntimeConfig()
    from gps_denied_inference.node.parameters import node_config_from_values
    from gps_denied_inference.selftest.inference import read_params
    return node_config_from_values(read_params(session.options.params)).runtime


def run(session: Session, report: Report) -> None:
    """Refusals for each strategy, then the ledger against the device for TensorRT."""
    config = runtime_config(session)
    for target in demo_targets(session):
        if not isinstance(target, Target):
            label, reason = target
            for stage in STAGES[label]:
                report.unavailable(FAMILY, f'refuse-{stage}-{label}',
                                   f'a budget 1 B below the {stage} need is refused', reason)
            if label == 'tensorrt':
                report.unavailable(FAMILY, 'ledger-vs-device', LEDGER_CRITERION, reason)
            continue
        check_refusals(session, report, target, config)
        if target.runtime == 'tensorrt':
            check_ledger(session, report, target, config)


def check_refusals(session: Session, report: Report, target: Target,
                   config: Optional[RuntimeConfig] = None) -> None:
    """Every stage one byte short: refused by that pool, short by 1 B, nothing allocated."""
    config = config or RuntimeConfig()
    on_gpu = target.runtime == 'tensorrt'
    tolerance = session.options.memory_tolerance_bytes
    for stage in stages(target, config):
        check = f'refuse-{stage.name}-{target.runtime}'
        criterion = (f'a {stage.pool} budget 1 B below the {stage.name} need is refused '
                     'before allocating')
        limit = (f'{stage.pool} budget {stage.need - 1} B = need ({stage.composition()}) '
                 '- 1 B')
        runtime = target.make_runtime(stage.short_budget(), config)
        handle = None
        if stage.name == 'activate':
            try:
                handle = target.load(runtime)
            except OutOfMemoryError as err:
                report.failed(FAMILY, check, criterion, 'the load before it was refused',
                              limit, f"the need computed here is not the runtime's: {err}")
                continue
        before = session.free_bytes() if on_gpu else None
        refusal: Optional[OutOfMemoryError] = None
        try:
            if handle is None:
                handle = target.load(runtime)
            else:
                runtime.prepare_execution(handle)
        except OutOfMemoryError as err:
            refusal = err
        after = session.free_bytes() if on_gpu else None
        if handle is not None:
            runtime.release_engine(handle)
        drop = None if before is None or after is None else before - after
        short = None if refusal is None else (refusal.resident + refusal.requested
                                              - refusal.budget)
        measured = ('not refused' if refusal is None else
                    f'refused by the {refusal.pool} pool: short by {short} B')
        if drop is not None:
            measured += f', device free memory moved by {drop} B'
        if on_gpu:
            limit += f'; device free memory within {mib(tolerance)}'
        refused_right = refusal is not None and refusal.pool == stage.pool and short == 1
        report.verdict(refused_right and (drop is None or abs(drop) <= tolerance), FAMILY,
                       check, criterion, measured, limit,
                       'the need did not fit yet the stage went ahead' if refusal is None
                       else 'the refusal does not match the need computed here'
                       if not refused_right else
                       'device memory moved although the budget refused')


LEDGER_CRITERION = ("device memory used by activate <= the ledger's engine part + slack; "
                    'the measured CUDA context <= its parameter')


def check_ledger(session: Session, report: Report, target: Target,
                 config: Optional[RuntimeConfig] = None) -> None:
    """Activate under the real budgets; the device's use must not exceed the ledger's.

    The session's own retain opened the context before the first reading, so the device's
    figure is the engine's alone and is compared with the ledger minus the context overhead;
    the overhead itself is compared with what the session measured when it opened the context.
    """
    options = session.options
    config = config or RuntimeConfig()
    overhead = config.cuda_context_overhead_bytes
    budget = MemoryBudget(options.gpu_budget_bytes, options.host_budget_bytes)
    runtime = target.make_runtime(budget, config)
    nvmap_before = read_nvmap_used(options.proc_root)
    before = session.free_bytes()
    handle = target.load(runtime)
    try:
        runtime.prepare_execution(handle)
        after = session.free_bytes()
        nvmap_after = read_nvmap_used(options.proc_root)
        predicted = budget.snapshot().gpu.resident_bytes
    finally:
        runtime.release_engine(handle)
    used = before - after
    engine = predicted - overhead
    measured = (f'device used {mib(used)} (cudaMemGetInfo), ledger predicts {mib(predicted)} '
                f'= engine {mib(engine)} + CUDA context {mib(overhead)} (parameter)')
    if nvmap_before.bytes is not None and nvmap_after.bytes is not None:
        measured += f', NvMapMemUsed +{mib(nvmap_after.bytes - nvmap_before.bytes)}'
    else:
        measured += f', NvMapMemUsed {nvmap_after.reason or nvmap_before.reason}'
    context = session.context_overhead
    if context is None:
        measured += f'; context not measured ({session.context_overhead_note})'
    else:
        measured += (f'; context measured {mib(context)} ({session.context_overhead_note}) '
                     f'vs parameter {mib(overhead)}')
    engine_ok = used <= engine + options.ledger_slack_bytes
    context_ok = context is None or context <= overhead + options.ledger_slack_bytes
    report.verdict(engine_ok and context_ok, FAMILY, 'ledger-vs-device', LEDGER_CRITERION,
                   measured, f'each <= its prediction + {mib(options.ledger_slack_bytes)}',
                   'the ledger under-predicts what the engine takes' if not engine_ok else
                   'the CUDA context takes more than cuda_context_overhead_bytes: set the '
                   'node parameter to the measured figure')
