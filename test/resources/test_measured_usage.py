"""Measured-usage readers on captured /proc samples, crafted files and this machine's /proc."""

from pathlib import Path
import sys
import types

import pytest

from gps_denied_inference.resources.measured_usage import (
    current_rss_bytes,
    measure_usage,
    MeasuredUsage,
    Measurement,
    PAGE_SIZE,
    read_host_rss,
    read_meminfo_field,
    read_nvmap_used,
    read_nvml_used,
)

SAMPLES = Path(__file__).resolve().parents[1] / 'data' / 'proc'
ORIN = SAMPLES / 'jetson_orin'
DESKTOP = SAMPLES / 'desktop'
MIB = 2 ** 20


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_jetson_sample_reports_its_gpu_mapped_memory_in_bytes():
    assert read_nvmap_used(str(ORIN)) == Measurement(1536512 * 1024)


@pytest.mark.parametrize('root,key,kib', [
    (ORIN, 'MemTotal', 15655316), (ORIN, 'NvMapMemFree', 50176), (ORIN, 'CmaTotal', 524288),
    (DESKTOP, 'MemTotal', 24683656), (DESKTOP, 'MemAvailable', 24016264),
])
def test_meminfo_fields_are_read_in_bytes(root, key, kib):
    assert read_meminfo_field(key, str(root)).bytes == kib * 1024


def test_a_desktop_has_no_nvmap_and_says_so():
    measurement = read_nvmap_used(str(DESKTOP))
    assert measurement.bytes is None
    assert measurement.reason == (f'no NvMapMemUsed line in {DESKTOP}/meminfo '
                                  '(not an L4T/Jetson kernel)')
    assert str(measurement).startswith('unavailable: no NvMapMemUsed line')


def test_a_missing_meminfo_is_unavailable_naming_the_file(tmp_path):
    measurement = read_nvmap_used(str(tmp_path))
    assert measurement.bytes is None
    assert measurement.reason.startswith(f'cannot read {tmp_path}/meminfo: ')


@pytest.mark.parametrize('line', [
    'NvMapMemUsed:     abc kB', 'NvMapMemUsed:    1536 MB', 'NvMapMemUsed:', 'NvMapMemUsed: -5 kB',
    'NvMapMemUsed:   1536512',
])
def test_a_malformed_nvmap_line_is_unavailable_quoting_it(tmp_path, line):
    write(tmp_path, 'meminfo', f'MemTotal:  100 kB\n{line}\n')
    measurement = read_nvmap_used(str(tmp_path))
    assert measurement.bytes is None
    assert measurement.reason.startswith(f'malformed NvMapMemUsed line in {tmp_path}/meminfo')


def test_host_rss_is_vmrss_from_the_captured_status():
    assert read_host_rss(str(DESKTOP / 'self')) == Measurement(13596 * 1024)


def test_the_captured_statm_agrees_with_its_status_on_4k_pages():
    statm_pages = int((DESKTOP / 'self' / 'statm').read_text().split()[1])
    assert statm_pages * 4096 == 13596 * 1024


def test_without_vmrss_the_resident_pages_of_statm_are_used(tmp_path):
    # Kernel threads and some sandboxes have a status without Vm* lines.
    write(tmp_path, 'status', 'Name:\tkthreadd\nState:\tS (sleeping)\n')
    write(tmp_path, 'statm', '0 250 0 0 0 0 0\n')
    assert read_host_rss(str(tmp_path)) == Measurement(250 * PAGE_SIZE)
    (tmp_path / 'status').unlink()
    assert read_host_rss(str(tmp_path)) == Measurement(250 * PAGE_SIZE)


def test_host_rss_is_unavailable_when_neither_file_can_be_read(tmp_path):
    measurement = read_host_rss(str(tmp_path / 'gone'))
    assert measurement.bytes is None
    assert 'cannot read' in measurement.reason and 'statm' in measurement.reason


def test_host_rss_is_unavailable_when_statm_is_malformed(tmp_path):
    write(tmp_path, 'statm', 'garbage\n')
    measurement = read_host_rss(str(tmp_path))
    assert measurement.bytes is None
    assert 'is malformed' in measurement.reason


def test_current_rss_reads_statm_pages():
    assert current_rss_bytes(str(DESKTOP / 'self')) == 3399 * PAGE_SIZE


@pytest.mark.parametrize('statm,error', [(None, OSError), ('12\n', ValueError),
                                         ('12 x 3\n', ValueError)])
