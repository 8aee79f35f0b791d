"""SIGKILL-and-restart cycles: what the node's killed predecessors leave under /dev/shm.

Each cycle starts `python -m gps_denied_inference.node` with the shipped Fast DDS profile
(one 32 MiB shared-memory segment per participant), waits until it owns its segment (it
holds the segment's `_el` lock file open), and kills it with SIGKILL, as a watchdog, the OOM
killer or a respawning supervisor would. After the last cycle, one more node starts and
stops normally. The report says, for every generation's segment, whether it is still there,
and how much memory the ones left hold. No peer talks to these nodes, so Fast DDS's own
reclaim (a live peer that had the segment open removes it 5 s after its owner died) never
applies: this is what the node must do by itself.

    tools/env.sh python test/reliability/sigkill_cycles.py --cycles 50
"""

import argparse
from dataclasses import dataclass
import os
from pathlib import Path
import signal
import sys
import tempfile
import time
from typing import FrozenSet, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path[:0] = [p for p in (str(HERE.parent), str(HERE)) if p not in sys.path]

from node_harness import wait_until  # noqa: E402
from reliability_support import NodeProcess  # noqa: E402
from shutdown_stress import existing, owned_segments, PROFILE_ENV  # noqa: E402

START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class CyclesReport:
    """The segments every generation owned, and which of them are still under /dev/shm."""

    cycles: int
    generations: Tuple[Tuple[str, ...], ...]
    left_after_kills: Tuple[str, ...]
    left_after_clean_exit: Tuple[str, ...]
    bytes_left_after_kills: int
    final_exit_code: Optional[int]

    def text(self) -> str:
        """The report as lines of text."""
        mib = self.bytes_left_after_kills / (1 << 20)
        return (f'sigkill cycles {self.cycles}\n'
                f'segments the killed generations owned {sum(map(len, self.generations))}\n'
                f'left after the last SIGKILL {len(self.left_after_kills)} ({mib:.1f} MiB)\n'
                f'left after one more start and clean exit {len(self.left_after_clean_exit)}\n'
                f'clean exit code {self.final_exit_code}\n'
                f'load average {os.getloadavg()}\n')


def _lock_files() -> FrozenSet[str]:
    """The segments whose `_el` lock file is under /dev/shm now, whoever owns them."""
    try:
        return frozenset(n[:-len('_el')] for n in os.listdir('/dev/shm') if n.endswith('_el'))
    except FileNotFoundError:
        return frozenset()


def _start(work_dir: Path, name: str) -> Tuple[NodeProcess, Tuple[str, ...]]:
    """Start a node and wait until it owns a segment of its own.

    Only segments created after the start count: before its participant exists the node opens
    every lock file already there to reclaim the dead ones, and a sample taken then would
    credit it with its predecessor's segment (or a live process's), and kill it mid-reclaim.
    """
    before = _lock_files()
    node = NodeProcess(work_dir, name, {'diagnostics_period_s': 1.0},
                       extra_env=PROFILE_ENV).start()
    owned: List[Tuple[str, ...]] = [()]

    def owns_one() -> bool:
        owned[0] = tuple(sorted(owned_segments(node.pid) - before))
        return bool(owned[0]) or node.process.poll() is not None
    wait_until(owns_one, START_TIMEOUT_S, period_s=0.05)
    if not owned[0]:
        node.kill()
        raise RuntimeError(f'{name} owned no Fast DDS segment within {START_TIMEOUT_S} s '
                           f'(exit {node.process.poll()}): {node.output()[1][-2000:]}')
    return node, owned[0]


def run_cycles(work_dir: Path, cycles: int) -> CyclesReport:
    """Run `cycles` SIGKILL cycles and the final clean start and stop."""
    prefix = f'sigkill_{os.getpid()}'
    generations = []
    for cycle in range(cycles):
        node, owned = _start(work_dir, f'{prefix}_{cycle}')
        generations.append(owned)
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(30.0)
    segments = sorted(s for owned in generations for s in owned)
    left = existing(segments)
    held = sum(os.stat(f'/dev/shm/{s}').st_blocks * 512 for s in left
               if os.path.exists(f'/dev/shm/{s}'))
    node, _ = _start(work_dir, f'{prefix}_final')
    time.sleep(0.5)
    node.process.send_signal(signal.SIGTERM)
    try:
        code = node.process.wait(30.0)
    except Exception:  # noqa: B902 - reported as no exit code
        node.kill()
        code = None
    return CyclesReport(cycles, tuple(generations), left, existing(segments), held, code)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the cycles from the command line and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--cycles', type=int, default=50)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='sigkill_cycles_') as scratch:
        print(run_cycles(Path(scratch), args.cycles).text(), end='')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
