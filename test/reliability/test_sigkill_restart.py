"""A node killed with SIGKILL and restarted never lets /dev/shm grow (sigkill_cycles.py).

Each successor reclaims the Fast DDS segment its killed predecessor left, so after any number
of cycles only the last killed generation's segment remains, and one clean start and exit
leaves none; a port segment a predecessor was killed while creating does not hang it. CI
size is 3 cycles; `make reliability` runs the issue's 50. The report goes to
build/reliability/sigkill_cycles[_full].txt.
"""

import os
from pathlib import Path
import signal

from node_harness import wait_until
import pytest
from sigkill_cycles import run_cycles, start_owner

from gps_denied_inference.resources.shm_segments import held_open

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


def test_a_port_segment_a_killed_creator_left_uninitialised_does_not_hang_the_next_node(
        tmp_path):
    """Killed between creating and initialising a port's segment, a node leaves it all zeros.

    Every later participant on the host opens port 7000's segment (shared by all) and would
    wait forever in rmw_create_node, deaf to SIGTERM; the successor removes it first.
    """
    planted = [Path('/dev/shm', f'{kind}_port7000') for kind in ('fastdds', 'fastrtps')]
    if any(held_open(str(path), os.geteuid(), '/proc') for path in planted):
        pytest.skip('a live process uses port 7000: its segment cannot be replaced')
    for path in planted:
        path.unlink(missing_ok=True)
        path.write_bytes(bytes(52400))
    try:
        node, _ = start_owner(tmp_path, f'stale_port_{os.getpid()}')
        try:
            reclaimed = wait_until(lambda: 'fastdds_port7000' in ''.join(node.output()), 30.0)
            node.process.send_signal(signal.SIGTERM)
            code = node.process.wait(30.0)
        finally:
            node.kill()
        assert reclaimed and code == 0, node.output()
        assert all(not path.exists() or path.read_bytes()[:4] != bytes(4) for path in planted)
    finally:
        for path in planted:
            if path.exists() and path.read_bytes()[:4] == bytes(4):
                path.unlink()

