"""The build config: JSON in, a frozen validated BuildConfig out, every mistake named."""

import hashlib
import json

import pytest

from gps_denied_inference.compiler.build_config import (
    build_config_from_dict,
    BuildConfig,
    CalibrationConfig,
    load_build_config,
    ShapeProfile,
)
from gps_denied_inference.errors import ConfigError

FULL = {
    'backend': 'polygraphy', 'precision': 'mixed', 'int8_source': 'calibration',
    'workspace_mib': 512, 'timing_cache': 'cache/orin.timing', 'output': 'out/sp.engine',
    'trtexec': 'tools/trtexec',
    'calibration': {'dataset_dir': 'calib', 'cache': 'sp.calib', 'batch_size': 2,
                    'max_batches': 50},
    'profiles': {'image': {'min': [1, 1, 240, 320], 'opt': [1, 1, 480, 640],
                           'max': [1, 1, 720, 1280]}},
    'preprocess': {'mean': [0.5], 'std': [0.25], 'resize': 'letterbox'},
}


def write(tmp_path, data):
    path = tmp_path / 'build.json'
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_a_full_config_loads_with_paths_relative_to_the_file(tmp_path):
    path = write(tmp_path, FULL)
    config = load_build_config(path)
    assert config.backend == 'polygraphy' and config.precision == 'mixed'
    assert config.workspace_bytes == 512 << 20 and config.uses_calibration
    assert config.timing_cache == str(tmp_path / 'cache' / 'orin.timing')
    assert config.output == str(tmp_path / 'out' / 'sp.engine')
    assert config.trtexec == str(tmp_path / 'tools' / 'trtexec')
    assert config.calibration == CalibrationConfig(str(tmp_path / 'calib'),
                                                   str(tmp_path / 'sp.calib'), 2, 50)
    assert config.profiles == {'image': ShapeProfile((1, 1, 240, 320), (1, 1, 480, 640),
                                                     (1, 1, 720, 1280))}
    assert config.preprocess == {'mean': (0.5,), 'std': (0.25,), 'resize': 'letterbox'}
    assert config.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_defaults_are_an_fp16_builder_api_build():
    config = build_config_from_dict({})
    assert (config.backend, config.precision, config.int8_source) == ('builder', 'fp16', None)
    assert config.trtexec == 'trtexec' and config.profiles == {}


def test_the_digest_of_a_config_built_in_code_follows_its_fields():
    assert BuildConfig().sha256 == BuildConfig().sha256
    assert BuildConfig().sha256 != BuildConfig(precision='fp32').sha256


@pytest.mark.parametrize('change,message', [
    ({'precision': 'int8', 'int8_source': 'calibration', 'calibration': None},
     'calibration'),
    ({'precision': 'int8'}, 'int8_source'),
    ({'precision': 'int8', 'int8_source': 'calibrated'}, 'int8_source'),
    ({'precision': 'fp16', 'int8_source': 'qdq'}, 'absent for precision fp16'),
    ({'precision': 'int8', 'int8_source': 'qdq',
      'calibration': {'dataset_dir': 'c', 'cache': 'x'}}, 'absent unless'),
    ({'precision': 'int4'}, 'precision'),
    ({'backend': 'onnx2trt'}, 'backend'),
    ({'workspace_mib': 0}, 'workspace_mib'),
    ({'workspace_mib': 1.5}, 'workspace_mib'),
    ({'workspace_mib': True}, 'workspace_mib'),
    ({'timing_cache': ''}, 'timing_cache'),
    ({'trtexec': ''}, 'trtexec'),
    ({'max_workspace_size': 1 << 30}, 'unknown'),
    ({'preprocess': {'colour': 'rgb'}}, 'preprocess'),
    ({'preprocess': ['rgb']}, 'preprocess'),
    ({'profiles': {'image': {'min': [1, 1, 9, 9], 'opt': [1, 1, 8, 8],
                             'max': [1, 1, 9, 9]}}}, 'ordered'),
    ({'profiles': {'image': {'min': [1, 1, 8], 'opt': [1, 1, 8, 8],
                             'max': [1, 1, 9, 9]}}}, 'one rank'),
    ({'profiles': {'image': {'min': [1, 0, 8, 8], 'opt': [1, 1, 8, 8],
                             'max': [1, 1, 9, 9]}}}, 'positive'),
    ({'profiles': {'image': {'min': [1], 'max': [1]}}}, 'profiles.image'),
    ({'profiles': [1, 2]}, 'profiles'),
    ({'precision': 'int8', 'int8_source': 'calibration', 'calibration': {'cache': 'x'}},
     'missing keys'),
    ({'precision': 'int8', 'int8_source': 'calibration',
      'calibration': {'dataset_dir': 'c', 'cache': 'x', 'batch_size': 0}}, 'batch_size'),
    ({'precision': 'int8', 'int8_source': 'calibration',
      'calibration': {'dataset_dir': 'c', 'cache': 'x', 'shuffle': True}}, 'unknown keys'),
    ({'precision': 'int8', 'int8_source': 'calibration', 'calibration': 'calib/'},
     'must be an object'),
])
def test_invalid_configs_are_refused_naming_the_field(tmp_path, change, message):
    path = write(tmp_path, {**{k: v for k, v in FULL.items()
                               if k not in ('calibration', 'int8_source', 'precision')},
                            **change})
    with pytest.raises(ConfigError, match=message) as info:
        load_build_config(path)
    assert str(path) in str(info.value)


def test_int8_by_calibration_without_a_dataset_says_what_is_missing(tmp_path):
    path = write(tmp_path, {'precision': 'int8', 'int8_source': 'calibration'})
    with pytest.raises(ConfigError,
                       match=r'calibration = None .* \(dataset_dir, cache\) for INT8 by cal'):
        load_build_config(path)


@pytest.mark.parametrize('text,message', [
    ('{"precision": "fp16",}', 'not valid JSON'),
    ('[1, 2]', 'JSON object'),
    (b'\xff\xfe{}', 'not valid JSON'),
])
def test_unparseable_files_are_refused(tmp_path, text, message):
    path = tmp_path / 'build.json'
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError, match=message):
        load_build_config(path)


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match='cannot read'):
        load_build_config(tmp_path / 'absent.json')


def test_the_config_is_frozen():
    config = BuildConfig()
    with pytest.raises(AttributeError):
        config.precision = 'int8'
