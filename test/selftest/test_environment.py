"""Environment lines: TensorRT version, L4T/JetPack, power mode, thermal zones."""

from sysfs import orin_tree

from gps_denied_inference.selftest import environment
from gps_denied_inference.selftest.report import FAIL, PASS, Report, SKIP
from gps_denied_inference.selftest.session import Session
from selftest.conftest import lines_by_check, small_options


def run_environment(options):
    report = Report()
    session = Session(options)
    try:
        environment.run(session, report)
    finally:
        session.close()
    return lines_by_check(report)


def test_on_a_jetson_6_2_every_fact_passes(fake, tmp_path):
    etc = tmp_path / 'etc'
    etc.mkdir()
    (etc / 'nv_tegra_release').write_text('# R36 (release), REVISION: 4.3, GCID: 1, BOARD: t\n')
    thermal = orin_tree(tmp_path / 'thermal')
    lines = run_environment(small_options(
        tmp_path, etc_root=str(etc), thermal_root=str(thermal),
        nvpmodel=('echo', 'NV Power Mode: MAXN')))
    assert {k: line.status for k, line in lines.items()} == dict.fromkeys(lines, PASS)
    assert lines['environment/l4t'].measured == 'L4T 36.4.3 (JetPack 6.2)'
    assert lines['environment/power-mode'].measured == 'NV Power Mode: MAXN'
    assert 'compute capability 8.7' in lines['environment/device'].measured
    assert "gated on the CUDA name 'Orin (fake)'" in lines['environment/device'].measured
    assert lines['environment/tensorrt'].measured == '10.3.0'


def test_another_tensorrt_another_jetpack_and_unreadable_zones_on_a_jetson_fail(
        fake, tmp_path, monkeypatch):
    monkeypatch.setattr(environment, 'installed_tensorrt_version', lambda: '8.6.2.3')
    etc = tmp_path / 'etc'
    etc.mkdir()
    (etc / 'nv_tegra_release').write_text('# R35 (release), REVISION: 4.1, GCID: 1\n')
    lines = run_environment(small_options(tmp_path, etc_root=str(etc)))
    assert lines['environment/tensorrt'].status == FAIL
    assert lines['environment/l4t'].status == FAIL
    assert lines['environment/l4t'].measured == 'L4T 35.4.1 (JetPack 5.1.2)'
    assert lines['environment/thermal'].status == FAIL


def test_off_a_jetson_l4t_power_mode_and_thermal_skip_with_reasons(fake, tmp_path):
    lines = run_environment(small_options(tmp_path))
    for key in ('environment/l4t', 'environment/power-mode', 'environment/thermal'):
        assert lines[key].status == SKIP and lines[key].reason, key
    assert 'not a Jetson' in lines['environment/l4t'].reason
