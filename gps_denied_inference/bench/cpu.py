"""CPU time of a process and of the whole machine, from /proc, for the benchmark.

On a small shared machine a slow frame is often a frame that waited for a core. The CPU
time a process spent per processed frame does not depend on that wait, so it separates
what the node's code costs from what contention costs; the machine's busy fraction during
a phase says how contended it was.
"""

import os
from typing import Tuple

CLOCK_TICKS = os.sysconf('SC_CLK_TCK')


def process_cpu_s(pid: int, proc_root: str = '/proc') -> float:
    """User + system CPU seconds of process `pid`, all its threads, so far."""
    with open(os.path.join(proc_root, str(pid), 'stat')) as stat:
        text = stat.read()
    # The command name (field 2) may contain spaces; the fields after it are fixed.
    fields = text[text.rindex(')') + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu(proc_root: str = '/proc') -> Tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    with open(os.path.join(proc_root, 'stat')) as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return (total - idle) / CLOCK_TICKS, total / CLOCK_TICKS


def busy_fraction(before: Tuple[float, float], after: Tuple[float, float]) -> float:
    """Fraction of all cores' time that was busy between two machine_cpu() readings."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0
