"""Reclaim the Fast DDS shared-memory segments that dead processes left under /dev/shm.

Every participant with the shared-memory transport creates a segment `fastdds_<16 chars>`
(Fast DDS 3.x; `fastrtps_...` in 2.x, Humble) and, before it, a lock file of the same name
plus `_el` that it holds locked with flock(LOCK_EX) for the life of the segment; a normal
exit removes both. A process killed outright (SIGKILL, OOM killer, watchdog) leaves them.
Fast DDS removes such a segment only from a live peer that had it open, checked every
5 s; nothing reclaims the segment of a node whose peers died too or never talked to it,
and the shipped profile's segments are 32 MiB of RAM each on a Jetson (/dev/shm is RAM).

The rule here is Fast DDS's own (`fastdds shm clean`, and the peers' watchdog): a lock file
that can be locked has no live owner. Only then are the segment and its lock file removed,
segment first, while holding that lock. A live owner's lock cannot be taken, so the segments
of running processes are never touched, whoever runs them. A participant that is being
created opens its lock file before it locks it; if this removes the file in between, Fast
DDS sees the file gone after locking and creates it again (RobustExclusiveLock).

Port segments (`fastdds_port<N>`, shared by every participant listening on port N) are kept
by Fast DDS across processes, but one whose creator was killed between creating it and
initialising it is never completed: every later participant that opens it spins forever
inside rmw_create_node (boost.interprocess waits for the creator), deaf to SIGINT and
SIGTERM. Such a segment (its init word, at offset 0, not yet InitializedSegment) is removed
when no live process of its owner has it open or mapped; a creator still at work holds it.
"""

from dataclasses import dataclass
import errno
import fcntl
import os
import re
from typing import List, Tuple

SHM_DIR = '/dev/shm'
PROC_DIR = '/proc'
_LOCK_FILE = re.compile(r'(?:fastdds|fastrtps)_[0-9a-z]{16}_el')
_PORT_SEGMENT = re.compile(r'(?:fastdds|fastrtps)_port[0-9]+')
# boost.interprocess managed segments start with this word once their creator is done.
_INITIALIZED_SEGMENT = 2


@dataclass(frozen=True)
class Reclaimed:
    """What one reclaim removed: segment names and the memory they held."""

    segments: Tuple[str, ...]
    bytes_freed: int

    def describe(self) -> str:
        """One line for the log."""
        return (f'reclaimed {len(self.segments)} Fast DDS shared-memory segment(s) left by '
                f'dead processes ({self.bytes_freed / (1 << 20):.1f} MiB): '
                + ', '.join(self.segments))


def reclaim_dead_segments(shm_dir: str = SHM_DIR, proc_dir: str = PROC_DIR) -> Reclaimed:
    """Remove dead owners' segments and port segments a dead creator left uninitialised.

    The rules are in the module docstring.

    Files that vanish meanwhile (a peer reclaimed them first) or that this process may not
    open are skipped; nothing raises for a single file.
    """
    try:
        names = sorted(os.listdir(shm_dir))
    except FileNotFoundError:
        return Reclaimed((), 0)
    removed: List[str] = []
    freed = 0
    for name in names:
        if not _LOCK_FILE.fullmatch(name):
            continue
        lock_path = os.path.join(shm_dir, name)
        try:
            fd = os.open(lock_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    continue
                raise
            segment = name[:-len('_el')]
            freed += _unlink(os.path.join(shm_dir, segment))
            _unlink(lock_path)
            removed.append(segment)
        except OSError:
            continue
        finally:
            os.close(fd)
    for name in names:
        if _PORT_SEGMENT.fullmatch(name):
            freed += _reclaim_if_abandoned(shm_dir, name, removed, proc_dir)
    return Reclaimed(tuple(removed), freed)


def _reclaim_if_abandoned(shm_dir: str, name: str, removed: List[str], proc_dir: str) -> int:
    """Remove a port segment left uninitialised by a dead creator; return the bytes freed."""
    path = os.path.join(shm_dir, name)
    try:
        with open(path, 'rb') as segment:
            head = segment.read(4)
            owner = os.fstat(segment.fileno()).st_uid
    except OSError:
        return 0
    if len(head) == 4 and int.from_bytes(head, 'little') == _INITIALIZED_SEGMENT:
        return 0
    if owner != os.geteuid() or held_open(path, owner, proc_dir):
        return 0
    try:
        freed = _unlink(path)
    except OSError:
        return 0
    removed.append(name)
    return freed


def held_open(path: str, owner: int, proc_dir: str) -> bool:
    """Whether a live process of `owner` has the file at `path` open or mapped.

    A creator holds the segment open from creating it to initialising it, so a segment that
    no process holds has no creator at work. Files are compared by device and inode, not by
    name: another mount namespace's /dev/shm has files of the same names.
    """
    try:
        target = os.stat(path)
    except OSError:
        return False
    identity = (target.st_dev, target.st_ino)
    for pid in filter(str.isdigit, os.listdir(proc_dir)):
        process = os.path.join(proc_dir, pid)
        try:
            if os.stat(process).st_uid != owner:
                continue
            with open(os.path.join(process, 'maps'), encoding='utf-8',
                      errors='replace') as maps:
                if any(_mapped_file(line) == identity for line in maps):
                    return True
            fds = os.path.join(process, 'fd')
            if any(_opened_file(os.path.join(fds, fd)) == identity for fd in os.listdir(fds)):
                return True
        except OSError:
            continue  # gone, or not inspectable (not dumpable): not a participant of ours
    return False


def _mapped_file(line: str) -> Tuple[int, int]:
    """(device, inode) of one /proc/<pid>/maps line; inode 0 for anonymous memory."""
    fields = line.split(maxsplit=5)
    if len(fields) < 5:
        return (0, 0)
    major, _, minor = fields[3].partition(':')
    return (os.makedev(int(major, 16), int(minor, 16)), int(fields[4]))


def _opened_file(fd_link: str) -> Tuple[int, int]:
    try:
        opened = os.stat(fd_link)
    except OSError:
        return (0, 0)
    return (opened.st_dev, opened.st_ino)


def _unlink(path: str) -> int:
    """Remove `path`; return the bytes of memory it held (0 when it was already gone)."""
    try:
        held = os.stat(path).st_blocks * 512
        os.unlink(path)
    except FileNotFoundError:
        return 0
    return held
