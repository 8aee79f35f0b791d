"""Budget: a budget one byte short is refused before any allocation; the ledger vs the device.

For each strategy the weights stage (configure) and the execution stage (activate) are
each given a budget exactly one byte below the need; the refusal must come as
OutOfMemoryError with the device's free memory unchanged (within a tolerance: on a Jetson
the GPU's free memory is the system's and moves with other processes). Then the engine is
activated under the real budgets and the ledger's GPU prediction is set beside what the
device reports (cudaMemGetInfo, and NvMapMemUsed on a Jetson).
"""

from typing import Optional

from gps_denied_inference.errors import OutOfMemoryError
from gps_denied_inference.resources.budget import execution_need, MemoryBudget, weights_need
from gps_denied_inference.resources.measured_usage import read_nvmap_used
from gps_denied_inference.selftest.report import Report
from gps_denied_inference.selftest.session import mib, Session
from gps_denied_inference.selftest.targets import demo_targets, Target

FAMILY = 'budget'
UNLIMITED = 1 << 50


def run(session: Session, report: Report) -> None:
    """Refusals for each strategy, then the ledger against the device for TensorRT."""
    for target in demo_targets(session):
        if not isinstance(target, Target):
            label, reason = target
            for stage in ('weights', 'activate'):
                report.unavailable(FAMILY, f'refuse-{stage}-{label}',
                                   f'a budget 1 B below the {stage} need is refused', reason)
            report.unavailable(FAMILY, 'ledger-vs-device',
                               'device memory used after activate <= ledger prediction',
                               reason)
            continue
        check_refusals(session, report, target)
        if target.runtime == 'tensorrt':
            check_ledger(session, report, target)


def check_refusals(session: Session, report: Report, target: Target) -> None:
    """Weights and execution budgets one byte short: refused, nothing allocated."""
    manifest = target.manifest()
    on_gpu = target.runtime == 'tensorrt'
    weights = weights_need(manifest, on_gpu)
    execution = execution_need(manifest, on_gpu)
    pool = 'gpu' if on_gpu else 'host'
    short_weights = getattr(weights, f'{pool}_bytes') - 1
    short_all = getattr(weights + execution, f'{pool}_bytes') - 1
    for stage, budget_bytes in (('weights', short_weights), ('activate', short_all)):
        budget = (MemoryBudget(budget_bytes, UNLIMITED) if on_gpu
                  else MemoryBudget(UNLIMITED, budget_bytes))
        runtime = target.make_runtime(budget)
        handle = target.load(runtime) if stage == 'activate' else None
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
        criterion = f'a {pool} budget 1 B below the {stage} need is refused before allocating'
        measured = (f'refused: short by {refusal.resident + refusal.requested - refusal.budget}'
                    f' B' if refusal else 'not refused')
        if drop is not None:
            measured += f', device free memory moved by {drop} B'
        ok = refusal is not None and (drop is None
                                      or abs(drop) <= session.options.memory_tolerance_bytes)
        report.verdict(ok, FAMILY, f'refuse-{stage}-{target.runtime}', criterion, measured,
                       f'budget {budget_bytes} B' + (
                           f'; device free memory within '
                           f'{mib(session.options.memory_tolerance_bytes)}' if on_gpu else ''),
                       'the need did not fit yet the stage went ahead' if refusal is None
                       else 'device memory moved although the budget refused')


def check_ledger(session: Session, report: Report, target: Target) -> None:
    """Activate under the real budgets; the device's use must not exceed the ledger's."""
    options = session.options
    budget = MemoryBudget(options.gpu_budget_bytes, options.host_budget_bytes)
    runtime = target.make_runtime(budget)
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
    measured = f'device used {mib(used)} (cudaMemGetInfo), ledger predicts {mib(predicted)}'
    if nvmap_before.bytes is not None and nvmap_after.bytes is not None:
        measured += f', NvMapMemUsed +{mib(nvmap_after.bytes - nvmap_before.bytes)}'
    else:
        measured += f', NvMapMemUsed {nvmap_after.reason or nvmap_before.reason}'
    report.verdict(used <= predicted + options.ledger_slack_bytes, FAMILY, 'ledger-vs-device',
                   'device memory used after activate <= ledger prediction + slack', measured,
                   f'<= prediction + {mib(options.ledger_slack_bytes)}',
                   'the ledger under-predicts what the engine takes')
