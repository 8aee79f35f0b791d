"""Load: gate-then-deserialize timed over N loads, p50 / p95 against the limit (p95 <= 5 s)."""

import time

from gps_denied_inference.selftest.report import Report
from gps_denied_inference.selftest.session import p50_p95, Session
from gps_denied_inference.selftest.targets import demo_targets, Target

FAMILY = 'load'


def run(session: Session, report: Report) -> None:
    """One line per strategy."""
    options = session.options
    for target in demo_targets(session):
        if not isinstance(target, Target):
            label, reason = target
            report.unavailable(FAMILY, f'load-{label}', f'gate + deserialize p95 over '
                               f'{options.loads} loads', reason,
                               f'{options.load_p95_limit_s:g} s')
            continue
        runtime = target.make_runtime()
        seconds = []
        for _ in range(options.loads):
            started = time.perf_counter()
            handle = target.load(runtime)
            seconds.append(time.perf_counter() - started)
            runtime.release_engine(handle)
        p50, p95 = p50_p95(seconds)
        report.verdict(p95 <= options.load_p95_limit_s, FAMILY, f'load-{target.runtime}',
                       f'gate + deserialize p95 over {options.loads} loads',
                       f'p50 {p50:.3f} s, p95 {p95:.3f} s',
                       f'p95 <= {options.load_p95_limit_s:g} s',
                       'loading is slower than the limit')
