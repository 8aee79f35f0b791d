"""Parameters become a validated NodeConfig; each bad value is a ConfigError naming it."""

import pytest

from gps_denied_inference.errors import ConfigError
from gps_denied_inference.node.parameters import (
    camera_info_topic_beside,
    ModelConfig,
    node_config_from_values,
)
from gps_denied_inference.validation import GIB


def _values(**changes):
    values = {
        'models': ['corners'],
        'model_dir': '/models',
        'corners.engine_path': 'corners.onnx',
        'corners.input_topic': '/camera/image_raw',
        'corners.runtime': 'onnxruntime',
    }
    values.update(changes)
    return {k: v for k, v in values.items() if v is not None}


def test_defaults_and_relative_paths():
    config = node_config_from_values(_values())
    model = config.models[0]
    assert model.engine_path == '/models/corners.onnx'
    assert model.runtime == 'onnxruntime'
    assert model.providers == ('CPUExecutionProvider',)
    assert model.sha256 is None
    assert config.runtime.gpu_memory_budget_bytes == 4 * GIB
    assert config.runtime.cuda_context_overhead_bytes == 512 << 20
    assert config.runtime.host_memory_budget_bytes == 3 * GIB // 2
    assert config.input_qos == 'sensor_data'
    assert config.thermal.root == '/sys/class/thermal'


def test_overrides_and_pinned_digest_are_read():
    digest = 'AB' * 32
    config = node_config_from_values(_values(**{
        'corners.sha256': digest, 'corners.input_width': 320, 'corners.color': 'rgb',
        'corners.mean': [0.5, 0.5, 0.5], 'corners.providers': ['CUDAExecutionProvider',
                                                               'CPUExecutionProvider']}))
    model = config.models[0]
    assert model.sha256 == digest.lower()
    assert model.overrides.width == 320 and model.overrides.color == 'rgb'
    assert model.overrides.mean == (0.5, 0.5, 0.5)
    assert model.overrides.height is None and model.overrides.std is None
    assert model.providers == ('CUDAExecutionProvider', 'CPUExecutionProvider')


def test_runtime_defaults_to_tensorrt():
    values = _values()
    del values['corners.runtime']
    assert node_config_from_values(values).models[0].runtime == 'tensorrt'


@pytest.mark.parametrize('changes,named', [
    ({'models': []}, 'models'),
    ({'models': ['']}, 'models'),
    ({'models': ['corners', 'corners']}, 'listed twice: corners'),
    ({'models': 'corners'}, 'models'),
    ({'corners.engine_path': None}, 'corners.engine_path'),
    ({'corners.input_topic': None}, 'corners.input_topic'),
    ({'corners.runtime': 'tflite'}, 'runtime'),
    ({'corners.engine_path': 7}, 'corners.engine_path'),
    ({'corners.engine_path': 'x.onnx', 'model_dir': ''}, 'corners.engine_path'),
    ({'gpu_memory_budget_bytes': -1}, 'gpu_memory_budget_bytes'),
    ({'cuda_context_overhead_bytes': -1}, 'cuda_context_overhead_bytes'),
    ({'cuda_context_overhead_bytes': 1.5}, 'cuda_context_overhead_bytes'),
    ({'host_memory_budget_bytes': 0}, 'host_memory_budget_bytes'),
    ({'gpu_memory_budget_bytes': '4G'}, 'gpu_memory_budget_bytes'),
    ({'gpu_memory_budget_bytes': 4.0e9}, 'gpu_memory_budget_bytes'),
    ({'diagnostics_period_s': 0.0}, 'diagnostics_period_s'),
    ({'thermal.throttle': 'yes'}, 'thermal.throttle'),
    ({'thermal.warn_c': 90.0, 'thermal.critical_c': 80.0}, 'critical_c'),
    ({'input_qos': 'fast'}, 'input_qos'),
    ({'output_depth': 0}, 'output_depth'),
    ({'corners.sha256': 'beef'}, 'sha256'),
    ({'corners.color': 'yuv'}, 'color'),
    ({'corners.input_width': -2}, 'width'),
    ({'corners.mean': ['a']}, 'corners.mean'),
    ({'corners.camera_info_topic': ''}, 'camera_info_topic'),
    ({'corners.camera_info_topic': 3}, 'corners.camera_info_topic'),
    ({'models': ['bad-name']}, 'models'),
])
def test_bad_parameters_are_refused_by_name(changes, named):
    with pytest.raises(ConfigError) as info:
        node_config_from_values(_values(**changes))
    assert named in str(info.value)


