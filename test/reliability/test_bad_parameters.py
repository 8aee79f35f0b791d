"""Bad parameters: configure is refused with the parameter named, and nothing is left behind.

Every value reaches the node as a real ROS parameter override (wrong ROS types included), the
node is configured over its real lifecycle service, and the refusal is read from its log.
"""

from node_harness import model_parameters
import pytest
from reliability_support import footprint, settled_footprint

CASES = {
    'budget_of_wrong_type': (
        {'gpu_memory_budget_bytes': 'lots'},
        "parameter gpu_memory_budget_bytes = 'lots' has the wrong type: must be an integer, "
        'found str'),
    'budget_as_float': (
        {'host_memory_budget_bytes': 1.5},
        'parameter host_memory_budget_bytes = 1.5 has the wrong type: must be an integer'),
    'models_not_a_list': (
        {'models': 42}, 'parameter models = 42 has the wrong type: must be a list of strings'),
    'topic_not_a_string': (
        {'tiny.input_topic': 42}, 'parameter tiny.input_topic = 42 has the wrong type'),
    'bool_given_as_string': (
        {'thermal.throttle': 'yes'}, "parameter thermal.throttle = 'yes' has the wrong type: "
                                     'must be a bool'),
    'period_given_as_string': (
        {'diagnostics_period_s': 'fast'}, "parameter diagnostics_period_s = 'fast' has the "
                                          'wrong type: must be a number'),
    'mean_of_strings': (
        {'tiny.mean': ['a']}, "parameter tiny.mean = ['a'] has the wrong type: must be a list "
                              'of numbers'),
    'negative_gpu_budget': (
        {'gpu_memory_budget_bytes': -5}, 'gpu_memory_budget_bytes = -5 is invalid: must be an '
                                         'integer > 0'),
    'negative_host_budget': (
        {'host_memory_budget_bytes': -1}, 'host_memory_budget_bytes = -1 is invalid: must be '
                                          'an integer > 0'),
    'unknown_runtime': (
        {'tiny.runtime': 'pytorch'}, "tiny.runtime = 'pytorch' is invalid: must be one of "
                                     'tensorrt, onnxruntime'),
    'missing_engine_path': (
        {'tiny.engine_path': None}, 'parameter tiny.engine_path is missing: it is required for '
                                    "model 'tiny'"),
    'empty_engine_path': (
        {'tiny.engine_path': ''}, "tiny.engine_path = '' is invalid: must be non-empty"),
    'relative_engine_path_without_model_dir': (
        {'tiny.engine_path': 'tiny.onnx'}, "tiny.engine_path = 'tiny.onnx' is invalid: must be "
                                           'absolute, or relative with model_dir set'),
    'empty_models': (
        {'models': ['']}, "models = [''] is invalid: must be a non-empty list of model names"),
    'models_not_set': (
        {'models': None}, "models = [''] is invalid: must be a non-empty list of model names"),
    'model_listed_twice': (
        {'models': ['tiny', 'tiny']}, 'must be free of duplicates (listed twice: tiny)'),
    'model_name_not_an_identifier': (
        {'models': ['my-model'], 'my-model.engine_path': '/x', 'my-model.input_topic': '/c'},
        "models = 'my-model' is invalid: must be model names that are identifiers"),
    'unknown_input_qos': (
        {'input_qos': 'fast'}, "input_qos = 'fast' is invalid: must be one of sensor_data, "
                               'reliable'),
    'zero_output_depth': ({'output_depth': 0}, 'output_depth = 0 is invalid'),
    'negative_fault_frames': (
        {'persistent_fault_frames': -3}, 'persistent_fault_frames = -3 is invalid'),
    'negative_starvation_timeout': (
        {'starvation_timeout_s': -1.0}, 'starvation_timeout_s = -1.0 is invalid'),
    'thermal_thresholds_reversed': (
        {'thermal.warn_c': 99.0, 'thermal.critical_c': 90.0},
        'critical_c = 90.0 is invalid: must be greater than warn_c (99.0)'),
    'negative_input_width': ({'tiny.input_width': -16}, 'width = -16 is invalid'),
    'unknown_resize': (
        {'tiny.resize': 'bicubic'}, "resize = 'bicubic' is invalid: must be one of stretch, "
                                    'letterbox'),
    'malformed_pinned_digest': (
        {'tiny.sha256': 'xyz'}, "sha256 = 'xyz' is invalid: must be 64 lowercase hex digits"),
}


def _parameters(model, changes):
    values = {'models': ['tiny'], **model_parameters('tiny', str(model))}
    for name, value in changes.items():
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
    return values


@pytest.mark.parametrize('changes, reason', list(CASES.values()), ids=list(CASES))
def test_bad_parameter_is_refused_by_name_and_leaves_nothing(start, model, capfd, changes,
                                                             reason):
    harness = start(_parameters(model, changes))
    before = footprint(harness)
    assert not harness.lifecycle.change('configure')
    assert settled_footprint(harness, before) == before
    log = capfd.readouterr().err
    refusal = [line for line in log.splitlines() if 'configure refused:' in line]
    assert len(refusal) == 1, log
    assert reason in refusal[0]
    assert 'failed with a fault' not in log
    # The refused node still serves its lifecycle services.
    assert harness.lifecycle.state() == 'unconfigured'


def test_an_unavailable_provider_is_refused_at_configure(start, model, capfd):
    harness = start(_parameters(model, {'tiny.providers': ['CUDAExecutionProvider']}))
    before = footprint(harness)
    assert not harness.lifecycle.change('configure')
    assert settled_footprint(harness, before) == before
    log = capfd.readouterr().err
    assert 'configure refused:' in log and 'CUDAExecutionProvider' in log
