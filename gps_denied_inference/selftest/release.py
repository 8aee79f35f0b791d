"""Release: idempotent (twice, and concurrently); N load/release cycles leave nothing behind.

A TensorRT handle's primary-context retain is given back exactly once, on the context's own
owner thread, whichever thread calls release (runtimes/cuda_context.py). So every release
check also reads the package's retain count: a release, however often and from however many
threads it is called, must bring it back to where it was before the load. The cycles
alternate the releasing thread (this one, then a worker), and after them the device's free
memory and the retain count must be where they started (TensorRT), and the budget ledger
empty (both strategies).
"""

from functools import partial
import threading
from typing import Any, Callable, List, Optional

from gps_denied_inference.resources.budget import MemoryBudget
from gps_denied_inference.resources.measured_usage import current_rss_bytes
from gps_denied_inference.selftest.report import Report
from gps_denied_inference.selftest.session import mib, run_in_thread, Session
from gps_denied_inference.selftest.targets import demo_targets, sample_inputs, Target

FAMILY = 'release'
CONCURRENT_RELEASES = 4


def primary_retains() -> int:
    """Primary-context retains this process holds through the runtime's PrimaryContext."""
    from gps_denied_inference.runtimes import cuda_context
    return cuda_context.outstanding_retains()


def run(session: Session, report: Report) -> None:
    """Twice, concurrently, then the cycles."""
    for target in demo_targets(session):
        if not isinstance(target, Target):
            label, reason = target
            for check, criterion in _criteria(session, label).items():
                report.unavailable(FAMILY, check, criterion, reason)
            continue
        criteria = _criteria(session, target.runtime)
        check_twice(report, target, criteria)
        check_concurrent(report, target, criteria)
        check_cycles(session, report, target, criteria)


def _criteria(session: Session, label: str) -> dict:
    criteria = {
        f'twice-{label}': 'release_engine twice: the second is a no-op',
        f'concurrent-{label}': f'{CONCURRENT_RELEASES} threads release one handle at once',
        f'cycles-{label}': f'{session.options.cycles} load/activate/infer/release cycles '
                           '(released on this thread and a worker in turn) leave '
                           'the ledger empty' + (' and device memory where it started'
                                                 if label == 'tensorrt' else ''),
    }
    if label == 'tensorrt':
        criteria['retains-tensorrt'] = (f'{session.options.cycles} cycles leave the '
                                        'primary-context retain count where it started')
    return criteria


def _activated(target: Target, runtime: Any) -> Any:
    handle = target.load(runtime)
    runtime.prepare_execution(handle)
    return handle


def _retain_counter(target: Target) -> Callable[[], Optional[int]]:
    """The retain count for a TensorRT target; None for a strategy without a CUDA context."""
    return primary_retains if target.runtime == 'tensorrt' else (lambda: None)


def _retains_verdict(before: Optional[int], after: Optional[int]) -> str:
    """'' when the retain came back exactly once (or is not counted), else what went wrong."""
    if before is None or after == before:
        return ''
    return (f'primary-context retains {before} before the load, {after} after the release '
            f'({"leaked" if after > before else "released more than once"})')


def check_twice(report: Report, target: Target, criteria: dict) -> None:
    """Release, then release again: one retain given back, the second call a no-op."""
    check = f'twice-{target.runtime}'
    retains = _retain_counter(target)
    runtime = target.make_runtime()
    before = retains()
    handle = _activated(target, runtime)
    runtime.release_engine(handle)
    try:
        runtime.release_engine(handle)
    except Exception as err:  # noqa: B902 - any failure here is the finding
        report.failed(FAMILY, check, criteria[check], 'second release raised',
                      reason=f'{type(err).__name__}: {err}')
        return
    after = retains()
    problem = _retains_verdict(before, after)
    measured = 'second release returned quietly'
    if before is not None:
        measured += f', primary-context retains {before} -> {after}'
    report.verdict(handle.is_released and not problem, FAMILY, check, criteria[check],
                   measured, 'no error' + (', retains unchanged' if before is not None else ''),
                   problem or 'the handle is not marked released')


def check_concurrent(report: Report, target: Target, criteria: dict) -> None:
    """Several threads released at the same instant by a barrier."""
    check = f'concurrent-{target.runtime}'
    retains = _retain_counter(target)
    budget = MemoryBudget(1 << 50, 1 << 50)
    runtime = target.make_runtime(budget)
    before = retains()
    handle = _activated(target, runtime)
    barrier = threading.Barrier(CONCURRENT_RELEASES)
    errors: List[str] = []

    def release() -> None:
        barrier.wait()
        try:
            runtime.release_engine(handle)
        except Exception as err:  # noqa: B902 - collected and reported
            errors.append(f'{type(err).__name__}: {err}')

    threads = [threading.Thread(target=release, name=f'selftest-release-{i}')
               for i in range(CONCURRENT_RELEASES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = retains()
    problem = _retains_verdict(before, after)
    ok = not errors and handle.is_released and budget.is_empty() and not problem
    ledger = 'empty' if budget.is_empty() else 'not empty'
    measured = f'{len(errors)} error(s), ledger {ledger}'
    if before is not None:
        measured += f', primary-context retains {before} -> {after}'
    report.verdict(ok, FAMILY, check, criteria[check], measured,
                   'no error, ledger empty' + (', retains unchanged' if before is not None
                                               else ''),
                   '; '.join(errors) or problem or 'state left behind')


def check_cycles(session: Session, report: Report, target: Target, criteria: dict) -> None:
    """The cycles, measured before and after."""
    options = session.options
    check = f'cycles-{target.runtime}'
    budget = MemoryBudget(options.gpu_budget_bytes, options.host_budget_bytes)
    runtime = target.make_runtime(budget)
    on_gpu = target.runtime == 'tensorrt'
    retains_before = primary_retains() if on_gpu else None
    free_before = session.free_bytes() if on_gpu else None
    rss_before = current_rss_bytes()
    for cycle in range(options.cycles):
        handle = _activated(target, runtime)
        runtime.infer(handle, sample_inputs(handle.manifest, session))
        if cycle % 2:
            run_in_thread('selftest-release', partial(runtime.release_engine, handle))
        else:
            runtime.release_engine(handle)
    rss_after = current_rss_bytes()
    measured = f'ledger {"empty" if budget.is_empty() else "NOT empty"}, host RSS ' \
               f'{rss_after - rss_before:+d} B'
    ok = budget.is_empty()
    if free_before is not None:
        drop = free_before - session.free_bytes()
        measured += f', device free memory {-drop:+d} B'
        ok = ok and abs(drop) <= options.memory_tolerance_bytes
    report.verdict(ok, FAMILY, check, criteria[check], measured,
                   f'ledger empty; device memory within {mib(options.memory_tolerance_bytes)}'
                   if on_gpu else 'ledger empty', 'the cycles left memory behind')
    if not on_gpu:
        return
    retains_after = primary_retains()
    report.verdict(retains_after == retains_before, FAMILY, 'retains-tensorrt',
                   criteria['retains-tensorrt'], f'{retains_before} -> {retains_after}',
                   'unchanged', 'a load/release cycle leaks a primary-context retain')
