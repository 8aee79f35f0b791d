"""The device probe reads Jetson sysfs/procfs/etc files and nvidia-smi, never TensorRT or CUDA."""

import stat
import sys

import pytest

from gps_denied_inference.artifacts.gate import GateExpectation
from gps_denied_inference.errors import RuntimeUnavailableError
from gps_denied_inference.runtimes import device_probe

NV_TEGRA_RELEASE_6_2 = ('# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, '
                        'EABI: aarch64, DATE: Wed Jan  8 01:49:37 UTC 2025\n'
                        '# KERNEL_VARIANT: oot\nTARGET_USERSPACE_LIB_DIR=nvidia\n')
ORIN_COMPATIBLE = b'nvidia,p3768-0000+p3767-0005\0nvidia,p3767-0005\0nvidia,tegra234\0'


def jetson(root, chip_id=None, compatible=None, model=None, release=None):
    """A fake Jetson's /sys, /proc and /etc under root; returns the three roots."""
    sys_root, proc_root, etc_root = root / 'sys', root / 'proc', root / 'etc'
    for directory in (sys_root, proc_root / 'device-tree', etc_root):
        directory.mkdir(parents=True, exist_ok=True)
    if chip_id is not None:
        params = sys_root / 'module' / 'tegra_fuse' / 'parameters'
        params.mkdir(parents=True)
        (params / 'tegra_chip_id').write_text(chip_id)
    if compatible is not None:
        (proc_root / 'device-tree' / 'compatible').write_bytes(compatible)
    if model is not None:
        (proc_root / 'device-tree' / 'model').write_bytes(model.encode() + b'\0')
    if release is not None:
        (etc_root / 'nv_tegra_release').write_text(release)
    return {'sys_root': sys_root, 'proc_root': proc_root, 'etc_root': etc_root}


