"""Threads: load on this thread, infer from a worker thread, release from a third.

A ROS executor calls back on threads that did not load the engine; the runtime pushes the
primary context on whichever thread calls, and this proves it on the device.
"""

from gps_denied_inference.selftest.report import Report
from gps_denied_inference.selftest.session import run_in_thread, Session
from gps_denied_inference.selftest.targets import demo_targets, sample_inputs, Target

FAMILY = 'threads'
CRITERION = 'load on the main thread, infer on a worker, release on a third thread'


def run(session: Session, report: Report) -> None:
    """One line per strategy."""
    for target in demo_targets(session):
        if not isinstance(target, Target):
            label, reason = target
            report.unavailable(FAMILY, f'cross-thread-{label}', CRITERION, reason)
            continue
        check_target(session, report, target)


def check_target(session: Session, report: Report, target: Target) -> None:
    """Load here, infer on one new thread, release on another."""
    runtime = target.make_runtime()
    handle = target.load(runtime)
    try:
        runtime.prepare_execution(handle)
        feeds = sample_inputs(handle.manifest, session)
        outputs = run_in_thread('selftest-infer', lambda: runtime.infer(handle, feeds))
        run_in_thread('selftest-release', lambda: runtime.release_engine(handle))
    except Exception as err:  # noqa: B902 - any failure here is the finding
        runtime.release_engine(handle)
        report.failed(FAMILY, f'cross-thread-{target.runtime}', CRITERION, 'failed',
                      reason=f'{type(err).__name__}: {err}')
        return
    report.verdict(handle.is_released, FAMILY, f'cross-thread-{target.runtime}', CRITERION,
                   f'{len(outputs)} output(s) on selftest-infer, released on '
                   'selftest-release', 'no error', 'the handle is not marked released')
