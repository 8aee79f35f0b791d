"""What this host can run, learned without TensorRT or CUDA: the gate runs before either loads.

The installed TensorRT version (package metadata or the `tensorrt` package's version line,
read as text), the compute capability and device name (Tegra chip id or device tree on
Jetson, nvidia-smi elsewhere) and the L4T / JetPack release. Every root is a parameter, so
tests run on files in a temporary directory.
"""

from dataclasses import dataclass
from importlib import metadata
import importlib.util
from pathlib import Path
import re
import subprocess
from typing import Optional, Sequence, Tuple, Union

from gps_denied_inference.artifacts.gate import GateExpectation
from gps_denied_inference.errors import RuntimeUnavailableError

PathLike = Union[str, Path]

TENSORRT_DISTRIBUTIONS = ('tensorrt', 'tensorrt-cu12', 'tensorrt-cu12-bindings',
                          'tensorrt-cu11', 'tensorrt-cu11-bindings')
# Tegra chip id -> (SoC, compute capability of its integrated GPU).
TEGRA_CHIPS = {0x21: ('tegra210', '5.3'), 0x18: ('tegra186', '6.2'),
               0x19: ('tegra194', '7.2'), 0x23: ('tegra234', '8.7')}
SOC_COMPUTE_CAPABILITY = dict(TEGRA_CHIPS.values())
# L4T release -> JetPack release (NVIDIA's Jetson release notes).
JETPACK_FOR_L4T = {'36.4.7': '6.2.1', '36.4.4': '6.2.1', '36.4.3': '6.2', '36.4.0': '6.1',
                   '36.3.0': '6.0', '35.6.0': '5.1.4', '35.5.0': '5.1.3', '35.4.1': '5.1.2',
                   '35.3.1': '5.1.1', '35.2.1': '5.1'}
NVIDIA_SMI_TIMEOUT_S = 10.0

_VERSION_LINE = re.compile(r"""^__version__\s*=\s*['"]([0-9][0-9A-Za-z.+-]*)['"]""",
                           re.MULTILINE)
_L4T_LINE = re.compile(r'^#\s*R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)\.(\d+)')
_CAPABILITY = re.compile(r'^\d+\.\d+$')


@dataclass(frozen=True)
class DeviceDescription:
    """The GPU this host runs engines on, as far as it can be known without CUDA."""

    name: Optional[str]
    compute_capability: Optional[str]
    source: str
    l4t_release: Optional[str] = None
    jetpack_release: Optional[str] = None


def installed_tensorrt_version() -> Optional[str]:
    """The installed TensorRT's version, or None; TensorRT itself is never imported."""
    for distribution in TENSORRT_DISTRIBUTIONS:
        try:
            return metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    try:
        spec = importlib.util.find_spec('tensorrt')
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith('.py'):
        return None
    return version_from_init_source(spec.origin)


def version_from_init_source(path: PathLike) -> Optional[str]:
    """The `__version__` an `__init__.py` assigns, read as text; None if it assigns none."""
    try:
        text = Path(path).read_text(encoding='utf-8', errors='replace')
    except OSError:
        return None
    match = _VERSION_LINE.search(text)
    return match.group(1) if match else None


def tegra_compute_capability(sys_root: PathLike = '/sys',
                             proc_root: PathLike = '/proc') -> Optional[Tuple[str, str]]:
    """(compute capability, evidence) of a Jetson's integrated GPU, or None off Jetson."""
    chip_file = Path(sys_root) / 'module' / 'tegra_fuse' / 'parameters' / 'tegra_chip_id'
    text = _read_text(chip_file)
    if text:
        try:
            chip = int(text.strip(), 0)
        except ValueError:
            chip = None
        if chip in TEGRA_CHIPS:
            soc, capability = TEGRA_CHIPS[chip]
            return capability, f'{chip_file} = {text.strip()} ({soc})'
    compatible_file = Path(proc_root) / 'device-tree' / 'compatible'
    for entry in (_read_text(compatible_file) or '').split('\0'):
        soc = entry.strip().split(',')[-1]
        if entry.startswith('nvidia,') and soc in SOC_COMPUTE_CAPABILITY:
            return SOC_COMPUTE_CAPABILITY[soc], f'{compatible_file} names {entry.strip()}'
    return None


