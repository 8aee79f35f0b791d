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
"""

from dataclasses import dataclass
import errno
import fcntl
import os
import re
from typing import List, Tuple

SHM_DIR = '/dev/shm'
_LOCK_FILE = re.compile(r'(?:fastdds|fastrtps)_[0-9a-z]{16}_el')


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


def reclaim_dead_segments(shm_dir: str = SHM_DIR) -> Reclaimed:
    """Remove every segment whose lock file no live process holds; see the module docstring.

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
    return Reclaimed(tuple(removed), freed)


def _unlink(path: str) -> int:
    """Remove `path`; return the bytes of memory it held (0 when it was already gone)."""
    try:
        held = os.stat(path).st_blocks * 512
        os.unlink(path)
    except FileNotFoundError:
        return 0
    return held
