"""CPU accounting from /proc: real files in tmp_path, and this very process."""

import os
import time

import pytest

from gps_denied_inference.bench.cpu import busy_fraction, CLOCK_TICKS, machine_cpu, process_cpu_s


def _write_stat(root, pid, name, utime, stime):
    fields = ['S'] + ['0'] * 10 + [str(utime), str(stime)] + ['0'] * 30
    path = root / str(pid)
    path.mkdir(parents=True)
    (path / 'stat').write_text(f'{pid} ({name}) ' + ' '.join(fields) + '\n')


@pytest.mark.parametrize('name', ['python3', 'a b', 'odd) name (x', 'worker-corners'])
def test_process_cpu_adds_user_and_system_time(tmp_path, name):
    _write_stat(tmp_path, 42, name, utime=3 * CLOCK_TICKS, stime=CLOCK_TICKS // 2)
    assert process_cpu_s(42, str(tmp_path)) == pytest.approx(3.5, abs=1 / CLOCK_TICKS)


def test_a_missing_process_raises():
    with pytest.raises(OSError):
        process_cpu_s(2 ** 22 + 1, '/proc')


def test_this_process_cpu_time_grows_with_work():
    before = process_cpu_s(os.getpid())
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert process_cpu_s(os.getpid()) > before


def test_machine_cpu_reads_busy_and_total(tmp_path):
    ticks = CLOCK_TICKS
    # user nice system idle iowait irq softirq steal
    (tmp_path / 'stat').write_text(
        f'cpu  {2 * ticks} 0 {ticks} {5 * ticks} {ticks} 0 0 {ticks} 0 0\ncpu0 1 2 3 4\n')
    busy, total = machine_cpu(str(tmp_path))
    assert busy == pytest.approx(4.0)
    assert total == pytest.approx(10.0)


@pytest.mark.parametrize('before, after, expected', [
    ((0.0, 0.0), (1.0, 2.0), 0.5), ((5.0, 10.0), (5.0, 12.0), 0.0),
    ((1.0, 4.0), (3.0, 6.0), 1.0), ((1.0, 4.0), (1.0, 4.0), 0.0)])
def test_busy_fraction(before, after, expected):
    assert busy_fraction(before, after) == pytest.approx(expected)


def test_the_real_machine_reading_is_consistent():
    busy, total = machine_cpu()
    assert 0 < busy <= total
