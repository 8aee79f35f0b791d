"""Measured memory usage, reported beside the budget's prediction.

Three readers, each answering a number of bytes or saying plainly why it cannot:
- Jetson GPU-mapped system memory: `NvMapMemUsed` in `/proc/meminfo` (L4T kernels only);
- discrete-GPU device memory in use, from NVML when `pynvml` is installed (imported lazily);
- this process's resident set, from `/proc/self/status` (VmRSS) or `/proc/self/statm`.
Every reader takes its file root as a parameter, so tests run them on captured samples.
"""

from dataclasses import dataclass, fields
import mmap
import os
from typing import List, NamedTuple, Optional, Tuple

KIB = 1024
PAGE_SIZE = mmap.PAGESIZE


class Measurement(NamedTuple):
    """A number of bytes, or None with the reason it is unavailable."""

    bytes: Optional[int]
    reason: str = ''

    def __str__(self) -> str:
        return str(self.bytes) if self.bytes is not None else f'unavailable: {self.reason}'


def _unavailable(reason: str) -> Measurement:
    return Measurement(None, reason)


def read_meminfo_field(key: str, proc_root: str = '/proc') -> Measurement:
    """One `/proc/meminfo` line ('Key:   123 kB') in bytes."""
    path = os.path.join(proc_root, 'meminfo')
    try:
        with open(path, encoding='ascii', errors='replace') as meminfo:
            lines = meminfo.readlines()
    except OSError as err:
        return _unavailable(f'cannot read {path}: {err.strerror or err}')
    prefix = key + ':'
    for line in lines:
        if line.startswith(prefix):
            return _parse_kib(path, key, line[len(prefix):])
    return _unavailable(f'no {key} line in {path}')


def _parse_kib(path: str, key: str, text: str) -> Measurement:
    parts = text.split()
    if len(parts) == 2 and parts[0].isdigit() and parts[1] == 'kB':
        return Measurement(int(parts[0]) * KIB)
    return _unavailable(f'malformed {key} line in {path}: {text.strip()!r} '
                        "(expected '<integer> kB')")


def read_nvmap_used(proc_root: str = '/proc') -> Measurement:
    """Jetson GPU-mapped system memory (NvMap); unavailable off a Jetson (no such line)."""
    measurement = read_meminfo_field('NvMapMemUsed', proc_root)
    if measurement.bytes is None and measurement.reason.startswith('no NvMapMemUsed line'):
        return _unavailable(measurement.reason + ' (not an L4T/Jetson kernel)')
    return measurement


def read_host_rss(self_dir: str = '/proc/self') -> Measurement:
    """Resident set of the process `self_dir` describes: VmRSS, else statm's pages."""
    status = os.path.join(self_dir, 'status')
    try:
        with open(status, encoding='ascii', errors='replace') as status_file:
            for line in status_file:
                if line.startswith('VmRSS:'):
                    return _parse_kib(status, 'VmRSS', line[len('VmRSS:'):])
    except OSError:
        pass
    statm = os.path.join(self_dir, 'statm')
    try:
        return Measurement(_statm_rss_bytes(statm))
    except OSError as err:
        return _unavailable(f'cannot read {status} (VmRSS) or {statm}: {err.strerror or err}')
    except ValueError as err:
        return _unavailable(f'no VmRSS line in {status}, and {statm} is malformed: {err}')


def _statm_rss_bytes(statm: str) -> int:
    with open(statm, 'rb') as statm_file:
        values = statm_file.read().split()
    if len(values) < 2 or not values[1].isdigit():
        raise ValueError(f'expected "<size> <resident> ..." in pages, found {values[:2]!r}')
    return int(values[1]) * PAGE_SIZE


def current_rss_bytes(self_dir: str = '/proc/self') -> int:
    """This process's resident set in bytes, cheaply (one small read), for leak checks.

    Raises OSError when `<self_dir>/statm` cannot be read and ValueError when it is malformed:
    a leak check must never pass because it measured nothing.
    """
    return _statm_rss_bytes(os.path.join(self_dir, 'statm'))


def read_nvml_used(device_index: int = 0) -> Measurement:
    """Device-wide memory in use on discrete GPU `device_index`, from NVML (all processes)."""
    try:
        import pynvml
    except ImportError:
        return _unavailable('pynvml not installed')
    try:
        pynvml.nvmlInit()
    except Exception as err:  # noqa: B902 - NVMLError and loader errors alike mean "no NVML"
        return _unavailable(f'NVML cannot start: {type(err).__name__}: {err}')
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(device_index)
        return Measurement(int(pynvml.nvmlDeviceGetMemoryInfo(handle).used))
    except Exception as err:  # noqa: B902 - report any NVML failure as unavailable
        return _unavailable(f'NVML device {device_index} memory query failed: '
                            f'{type(err).__name__}: {err}')
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: B902 - shutdown failing must not mask the reading
            pass


@dataclass(frozen=True)
class MeasuredUsage:
    """One measurement of each source; None where unavailable, with the reason kept."""

    nvmap_used_bytes: Optional[int]
    gpu_used_bytes: Optional[int]
    host_rss_bytes: Optional[int]
    unavailable: Tuple[Tuple[str, str], ...] = ()

    def reason(self, field_name: str) -> str:
        """Why `field_name` is unavailable ('' when it has a value)."""
        return dict(self.unavailable).get(field_name, '')

    def as_pairs(self) -> List[Tuple[str, str]]:
        """(field, bytes or 'unavailable: <reason>') pairs for diagnostics."""
        pairs = []
        for item in fields(self):
            if item.name == 'unavailable':
                continue
            value = getattr(self, item.name)
            text = str(value) if value is not None else f'unavailable: {self.reason(item.name)}'
            pairs.append((item.name, text))
        return pairs


def measure_usage(proc_root: str = '/proc', self_dir: Optional[str] = None,
                  nvml: bool = True) -> MeasuredUsage:
    """Read every source once; `self_dir` defaults to `<proc_root>/self`.

    `nvml=False` skips NVML (unavailable, 'NVML not queried'), e.g. on a Jetson where NvMap
    already measures the GPU's share of the one DRAM.
    """
    readings = {
        'nvmap_used_bytes': read_nvmap_used(proc_root),
        'gpu_used_bytes': read_nvml_used() if nvml else _unavailable('NVML not queried'),
        'host_rss_bytes': read_host_rss(self_dir or os.path.join(proc_root, 'self')),
    }
    return MeasuredUsage(
        **{name: reading.bytes for name, reading in readings.items()},
        unavailable=tuple((name, reading.reason) for name, reading in readings.items()
                          if reading.bytes is None))