def tegra_model_name(proc_root: PathLike = '/proc') -> Optional[str]:
    """The board's model string from the device tree ('NVIDIA Jetson AGX Orin ...')."""
    text = _read_text(Path(proc_root) / 'device-tree' / 'model')
    name = text.replace('\0', '').strip() if text else ''
    return name or None


def nvidia_smi_query(command: Sequence[str] = ('nvidia-smi',),
                     index: int = 0) -> Optional[Tuple[str, str]]:
    """(compute capability, name) of discrete GPU `index` from nvidia-smi, or None."""
    try:
        result = subprocess.run(
            [*command, f'--id={index}', '--query-gpu=compute_cap,name',
             '--format=csv,noheader'], capture_output=True, text=True,
            timeout=NVIDIA_SMI_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    for line in result.stdout.splitlines():
        capability, _, name = (part.strip() for part in line.partition(','))
        if _CAPABILITY.match(capability) and name:
            return capability, name
    return None


def l4t_release(etc_root: PathLike = '/etc') -> Optional[str]:
    """'36.4.3' from `<etc>/nv_tegra_release`, or None off Jetson or when unparseable."""
    text = _read_text(Path(etc_root) / 'nv_tegra_release')
    match = _L4T_LINE.match(text.strip()) if text else None
    if match is None:
        return None
    return f'{match.group(1)}.{match.group(2)}.{match.group(3)}'


def describe_device(*, sys_root: PathLike = '/sys', proc_root: PathLike = '/proc',
                    etc_root: PathLike = '/etc',
                    nvidia_smi: Sequence[str] = ('nvidia-smi',),
                    index: int = 0) -> DeviceDescription:
    """The device, Jetson first (sysfs, no process started), then nvidia-smi."""
    l4t = l4t_release(etc_root)
    jetpack = JETPACK_FOR_L4T.get(l4t) if l4t else None
    tegra = tegra_compute_capability(sys_root, proc_root)
    if tegra is not None:
        return DeviceDescription(tegra_model_name(proc_root) or 'NVIDIA Jetson', tegra[0],
                                 tegra[1], l4t, jetpack)
    discrete = nvidia_smi_query(nvidia_smi, index)
    if discrete is not None:
        return DeviceDescription(discrete[1], discrete[0], f'nvidia-smi GPU {index}', l4t,
                                 jetpack)
    return DeviceDescription(None, None, 'no Tegra chip id, device tree or nvidia-smi GPU',
                             l4t, jetpack)


def tensorrt_gate_expectation(pinned_sha256: Optional[str] = None, *,
                              sys_root: PathLike = '/sys', proc_root: PathLike = '/proc',
                              etc_root: PathLike = '/etc',
                              nvidia_smi: Sequence[str] = ('nvidia-smi',),
                              index: int = 0) -> GateExpectation:
    """What the gate must demand of a TensorRT engine on this host; refuses when unknowable."""
    version = installed_tensorrt_version()
    if version is None:
        raise RuntimeUnavailableError(
            'TensorRT is not installed on this host (no distribution among '
            f'{", ".join(TENSORRT_DISTRIBUTIONS)} and no tensorrt package): the installed '
            'version an engine must match is unknown')
    device = describe_device(sys_root=sys_root, proc_root=proc_root, etc_root=etc_root,
                             nvidia_smi=nvidia_smi, index=index)
    # The name the build recorded: the device-tree model on Jetson (CUDA calls every Orin
    # "Orin"), the GPU's name elsewhere; unknown (the check is skipped) when unreadable.
    on_tegra = tegra_compute_capability(sys_root, proc_root) is not None
    name = tegra_model_name(proc_root) if on_tegra else device.name
    if device.compute_capability is None:
        raise RuntimeUnavailableError(
            f'the GPU compute capability of this host is unknown ({device.source}): an '
            'engine cannot be proven to run here')
    return GateExpectation(runtime='tensorrt', pinned_sha256=pinned_sha256,
                           tensorrt_version=version,
                           compute_capability=device.compute_capability,
                           device_name=name)


def _read_text(path: Path) -> Optional[str]:
    try:
        return path.read_bytes()[:4096].decode('utf-8', errors='replace')
    except OSError:
        return None
