"""Sync cost: CPU time one `stream.synchronize()` burns while the GPU works.

A context whose scheduling policy spins keeps a core at 100 % for the whole wait; with
blocking sync the thread sleeps. Work is queued on an owned stream (device-to-device copies,
no TensorRT needed), then the calling thread's CPU time across the synchronize is set
against its wall time.
"""

import time

from gps_denied_inference.selftest.report import Report
from gps_denied_inference.selftest.session import MIB, Session

FAMILY = 'sync-cost'
COPY_BYTES = 64 * MIB
COPIES_PER_SYNC = 16


def run(session: Session, report: Report) -> None:
    """One line: mean CPU time per synchronize and its share of the wait."""
    options = session.options
    criterion = 'CPU time per stream.synchronize() as a share of its wall time'
    limit = f'<= {options.sync_cpu_limit:.0%} of the wait'
    cuda = session.cuda
    if cuda is None:
        report.unavailable(FAMILY, 'stream-synchronize', criterion, session.cuda_missing,
                           limit)
        return
    cpu, wall = measure(session)
    share = cpu / wall if wall > 0 else 0.0
    report.verdict(share <= options.sync_cpu_limit, FAMILY, 'stream-synchronize', criterion,
                   f'{cpu / options.sync_runs * 1e6:.0f} us CPU per sync over '
                   f'{wall / options.sync_runs * 1e6:.0f} us wall ({share:.0%})', limit,
                   'the synchronize spins a core while it waits')


def measure(session: Session) -> tuple:
    """(total thread CPU seconds, total wall seconds) across `sync_runs` synchronizes."""
    cuda = session.cuda
    cpu = wall = 0.0
    with session.primary.current():
        stream = cuda.Stream()
        source = cuda.mem_alloc(COPY_BYTES)
        target = cuda.mem_alloc(COPY_BYTES)
        try:
            for _ in range(session.options.sync_runs):
                for _ in range(COPIES_PER_SYNC):
                    cuda.memcpy_dtod_async(target, source, COPY_BYTES, stream)
                cpu_start, wall_start = time.thread_time(), time.perf_counter()
                stream.synchronize()
                cpu += time.thread_time() - cpu_start
                wall += time.perf_counter() - wall_start
        finally:
            source.free()
            target.free()
    return cpu, wall
