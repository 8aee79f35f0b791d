"""Environment: TensorRT, PyCUDA, CUDA driver, device, L4T / JetPack, power mode, thermal zones."""

import subprocess
from typing import Optional

from gps_denied_inference.resources.thermal import ThermalConfig, ThermalZoneReader
from gps_denied_inference.runtimes.device_probe import (
    describe_device,
    installed_tensorrt_version,
    JETPACK_FOR_L4T,
    l4t_release,
    tegra_model_name,
)
from gps_denied_inference.selftest.report import Report
from gps_denied_inference.selftest.session import mib, Session

FAMILY = 'environment'
EXPECTED_TENSORRT = '10.3'
EXPECTED_JETPACK = '6.2'
NVPMODEL_TIMEOUT_S = 10.0


def run(session: Session, report: Report) -> None:
    """One line per environment fact."""
    options = session.options
    version = installed_tensorrt_version()
    criterion = f'TensorRT {EXPECTED_TENSORRT}.x installed'
    if version is None:
        report.unavailable(FAMILY, 'tensorrt', criterion,
                           session.gpu_missing or 'TensorRT is not installed',
                           limit=EXPECTED_TENSORRT)
    else:
        report.verdict(version.split('.')[:2] == EXPECTED_TENSORRT.split('.'), FAMILY,
                       'tensorrt', criterion, version, EXPECTED_TENSORRT,
                       'engines are built and gated for TensorRT 10.3 (JetPack 6.2)')
    cuda = session.cuda
    if cuda is None:
        for check, criterion in (('pycuda', 'PyCUDA imports'),
                                 ('cuda-driver', 'CUDA driver answers'),
                                 ('device', 'GPU name and compute capability')):
            report.unavailable(FAMILY, check, criterion, session.cuda_missing)
    else:
        report.passed(FAMILY, 'pycuda', 'PyCUDA imports', _pycuda_version(cuda))
        report.passed(FAMILY, 'cuda-driver', 'CUDA driver answers',
                      f'driver API {_cuda_version(cuda.get_driver_version())}, PyCUDA built '
                      f'for {_cuda_version(_int_version(cuda.get_version()))}')
        name, capability = session.primary.describe()
        model = tegra_model_name(options.proc_root)
        with session.primary.current():
            free, total = cuda.mem_get_info()
        gated = (f'device-tree model {model!r}' if model else f'CUDA name {name!r}')
        report.passed(FAMILY, 'device', 'GPU name and compute capability',
                      f'{name}, compute capability {capability}, {mib(free)} free of '
                      f'{mib(total)}; engines are gated on the {gated}')
    release = l4t_release(options.etc_root)
    if release is None:
        probed = describe_device(sys_root=options.sys_root, proc_root=options.proc_root,
                                 etc_root=options.etc_root)
        report.skipped(FAMILY, 'l4t', f'L4T release of JetPack {EXPECTED_JETPACK}',
                       f'not a Jetson: no {options.etc_root}/nv_tegra_release '
                       f'(device: {probed.name or "unknown"})', limit='L4T 36.4.3')
    else:
        jetpack = JETPACK_FOR_L4T.get(release)
        report.verdict(jetpack == EXPECTED_JETPACK, FAMILY, 'l4t',
                       f'L4T release of JetPack {EXPECTED_JETPACK}',
                       f'L4T {release} (JetPack {jetpack or "unknown"})', 'L4T 36.4.3',
                       'the package is built and tested for JetPack 6.2')
    mode = power_mode(options.nvpmodel)
    if mode is None:
        report.skipped(FAMILY, 'power-mode', 'nvpmodel power mode readable',
                       f'{" ".join(options.nvpmodel)} is not available on this host')
    else:
        report.passed(FAMILY, 'power-mode', 'nvpmodel power mode readable', mode)
    state = ThermalZoneReader(ThermalConfig(root=options.thermal_root)).read()
    criterion = f'thermal zones readable under {options.thermal_root}'
    if state.zones:
        hottest = state.hottest
        report.passed(FAMILY, 'thermal', criterion,
                      f'{len(state.zones)} zone(s), hottest {hottest.name} '
                      f'{hottest.temp_c:.1f} C ({state.level.name})')
    elif release is None:
        report.skipped(FAMILY, 'thermal', criterion, f'no readable zone ({state.reason})')
    else:
        report.failed(FAMILY, 'thermal', criterion, '0 zones', '>= 1 zone',
                      f'a Jetson without readable thermal zones: {state.reason}')


def power_mode(command: object) -> Optional[str]:
    """`nvpmodel -q`'s mode line ('NV Power Mode: MAXN'), or None where it cannot run."""
    try:
        result = subprocess.run(list(command), capture_output=True, text=True,
                                timeout=NVPMODEL_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return ' / '.join(lines[:2]) if lines else None


def _pycuda_version(cuda: object) -> str:
    try:
        from importlib import metadata
        return f'pycuda {metadata.version("pycuda")}'
    except Exception:  # noqa: B902 - the fake or a source install has no metadata
        return f'pycuda (module {getattr(cuda, "__file__", "?")})'


def _int_version(value: object) -> int:
    """PyCUDA's get_version() is a tuple (12, 6, 0); the driver's an int 12060."""
    if isinstance(value, tuple):
        major, minor = value[0], value[1] if len(value) > 1 else 0
        return major * 1000 + minor * 10
    return int(value)


def _cuda_version(value: int) -> str:
    return f'{value // 1000}.{value % 1000 // 10}'
