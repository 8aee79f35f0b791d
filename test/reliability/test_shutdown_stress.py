"""The shutdown stress (shutdown_stress.py) at CI size, or at full size under `make reliability`.

Every run takes a node process through the whole lifecycle over real services and ends it
with SIGINT or SIGTERM at a random moment with frames in flight; every exit must be a clean
0 with nothing of its Fast DDS shared memory left. CI size is one run per (moment, signal)
and two SIGINT runs under the race amplifier (about 20 s: the only test of the whole
sequence across processes, and the amplified runs are what catch a teardown that races
rclpy's signal thread again); full size is the issue's 500+ shutdowns, with and without a
CPU hog. The summary goes to build/reliability/shutdown_stress[_full].txt.
"""

import os
from pathlib import Path
import random

import pytest
from shutdown_stress import run_many, summary

FIGURES = Path(__file__).resolve().parents[2] / 'build' / 'reliability'


@pytest.mark.slow
def test_every_shutdown_of_the_whole_sequence_exits_0_and_leaves_nothing(
        ros_context, tmp_path, sizing):
    seed = random.SystemRandom().randrange(1 << 30)
    pin_cpu = max(os.sched_getaffinity(0))
    results = run_many(ros_context, tmp_path / 'plain', sizing.shutdown_runs, seed)
    results += run_many(ros_context, tmp_path / 'hog', sizing.shutdown_hog_runs, seed + 1,
                        hogs=1, first_index=len(results))
    results += run_many(ros_context, tmp_path / 'amplified', sizing.shutdown_amplified_runs,
                        seed + 2, hogs=1, pin_cpu=pin_cpu, amplify=True, signals=('SIGINT',),
                        first_index=len(results))
    report = f'seed {seed}\n{summary(results)}\n'
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / f'shutdown_stress{"_full" if sizing.full else ""}.txt').write_text(report)
    abnormal = [r for r in results if r.abnormal]
    logs = '\n'.join(p.read_text()[-4000:] for p in sorted(tmp_path.glob('*/*/abnormal/*')))
    assert not abnormal, f'{report}\n{logs}'
