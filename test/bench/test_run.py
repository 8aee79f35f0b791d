"""`make bench`: its plan and child environments, and one smoke run of every section.

The smoke run starts the real processes (node, camera/driver, bare subscriber) with the
`--smoke` profile (about 20 s): it proves every section runs and every number is produced;
it asserts no timing.
"""

import json
import os
from pathlib import Path

import pytest
import yaml

from gps_denied_inference.bench import run as bench
from gps_denied_inference.bench.frames import FRAME_KINDS

PROFILE_VARIABLES = ('FASTDDS_DEFAULT_PROFILES_FILE', 'FASTRTPS_DEFAULT_PROFILES_FILE',
                     'FASTDDS_BUILTIN_TRANSPORTS')


@pytest.fixture
def dds_variables(monkeypatch):
    for name in PROFILE_VARIABLES:
        monkeypatch.setenv(name, 'from-the-parent')
    monkeypatch.delenv('ROS_DISTRO', raising=False)


def test_default_setting_removes_every_fast_dds_variable(dds_variables):
    env = bench.child_environment('default', 123)
    assert not set(PROFILE_VARIABLES) & set(env)
    assert env['ROS_DOMAIN_ID'] == '123'
    assert env['ROS_AUTOMATIC_DISCOVERY_RANGE'] == 'LOCALHOST'


@pytest.mark.parametrize('distro, wheels_fast_dds_2, variable', [
    (None, False, 'FASTDDS_DEFAULT_PROFILES_FILE'), (None, True, 'FASTRTPS_DEFAULT_PROFILES_FILE'),
    ('kilted', True, 'FASTDDS_DEFAULT_PROFILES_FILE'),
    ('humble', False, 'FASTRTPS_DEFAULT_PROFILES_FILE'),
    ('jazzy', False, 'FASTRTPS_DEFAULT_PROFILES_FILE')])
def test_shipped_setting_names_the_profile_for_this_distro(dds_variables, monkeypatch, distro,
                                                           wheels_fast_dds_2, variable):
    """A sourced ROS_DISTRO decides; without one, the wheels' Fast DDS (Kilted 3.x, Jazzy 2.x)."""
    if distro:
        monkeypatch.setenv('ROS_DISTRO', distro)
    monkeypatch.setattr(bench, 'wheels_are_fast_dds_2', lambda: wheels_fast_dds_2)
    env = bench.child_environment('shipped', 7)
    assert env[variable] == str(bench.PROFILE_FILE)
    assert bench.PROFILE_FILE.is_file()
    others = set(PROFILE_VARIABLES) - {variable}
    assert not others & set(env)


def test_the_wheels_in_this_environment_are_told_apart():
    import importlib.metadata

    try:
        rclpy_major = int(importlib.metadata.version('ros-rclpy').split('.')[0])
    except importlib.metadata.PackageNotFoundError:
        pytest.skip('ROS from a sourced install, not from the PyPI wheels')
    assert bench.wheels_are_fast_dds_2() == (rclpy_major < 9)  # Jazzy 7.x: Fast DDS 2.14


def test_params_file_is_one_onnxruntime_model(tmp_path):
    values = yaml.safe_load(bench.write_params(tmp_path, 'corners').read_text())
    params = values['/**']['ros__parameters']
    assert params['models'] == ['corners']
    assert params['model_dir'] == str(tmp_path / 'models')
    assert params['corners.runtime'] == 'onnxruntime'
    assert params['corners.input_topic'] == '/bench/camera/corners'
    assert params['autostart'] is False


@pytest.mark.parametrize('rate, seconds, minimum, expected', [
    (30.0, 3.0, 8, 90), (0.8, 3.0, 8, 8), (100.0, 0.04, 3, 4), (2.0, 60.0, 10, 120)])
def test_phase_frames(rate, seconds, minimum, expected):
    assert bench.phase_frames(rate, seconds, minimum) == expected


@pytest.mark.parametrize('raw_hz, e2e_rate', [(56.0, 28.0), (200.0, 30.0), (1.5, 0.75)])
def test_node_plan_paces_e2e_below_the_model_and_overloads_at_twice_it(raw_hz, e2e_rate):
    raw = {'throughput_hz': raw_hz, 'p95_ms': 1e3 / raw_hz}
    plan = bench.node_plan('corners', 99, raw, bench.FULL, True, list(FRAME_KINDS),
                           Path('/m/corners.onnx'), ['keypoints', 'descriptors'], null_pid=7)
    assert [phase['kind'] for phase in plan['e2e']] == list(FRAME_KINDS)
    assert [phase['paired'] for phase in plan['e2e']] == [k == 'mono8_640x480'
                                                          for k in FRAME_KINDS]
    assert plan['raw_baseline']['path'] == '/m/corners.onnx'
    assert plan['raw_baseline']['manifest'] == '/m/corners.onnx.manifest.json'
    assert all(phase['rate_hz'] == pytest.approx(e2e_rate) for phase in plan['e2e'])
    assert plan['saturated']['rate_hz'] > raw_hz
    assert plan['overload']['rate_hz'] == pytest.approx(2 * raw_hz)
    assert plan['overload']['frames'] >= 2 * raw_hz * bench.FULL.overload_seconds - 1
    assert plan['pid'] == 99 and plan['startup_cycles'] == bench.FULL.startup_cycles


