"""A node killed with SIGKILL and restarted never lets /dev/shm grow (sigkill_cycles.py).

Each successor reclaims the Fast DDS segment its killed predecessor left, so after any number
of cycles only the last killed generation's segment remains, and one clean start and exit
leaves none; a port segment a predecessor was killed while creating does not hang it. CI
size is 3 cycles; `make reliability` runs the issue's 50. The report goes to
build/reliability/sigkill_cycles[_full].txt.
"""

import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys

from node_harness import wait_until
import pytest
from reliability_support import write_params_file
from shutdown_stress import PROFILE_ENV
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


def _private_shm_available() -> bool:
    """Whether this host lets an unprivileged process have a /dev/shm of its own."""
    if shutil.which('unshare') is None:
        return False
    done = subprocess.run(['unshare', '-Urm', 'sh', '-c', PRIVATE_SHM + 'true'],
                          capture_output=True, timeout=30)
    return done.returncode == 0


# Run in a user and mount namespace with an empty /dev/shm of its own, so the planted segment
# cannot touch the segments this test process and the rest of the host use.
PRIVATE_SHM = 'mount -t tmpfs tmpfs /dev/shm && '
# All zeros at full size: the state a creator killed before initialising the segment leaves.
PLANT = ('head -c 52400 /dev/zero > /dev/shm/fastdds_port7000 && '
         'head -c 52400 /dev/zero > /dev/shm/fastrtps_port7000 && ')


def test_a_port_segment_a_killed_creator_left_uninitialised_does_not_hang_the_next_node(
        tmp_path):
    """Killed between creating and initialising a port's segment, a node leaves it all zeros.

    Every later participant on the host opens port 7000's segment and would wait forever in
    rmw_create_node, deaf to SIGTERM; the successor removes it before creating its own.
    """
    if not _private_shm_available():
        pytest.skip('no unprivileged user and mount namespaces here (unshare -Urm)')
    params = write_params_file(tmp_path / 'stale.yaml', 'stale_port', {'autostart': False})
    out_path = tmp_path / 'node.out'
    with open(out_path, 'wb') as out:
        node = subprocess.Popen(
            ['unshare', '-Urm', 'sh', '-c', PRIVATE_SHM + PLANT + 'exec "$0" "$@"',
             sys.executable, '-m', 'gps_denied_inference.node', '--ros-args',
             '-r', '__node:=stale_port', '--params-file', str(params)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **PROFILE_ENV})
    try:
        reclaimed = wait_until(lambda: b'fastdds_port7000' in out_path.read_bytes(), 60.0)
        node.send_signal(signal.SIGTERM)
        code = node.wait(30.0)
    finally:
        if node.poll() is None:
            node.kill()
            node.wait(10.0)
    output = out_path.read_text(errors='replace')
    assert reclaimed and code == 0, output
    assert 'reclaimed 2 Fast DDS shared-memory segment(s)' in output
