"""Whole selftest runs: every line reached with the fakes, SKIP without a GPU, strict mode."""

import json

from gps_denied_inference.selftest import release, runner, sync_cost
from gps_denied_inference.selftest.report import FAIL, PASS, SKIP, validate_report_dict
from gps_denied_inference.selftest.runner import run_selftest
from selftest.conftest import lines_by_check, small_options

EVERY_LINE = {
    'environment/tensorrt', 'environment/pycuda', 'environment/cuda-driver',
    'environment/device', 'environment/l4t', 'environment/power-mode', 'environment/thermal',
    'build/onnx-model', 'build/onnx-verify', 'build/onnx-flipped-byte', 'build/engine-builder',
    'build/plan-header', 'build/engine-device', 'build/engine-sealed', 'build/engine-verify',
    'build/engine-flipped-byte', 'build/engine-trtexec', 'build/engine-polygraphy',
    'int8/calibrate', 'int8/cache-sidecars', 'int8/cache-reused', 'int8/cache-reused-logged',
    'int8/dataset-changed', 'int8/dataset-changed-logged', 'int8/other-tensorrt',
    'int8/other-tensorrt-logged', 'int8/corrupt-sidecar',
    'load/load-onnxruntime', 'load/load-tensorrt',
    'budget/refuse-weights-onnxruntime', 'budget/refuse-activate-onnxruntime',
    'budget/refuse-weights-tensorrt', 'budget/refuse-plan-copy-tensorrt',
    'budget/refuse-activate-tensorrt',
    'budget/ledger-vs-device',
    'inference/latency-demo_onnxruntime', 'inference/latency-demo_tensorrt',
    'inference/host-rss', 'inference/gpu-memory',
    'threads/cross-thread-onnxruntime', 'threads/cross-thread-tensorrt',
    'release/twice-onnxruntime', 'release/concurrent-onnxruntime',
    'release/cycles-onnxruntime', 'release/twice-tensorrt', 'release/concurrent-tensorrt',
    'release/cycles-tensorrt', 'release/retains-tensorrt',
    'correctness/fp16-vs-onnxruntime', 'sync-cost/stream-synchronize',
}
# Lines that need nothing but ONNX Runtime: they run on any host.
ONNXRUNTIME_LINES = {
    'build/onnx-model', 'build/onnx-verify', 'build/onnx-flipped-byte',
    'load/load-onnxruntime', 'budget/refuse-weights-onnxruntime',
    'budget/refuse-activate-onnxruntime', 'inference/latency-demo_onnxruntime',
    'inference/host-rss', 'threads/cross-thread-onnxruntime', 'release/twice-onnxruntime',
    'release/concurrent-onnxruntime', 'release/cycles-onnxruntime',
}
# Not a Jetson, no trtexec in the test environment.
HOST_SKIPS = {'environment/l4t', 'environment/power-mode', 'environment/thermal',
              'build/engine-trtexec'}


def test_with_the_fakes_every_line_is_reached_and_the_device_path_passes(fake, tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(release, 'primary_retains', lambda: fake.retained)
    monkeypatch.setattr(sync_cost, 'measure', lambda session: (0.001, 0.1))
    report = run_selftest(small_options(tmp_path))
    lines = lines_by_check(report)
    assert set(lines) == EVERY_LINE
    statuses = {key: line.status for key, line in lines.items()}
    # The fake TensorRT doubles its input instead of detecting corners.
    assert statuses.pop('correctness/fp16-vs-onnxruntime') == FAIL
    assert {k for k, s in statuses.items() if s == SKIP} == HOST_SKIPS
    assert {k for k, s in statuses.items() if s != SKIP} == {k for k, s in statuses.items()
                                                            if s == PASS}
    assert fake.live_allocations == 0
    assert fake.retained == 0, 'the selftest left a primary-context retain behind'
    assert 'TensorRT disagrees' in lines['correctness/fp16-vs-onnxruntime'].reason


def test_without_tensorrt_or_pycuda_device_checks_skip_and_onnxruntime_checks_run(no_gpu,
                                                                                 tmp_path):
    report = run_selftest(small_options(tmp_path))
    lines = lines_by_check(report)
    assert set(lines) <= EVERY_LINE
    assert {k for k, line in lines.items() if line.status == PASS} == ONNXRUNTIME_LINES
    device_lines = set(lines) - ONNXRUNTIME_LINES - HOST_SKIPS
    for key in device_lines:
        assert lines[key].status == SKIP, key
        assert 'is not installed' in lines[key].reason, (key, lines[key].reason)
    assert report.exit_code == 0
    assert validate_report_dict(json.loads(report.to_json())) == []


def test_require_gpu_makes_each_missing_device_check_a_fail(no_gpu, tmp_path):
    report = run_selftest(small_options(tmp_path, require_gpu=True))
    lines = lines_by_check(report)
    failed = {k for k, line in lines.items() if line.status == FAIL}
    assert 'build/engine-builder' in failed and 'sync-cost/stream-synchronize' in failed
    assert not failed & ONNXRUNTIME_LINES
    assert lines['environment/l4t'].status == SKIP  # not a Jetson is no missing library
    assert report.exit_code == 1


def test_a_family_that_breaks_is_one_fail_line_and_the_rest_still_run(no_gpu, tmp_path,
                                                                     monkeypatch):
    from gps_denied_inference.selftest import load

    def broken(session, report):
        raise KeyError('boom')
    monkeypatch.setattr(load, 'run', broken)
    report = run_selftest(small_options(tmp_path))
    lines = lines_by_check(report)
    assert lines['load/family'].status == FAIL
    assert "KeyError: 'boom'" in lines['load/family'].reason
    assert lines['sync-cost/stream-synchronize'].status == SKIP
    assert report.exit_code == 1
    assert runner.FAMILIES[-1] == 'sync_cost'
