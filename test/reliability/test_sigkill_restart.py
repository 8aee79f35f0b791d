"""A node killed with SIGKILL and restarted never lets /dev/shm grow (sigkill_cycles.py).

Each successor reclaims the Fast DDS segment its killed predecessor left, so after any number
of cycles only the last killed generation's segment remains, and one clean start and exit
leaves none. CI size is 3 cycles; `make reliability` runs the issue's 50. The report goes to
build/reliability/sigkill_cycles[_full].txt.
"""

from pathlib import Path

import pytest
from sigkill_cycles import run_cycles

FIGURES = Path(__file__).resolve().parents[2] / 'build' / 'reliability'


@pytest.mark.slow
def test_sigkill_and_restart_cycles_leave_at_most_the_last_killed_segment(tmp_path, sizing):
    report = run_cycles(tmp_path, sizing.sigkill_cycles)
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / f'sigkill_cycles{"_full" if sizing.full else ""}.txt').write_text(report.text())
    assert all(report.generations), report.text()
    assert set(report.left_after_kills) <= set(report.generations[-1]), report.text()
    assert report.left_after_clean_exit == (), report.text()
    assert report.final_exit_code == 0, report.text()