def nvidia_smi(tmp_path, output, code=0):
    script = tmp_path / 'nvidia-smi'
    script.write_text(f'#!{sys.executable}\nimport sys\n'
                      f'open({str(tmp_path / "argv")!r}, "w").write(" ".join(sys.argv[1:]))\n'
                      f'sys.stdout.write({output!r})\nsys.exit({code})\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return (str(script),)


@pytest.mark.parametrize('chip_id,capability', [
    ('35\n', '8.7'), ('25\n', '7.2'), ('24\n', '6.2'), ('33\n', '5.3'), ('0x23\n', '8.7'),
])
def test_the_tegra_chip_id_gives_the_compute_capability(tmp_path, chip_id, capability):
    roots = jetson(tmp_path, chip_id=chip_id)
    found = device_probe.tegra_compute_capability(roots['sys_root'], roots['proc_root'])
    assert found is not None and found[0] == capability and 'tegra_chip_id' in found[1]


@pytest.mark.parametrize('chip_id', [None, '99\n', 'garbage\n', ''])
def test_the_device_tree_is_the_fallback(tmp_path, chip_id):
    roots = jetson(tmp_path, chip_id=chip_id, compatible=ORIN_COMPATIBLE)
    capability, evidence = device_probe.tegra_compute_capability(roots['sys_root'],
                                                                 roots['proc_root'])
    assert capability == '8.7' and 'nvidia,tegra234' in evidence


def test_no_tegra_files_means_not_a_jetson(tmp_path):
    roots = jetson(tmp_path, compatible=b'raspberrypi,4-model-b\0brcm,bcm2711\0')
    assert device_probe.tegra_compute_capability(roots['sys_root'],
                                                 roots['proc_root']) is None


def test_a_jetson_is_described_without_starting_nvidia_smi(tmp_path):
    roots = jetson(tmp_path, chip_id='35\n', model='NVIDIA Jetson Orin NX Engineering '
                   'Reference Developer Kit', release=NV_TEGRA_RELEASE_6_2)
    device = device_probe.describe_device(**roots, nvidia_smi=nvidia_smi(tmp_path, ''))
    assert device == device_probe.DeviceDescription(
        'NVIDIA Jetson Orin NX Engineering Reference Developer Kit', '8.7', device.source,
        '36.4.3', '6.2')
    assert not (tmp_path / 'argv').exists()


def test_a_discrete_gpu_is_described_by_nvidia_smi(tmp_path):
    roots = jetson(tmp_path)
    command = nvidia_smi(tmp_path, '8.9, NVIDIA GeForce RTX 4090\n')
    device = device_probe.describe_device(**roots, nvidia_smi=command, index=1)
    assert (device.name, device.compute_capability) == ('NVIDIA GeForce RTX 4090', '8.9')
    assert (tmp_path / 'argv').read_text() == (
        '--id=1 --query-gpu=compute_cap,name --format=csv,noheader')
    assert device.l4t_release is None and device.jetpack_release is None


@pytest.mark.parametrize('output,code', [('', 9), ('[N/A], GPU\n', 0), ('No devices\n', 0)])
def test_an_unusable_nvidia_smi_answer_means_unknown(tmp_path, output, code):
    assert device_probe.nvidia_smi_query(nvidia_smi(tmp_path, output, code)) is None


def test_a_missing_nvidia_smi_means_unknown(tmp_path):
    assert device_probe.nvidia_smi_query((str(tmp_path / 'absent'),)) is None


@pytest.mark.parametrize('text,release', [
    (NV_TEGRA_RELEASE_6_2, '36.4.3'),
    ('# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64\n',
     '35.4.1'),
    ('R36 revision 4\n', None),
    ('', None),
])
def test_the_l4t_release_is_parsed(tmp_path, text, release):
    roots = jetson(tmp_path, release=text)
    assert device_probe.l4t_release(roots['etc_root']) == release


def test_the_tensorrt_version_comes_from_package_metadata(monkeypatch):
    seen = []

    def version(name):
        seen.append(name)
        if name == 'tensorrt-cu12':
            return '10.3.0'
        raise device_probe.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(device_probe.metadata, 'version', version)
    assert device_probe.installed_tensorrt_version() == '10.3.0'
    assert seen == ['tensorrt', 'tensorrt-cu12']


def test_the_tensorrt_version_falls_back_to_the_package_source_unimported(tmp_path,
                                                                        monkeypatch):
    package = tmp_path / 'site' / 'tensorrt'
    package.mkdir(parents=True)
    (package / '__init__.py').write_text('raise ImportError("must not be imported")\n'
                                         '__version__ = "10.3.0"\n')
    monkeypatch.syspath_prepend(str(tmp_path / 'site'))
    monkeypatch.setattr(device_probe, 'TENSORRT_DISTRIBUTIONS', ('no-such-distribution',))
    monkeypatch.delitem(sys.modules, 'tensorrt', raising=False)
    assert device_probe.installed_tensorrt_version() == '10.3.0'
    assert 'tensorrt' not in sys.modules


def test_no_tensorrt_means_no_version(monkeypatch):
    monkeypatch.setattr(device_probe, 'TENSORRT_DISTRIBUTIONS', ('no-such-distribution',))
    monkeypatch.setattr(device_probe.importlib.util, 'find_spec', lambda name: None)
    assert device_probe.installed_tensorrt_version() is None


def test_the_gate_expectation_for_this_host(tmp_path, monkeypatch):
    monkeypatch.setattr(device_probe, 'installed_tensorrt_version', lambda: '10.3.0')
    roots = jetson(tmp_path, chip_id='35\n')
    digest = 'ab' * 32
    assert device_probe.tensorrt_gate_expectation(digest, **roots) == GateExpectation(
        'tensorrt', digest, '10.3.0', '8.7')


def test_the_gate_expectation_is_refused_without_tensorrt(tmp_path, monkeypatch):
    monkeypatch.setattr(device_probe, 'installed_tensorrt_version', lambda: None)
    with pytest.raises(RuntimeUnavailableError, match='TensorRT is not installed'):
        device_probe.tensorrt_gate_expectation(**jetson(tmp_path, chip_id='35\n'))


def test_the_gate_expectation_is_refused_without_a_known_gpu(tmp_path, monkeypatch):
    monkeypatch.setattr(device_probe, 'installed_tensorrt_version', lambda: '10.3.0')
    with pytest.raises(RuntimeUnavailableError, match='compute capability'):
        device_probe.tensorrt_gate_expectation(**jetson(tmp_path),
                                               nvidia_smi=(str(tmp_path / 'absent'),))


def test_the_gate_expectation_names_the_board_so_orins_are_told_apart(tmp_path, monkeypatch):
    monkeypatch.setattr(device_probe, 'installed_tensorrt_version', lambda: '10.3.0')
    roots = jetson(tmp_path, chip_id='35\n', model='NVIDIA Jetson Orin NX Developer Kit')
    expected = device_probe.tensorrt_gate_expectation(**roots)
    assert expected.compute_capability == '8.7'
    assert expected.device_name == 'NVIDIA Jetson Orin NX Developer Kit'


def test_jetpack_6_2_1_is_known_by_both_of_its_l4t_releases():
    assert device_probe.JETPACK_FOR_L4T['36.4.7'] == '6.2.1'
    assert device_probe.JETPACK_FOR_L4T['36.4.4'] == '6.2.1'