@pytest.mark.parametrize('changes,message', [
    ({'corners.color': 'grey'}, "corners.color = 'grey' is invalid: must be one of mono, rgb"),
    ({'corners.input_width': -2}, 'corners.input_width = -2 is invalid: must be an integer > 0'),
    ({'corners.resize': 'crop'}, "corners.resize = 'crop' is invalid"),
    ({'corners.sha256': 'xyz'}, "corners.sha256 = 'xyz' is invalid: must be 64 lowercase hex"),
    ({'corners.runtime': 'tflite'}, "corners.runtime = 'tflite' is invalid"),
    ({'input_qos': 'best_effort'}, "input_qos = 'best_effort' is invalid: must be one of"),
    ({'host_memory_budget_bytes': 0}, 'host_memory_budget_bytes = 0 is invalid'),
    ({'thermal.warn_c': 90.0, 'thermal.critical_c': 80.0}, 'thermal.critical_c = 80.0 is '),
])
def test_a_refused_value_is_named_as_the_parameter_the_user_wrote(changes, message):
    """Not as the dataclass that checked it (PreprocessOverrides.color, models.corners...)."""
    with pytest.raises(ConfigError) as info:
        node_config_from_values(_values(**changes))
    assert str(info.value).startswith(message)


@pytest.mark.parametrize('field,value', [
    ('name', 'bad name'), ('engine_path', ''), ('input_topic', ''), ('runtime', 'tflite'),
    ('sha256', 'abc'), ('providers', ()),
])
def test_model_config_refuses_bad_values(field, value):
    fields = {'name': 'corners', 'engine_path': 'corners.onnx', 'input_topic': '/cam'}
    fields[field] = value
    with pytest.raises(ConfigError, match=field):
        ModelConfig(**fields)


def test_camera_info_topic_is_unset_unless_given():
    assert node_config_from_values(_values()).models[0].camera_info_topic is None
    config = node_config_from_values(_values(**{'corners.camera_info_topic': '/cam/info'}))
    assert config.models[0].camera_info_topic == '/cam/info'


@pytest.mark.parametrize('image_topic,info_topic', [
    ('/camera/image_raw', '/camera/camera_info'),
    ('/drone/front/image_rect', '/drone/front/camera_info'),
    ('/image', '/camera_info'),
    ('//a//b', '/a/camera_info'),
])
def test_the_default_camera_info_topic_sits_beside_the_image_topic(image_topic, info_topic):
    assert camera_info_topic_beside(image_topic) == info_topic


def test_a_misspelt_model_parameter_is_refused_naming_the_closest_known_one():
    with pytest.raises(ConfigError) as refused:
        node_config_from_values(_values(**{'corners.sha265': 'ab' * 32}))
    assert str(refused.value) == ('unknown parameter(s): corners.sha265 (did you mean '
                                  'corners.sha256?)')


def test_unknown_node_and_model_parameters_are_all_named():
    with pytest.raises(ConfigError) as refused:
        node_config_from_values(_values(**{'corners.camera_info_topik': '/camera/info',
                                           'diagnostic_period_s': 2.0}))
    message = str(refused.value)
    assert 'corners.camera_info_topik (did you mean corners.camera_info_topic?)' in message
    assert 'diagnostic_period_s (did you mean diagnostics_period_s?)' in message


def test_parameters_of_a_model_not_listed_are_refused():
    with pytest.raises(ConfigError, match=r"edges.engine_path \(model 'edges' is not listed "
                                          r'in models \(corners\)\)'):
        node_config_from_values(_values(**{'edges.engine_path': 'edges.onnx'}))


def test_ros_parameters_are_left_alone():
    config = node_config_from_values(_values(**{
        'use_sim_time': True, 'start_type_description_service': True,
        'qos_overrides./parameter_events.publisher.depth': 10,
        '/bond_disable_heartbeat_timeout': False}))
    assert config.models[0].name == 'corners'


def test_a_latency_limit_is_a_known_positive_number():
    assert node_config_from_values(_values()).models[0].latency_limit_ms is None
    config = node_config_from_values(_values(**{'corners.latency_limit_ms': 40}))
    assert config.models[0].latency_limit_ms == 40.0
    with pytest.raises(ConfigError, match='latency_limit_ms'):
        node_config_from_values(_values(**{'corners.latency_limit_ms': 0.0}))
