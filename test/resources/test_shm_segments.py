"""Dead processes' Fast DDS segments are reclaimed; live ones and other files never are."""

import fcntl
import os
import subprocess
import sys

import pytest

from gps_denied_inference.resources.shm_segments import reclaim_dead_segments

DEAD = 'fastdds_0123456789abcdef'
LIVE = 'fastdds_fedcba9876543210'
HUMBLE_DEAD = 'fastrtps_00112233445566aa'
# A boost.interprocess managed segment whose creator finished: init word 2 at offset 0.
INITIALISED = b'\2\0\0\0' + bytes(4092)


def _segment(shm, name, size=4096):
    (shm / name).write_bytes(b'\1' * size)
    (shm / f'{name}_el').touch()


@pytest.fixture
def lock_holder(tmp_path):
    """A live process holding LOCK_EX on a lock file, as a Fast DDS participant does."""
    processes = []

    def hold(path):
        process = subprocess.Popen(
            [sys.executable, '-c',
             'import fcntl, os, sys, time\n'
             'fd = os.open(sys.argv[1], os.O_RDONLY)\n'
             'fcntl.flock(fd, fcntl.LOCK_EX)\n'
             'print("locked", flush=True)\n'
             'time.sleep(120)\n', str(path)], stdout=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout.readline().strip() == 'locked'
        return process
    yield hold
    for process in processes:
        process.kill()
        process.wait()


def test_a_dead_owners_segment_and_lock_file_are_removed(tmp_path):
    _segment(tmp_path, DEAD, size=8192)
    _segment(tmp_path, HUMBLE_DEAD)
    reclaimed = reclaim_dead_segments(str(tmp_path))
    assert sorted(reclaimed.segments) == sorted([DEAD, HUMBLE_DEAD])
    assert reclaimed.bytes_freed >= 8192 + 4096
    assert os.listdir(tmp_path) == []
    assert DEAD in reclaimed.describe()


def test_a_live_owners_segment_is_never_touched(tmp_path, lock_holder):
    _segment(tmp_path, LIVE)
    _segment(tmp_path, DEAD)
    owner = lock_holder(tmp_path / f'{LIVE}_el')
    assert reclaim_dead_segments(str(tmp_path)).segments == (DEAD,)
    assert sorted(os.listdir(tmp_path)) == [LIVE, f'{LIVE}_el']
    owner.kill()
    owner.wait()
    assert reclaim_dead_segments(str(tmp_path)).segments == (LIVE,)
    assert os.listdir(tmp_path) == []


def test_a_lock_held_within_this_process_counts_as_live(tmp_path):
    _segment(tmp_path, LIVE)
    fd = os.open(tmp_path / f'{LIVE}_el', os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert reclaim_dead_segments(str(tmp_path)).segments == ()
        assert sorted(os.listdir(tmp_path)) == [LIVE, f'{LIVE}_el']
    finally:
        os.close(fd)


def test_initialised_ports_semaphores_and_other_files_are_left_alone(tmp_path):
    others = ['fastdds_port7400_el', 'sem.fastdds_port7400_mutex',
              'fastdds_0123456789abcde_el', 'fastdds_0123456789ABCDEF_el', 'my_cache_el',
              'fastdds_0123456789abcdef_sl', 'fastdds_0123456789abcdef', 'fastdds_port',
              'fastdds_port7400x']
    for name in others:
        (tmp_path / name).touch()
    (tmp_path / 'fastdds_port7400').write_bytes(INITIALISED)
    (tmp_path / 'fastrtps_port7411').write_bytes(INITIALISED)
    assert reclaim_dead_segments(str(tmp_path)).segments == ()
    assert sorted(os.listdir(tmp_path)) == sorted(
        others + ['fastdds_port7400', 'fastrtps_port7411'])


@pytest.mark.parametrize('name, content', [
    ('fastdds_port7411', bytes(52400)),
    ('fastrtps_port7411', bytes(52400)),
    ('fastdds_port7000', b'\1\0\0\0' + bytes(52396)),
    ('fastdds_port7413', b''),
])
def test_a_port_segment_a_dead_creator_left_uninitialised_is_removed(tmp_path, name, content):
    """Every participant that opened it would wait forever for its creator to finish."""
    (tmp_path / name).write_bytes(content)
    (tmp_path / f'{name}_el').touch()
    reclaimed = reclaim_dead_segments(str(tmp_path))
    assert reclaimed.segments == (name,) and name in reclaimed.describe()
    assert os.listdir(tmp_path) == [f'{name}_el']


def test_an_uninitialised_port_segment_a_live_process_holds_is_kept(tmp_path):
    """Its creator may still be initialising it: open (as while creating) or mapped."""
    held, mapped = tmp_path / 'fastdds_port7411', tmp_path / 'fastdds_port7413'
    for path in (held, mapped):
        path.write_bytes(bytes(4096))
    holder = subprocess.Popen(
        [sys.executable, '-c',
         'import mmap, os, sys, time\n'
         'held = open(sys.argv[1], "rb")\n'
         'with open(sys.argv[2], "r+b") as f:\n'
         '    view = mmap.mmap(f.fileno(), 0)\n'
         'print("holding", flush=True)\n'
         'time.sleep(120)\n', str(held), str(mapped)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == 'holding'
        assert reclaim_dead_segments(str(tmp_path)).segments == ()
        with open(held, 'rb'):
            holder.kill()
            holder.wait()
            assert reclaim_dead_segments(str(tmp_path)).segments == ('fastdds_port7413',)
        assert reclaim_dead_segments(str(tmp_path)).segments == ('fastdds_port7411',)
    finally:
        holder.kill()
        holder.wait()
    assert os.listdir(tmp_path) == []


def test_a_lock_file_whose_segment_is_gone_is_removed(tmp_path):
    (tmp_path / f'{DEAD}_el').touch()
    reclaimed = reclaim_dead_segments(str(tmp_path))
    assert reclaimed.segments == (DEAD,) and reclaimed.bytes_freed == 0
    assert os.listdir(tmp_path) == []


def test_no_shm_directory_reclaims_nothing(tmp_path):
    assert reclaim_dead_segments(str(tmp_path / 'absent')).segments == ()