def test_the_paced_stream_sends_the_drop_targets_frames_after_the_null_nodes_stream():
    raw = {'throughput_hz': 2.8, 'p95_ms': 400.0}
    plan = bench.node_plan('dense', 99, raw, bench.FULL, True, ['mono8_640x480'],
                           Path('/m/dense.onnx'), ['semi', 'desc'], null_pid=7)
    assert plan['outputs'] == ['semi', 'desc']
    assert plan['null'] == {'node': 'bench_null_dense', 'input_topic': '/bench/null/dense',
                            'pid': 7}
    (paced,) = plan['e2e']
    assert paced['paired'] and paced['repeats'] * paced['frames'] >= 300
    assert paced['null_frames'] == bench.phase_frames(1.4, bench.FULL.e2e_seconds,
                                                      bench.FULL.e2e_min_frames)


def test_transport_only_plan_has_no_saturated_or_overload():
    plan = bench.node_plan('corners', 1, {'throughput_hz': 50.0, 'p95_ms': 20.0}, bench.QUICK,
                           False, ['mono8_640x480'], Path('/m/corners.onnx'),
                           ['keypoints', 'descriptors'], null_pid=7)
    assert plan['saturated'] is None and plan['overload'] is None
    assert plan['null'] is None
    assert plan['startup_cycles'] == 1


def test_return_floor_sends_each_output_at_the_e2e_pace():
    step = bench.return_floor_plan('superpoint', Path('/m/superpoint.onnx'),
                                   {'throughput_hz': 4.0}, bench.FULL,
                                   ['keypoints', 'descriptors'])
    assert step['rate_hz'] == pytest.approx(2.0)
    assert step['frames'] == bench.FULL.e2e_min_frames
    assert step['repeats'] == bench.FULL.repeats
    assert step['topics'] == {'keypoints': '/bench/return/superpoint/keypoints',
                              'descriptors': '/bench/return/superpoint/descriptors'}
    assert step['manifest'] == '/m/superpoint.onnx.manifest.json'


@pytest.mark.parametrize('argv', [['--models', 'resnet'], ['--settings', 'fast'],
                                  ['--models', '']])
def test_unknown_models_or_settings_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(argv)
    assert 'unknown or empty' in capsys.readouterr().err


def test_smoke_run_produces_every_section(tmp_path):
    code = bench.main(['--smoke', '--models', 'corners', '--settings', 'shipped',
                       '--out', str(tmp_path)])
    results = json.loads((tmp_path / 'results.json').read_text())
    assert code == 0, results['errors']
    assert results['errors'] == []
    model = results['issue7']['corners']
    raw = model['raw']
    assert 0 < raw['p50_ms'] <= raw['p95_ms'] and raw['throughput_hz'] > 0
    assert list(raw['callback']) == list(FRAME_KINDS)
    assert all(0 < cost['p50_ms'] <= cost['p95_ms'] for cost in raw['callback'].values())
    assert model['transport']['delivered'] > 0
    assert model['return_transport']['delivered'] > 0
    assert model['return_transport']['bytes_per_frame'] == raw['output_bytes']
    assert model['paired_raw']['e2e']['n_runs'] == 1
    assert model['paired_raw']['saturated']['n_runs'] == 1
    assert model['overhead']['p50_ms_less_return_floor'] is not None
    assert model['null_floor']['delivered'] > 0
    assert 0 < model['null_floor']['p50_ms'] <= model['null_floor']['p95_ms']
    assert model['overhead']['p50_ms'] is not None
    assert model['overhead']['own_p50_ms'] is not None
    assert model['paced_drops']['sent'] == bench.SMOKE.e2e_min_frames
    assert 0 < model['e2e']['p50_ms'] <= model['e2e']['p95_ms']
    assert model['e2e']['delivered'] > 0
    assert model['saturated']['outputs_per_s'] > 0
    overload = model['overload']
    assert overload['counters']['frames_processed'] > 0
    assert overload['counters']['frames_received'] <= overload['sent']
    assert 0 < overload['rss_start_mib'] and 0 < overload['rss_end_mib']
    assert model['startup']['node_s'] > 0 and model['startup']['raw_s'] > 0
    assert len(model['targets']) == 8
    assert all(isinstance(t['met'], bool) and t['value'] is not None for t in model['targets'])
    cells = results['issue9']['shipped']
    assert set(cells) == set(FRAME_KINDS)
    assert all(0.0 <= cell['floor']['delivered'] <= 1.0 for cell in cells.values())
    assert {k for k, cell in cells.items() if 'node' in cell} == set(FRAME_KINDS)
    section = (tmp_path / 'README_section.md').read_text()
    assert '| quantity | corners |' in section and 'Fast DDS defaults' in section
    assert os.path.exists(tmp_path / 'logs' / 'shipped_node_corners.log')
    assert results['meta']['load_average']['shipped']
    assert 'answered' in (tmp_path / 'logs' / 'shipped_null_node_corners.log').read_text()