def test_current_rss_refuses_to_measure_nothing(tmp_path, statm, error):
    if statm is not None:
        write(tmp_path, 'statm', statm)
    with pytest.raises(error):
        current_rss_bytes(str(tmp_path))


def test_current_rss_of_this_process_sees_a_touched_allocation():
    before = current_rss_bytes()
    block = b'\x01' * (64 * MIB)  # written, so every page is resident
    grown = current_rss_bytes() - before
    del block
    assert grown >= 48 * MIB


def test_the_live_readers_agree_on_this_process():
    live = read_host_rss()
    assert live.bytes is not None, live.reason
    assert abs(live.bytes - current_rss_bytes()) < 16 * MIB


def test_nvml_without_pynvml_is_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, 'pynvml', None)  # import pynvml -> ImportError
    assert read_nvml_used() == Measurement(None, 'pynvml not installed')


class NVMLError(Exception):
    pass


def fake_pynvml(used=3 * 2 ** 30, fail_init=False, fail_query=False):
    """A stand-in pynvml with NVML's call shape, recording its calls."""
    module = types.ModuleType('pynvml')
    module.calls = []

    def init():
        module.calls.append('init')
        if fail_init:
            raise NVMLError('Driver Not Loaded')

    def handle(index):
        module.calls.append(f'handle {index}')
        return f'device{index}'

    def memory_info(device):
        module.calls.append(f'memory {device}')
        if fail_query:
            raise NVMLError('Not Supported')
        return types.SimpleNamespace(total=80 * 2 ** 30, free=80 * 2 ** 30 - used, used=used)

    module.nvmlInit = init
    module.nvmlDeviceGetHandleByIndex = handle
    module.nvmlDeviceGetMemoryInfo = memory_info
    module.nvmlShutdown = lambda: module.calls.append('shutdown')
    return module


def test_nvml_reports_device_memory_used_and_shuts_down(monkeypatch):
    module = fake_pynvml()
    monkeypatch.setitem(sys.modules, 'pynvml', module)
    assert read_nvml_used(1) == Measurement(3 * 2 ** 30)
    assert module.calls == ['init', 'handle 1', 'memory device1', 'shutdown']


def test_nvml_that_cannot_start_is_unavailable_with_the_cause(monkeypatch):
    monkeypatch.setitem(sys.modules, 'pynvml', fake_pynvml(fail_init=True))
    assert read_nvml_used() == Measurement(
        None, 'NVML cannot start: NVMLError: Driver Not Loaded')


def test_nvml_memory_unsupported_on_unified_memory_is_unavailable(monkeypatch):
    module = fake_pynvml(fail_query=True)
    monkeypatch.setitem(sys.modules, 'pynvml', module)
    assert read_nvml_used() == Measurement(
        None, 'NVML device 0 memory query failed: NVMLError: Not Supported')
    assert module.calls[-1] == 'shutdown'


def test_measure_usage_on_the_jetson_sample():
    usage = measure_usage(str(ORIN), self_dir=str(DESKTOP / 'self'), nvml=False)
    assert (usage.nvmap_used_bytes, usage.gpu_used_bytes, usage.host_rss_bytes) == (
        1536512 * 1024, None, 13596 * 1024)
    assert usage.as_pairs() == [('nvmap_used_bytes', str(1536512 * 1024)),
                                ('gpu_used_bytes', 'unavailable: NVML not queried'),
                                ('host_rss_bytes', str(13596 * 1024))]


def test_measure_usage_says_why_each_source_is_missing(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, 'pynvml', None)
    usage = measure_usage(str(tmp_path))
    assert usage == MeasuredUsage(None, None, None, usage.unavailable)
    assert usage.reason('gpu_used_bytes') == 'pynvml not installed'
    assert usage.reason('nvmap_used_bytes').startswith(f'cannot read {tmp_path}/meminfo')
    assert f'{tmp_path}/self/status' in usage.reason('host_rss_bytes')
    assert all(text.startswith('unavailable: ') for _, text in usage.as_pairs())


def test_measure_usage_on_this_machine():
    usage = measure_usage()
    assert usage.host_rss_bytes is not None and usage.host_rss_bytes > 0
    is_jetson = 'NvMapMemUsed:' in Path('/proc/meminfo').read_text()
    assert (usage.nvmap_used_bytes is not None) == is_jetson
    assert (usage.gpu_used_bytes is None) == bool(usage.reason('gpu_used_bytes'))
    assert usage.reason('host_rss_bytes') == ''
