"""Inference lines: latency limits (command line, params file), host RSS and GPU budgets."""

import yaml

from gps_denied_inference.selftest import inference
from gps_denied_inference.selftest.report import FAIL, PASS, Report, SKIP
from selftest.conftest import built_session, lines_by_check


def run_inference(session):
    report = Report()
    inference.run(session, report)
    session.close()
    return lines_by_check(report)


def test_each_demo_model_is_timed_and_memory_checked(fake, tmp_path):
    lines = run_inference(built_session(tmp_path))
    assert {k: line.status for k, line in lines.items()} == {
        'inference/latency-demo_onnxruntime': PASS, 'inference/latency-demo_tensorrt': PASS,
        'inference/host-rss': PASS, 'inference/gpu-memory': PASS}
    assert lines['inference/latency-demo_tensorrt'].limit == 'p95 <= 100 ms'
    assert fake.events('IExecutionContext.execute_async_v3')


def test_a_model_slower_than_its_limit_fails(fake, tmp_path):
    lines = run_inference(built_session(tmp_path,
                                        latency_limits_ms={'demo_tensorrt': 1e-9}))
    assert lines['inference/latency-demo_tensorrt'].status == FAIL
    assert lines['inference/latency-demo_tensorrt'].limit == 'p95 <= 1e-09 ms'
    assert lines['inference/latency-demo_onnxruntime'].status == PASS


def test_a_host_budget_too_small_refuses_the_models_and_fails_rss(no_gpu, tmp_path):
    lines = run_inference(built_session(tmp_path, host_budget_bytes=1024))
    assert lines['inference/latency-demo_onnxruntime'].status == FAIL
    assert 'budget refused' in lines['inference/latency-demo_onnxruntime'].reason
    assert lines['inference/host-rss'].status == FAIL
    assert lines['inference/latency-demo_tensorrt'].status == SKIP
    assert lines['inference/gpu-memory'].status == SKIP


def test_the_params_file_names_the_models_their_limits_and_budgets(no_gpu, tmp_path):
    session = built_session(tmp_path)
    params = tmp_path / 'inference.yaml'
    params.write_text(yaml.safe_dump({'/**': {'ros__parameters': {
        'models': ['corners', 'superpoint', 'missing'],
        'model_dir': str(tmp_path),
        'corners.runtime': 'onnxruntime', 'corners.engine_path': 'demo.onnx',
        'corners.input_topic': '/camera/image_raw', 'corners.latency_limit_ms': 250.0,
        'superpoint.runtime': 'tensorrt', 'superpoint.engine_path': 'demo.onnx',
        'superpoint.input_topic': '/camera/image_raw',
        'missing.runtime': 'onnxruntime', 'missing.engine_path': 'nowhere.onnx',
        'missing.input_topic': '/camera/image_raw',
        'host_memory_budget_bytes': 1 << 30}}}))
    session.options = session.options.__class__(**{**vars(session.options), 'params': params})
    lines = run_inference(session)
    assert lines['inference/latency-corners'].status == PASS
    assert lines['inference/latency-corners'].limit == 'p95 <= 250 ms'
    assert lines['inference/latency-superpoint'].status == SKIP
    assert lines['inference/latency-missing'].status == FAIL
    assert 'does not exist' in lines['inference/latency-missing'].reason
    assert lines['inference/host-rss'].limit == '<= 1024.0 MiB'
