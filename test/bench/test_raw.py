"""The benchmark's raw loops: a real ONNX Runtime session, tight or paced."""

import numpy as np
import pytest
from sealed_models import make_sealed_onnx

from gps_denied_inference.artifacts.manifest import Manifest
from gps_denied_inference.artifacts.sealing import manifest_sidecar_path
from gps_denied_inference.bench import raw as bench_raw
from gps_denied_inference.bench.frames import FRAME_KINDS
from gps_denied_inference.bench.raw import callback_costs, create_session, raw_runs, timed_run
from gps_denied_inference.demo.scene import AerialScene


@pytest.fixture
def model(tmp_path):
    path = make_sealed_onnx(tmp_path)
    manifest = Manifest.from_json(manifest_sidecar_path(path).read_text())
    tensor = np.zeros(manifest.inputs[0].shape, dtype=np.float32)
    return path, manifest, tensor


def test_a_tight_loop_runs_at_least_its_iterations_and_reports_per_run_numbers(model):
    path, manifest, tensor = model
    [run] = raw_runs(str(path), manifest, tensor, repeats=1, seconds=0.0, min_iterations=7)
    assert len(run['latencies_s']) == 7
    assert all(latency > 0 for latency in run['latencies_s'])
    assert run['throughput_hz'] > 0 and run['cpu_per_run_s'] >= 0


def test_a_paced_loop_starts_one_run_per_period(model):
    path, manifest, tensor = model
    session = create_session(str(path))
    run = timed_run(session, manifest, tensor, seconds=0.0, min_iterations=5, period_s=0.05)
    assert len(run['latencies_s']) == 5
    # Four full periods between the first and the last start: at most 5 / 0.2 s = 25 Hz.
    assert run['throughput_hz'] <= 5 / 0.2


def test_callback_costs_time_decode_and_preprocess_to_the_models_input_per_format(
        model, monkeypatch):
    _, manifest, _ = model
    made = []
    real_preprocess = bench_raw.preprocess

    def recording_preprocess(image, contract):
        tensor = real_preprocess(image, contract)
        made.append((image.width, image.color, tensor.shape))
        return tensor

    monkeypatch.setattr(bench_raw, 'preprocess', recording_preprocess)
    costs = callback_costs(manifest, AerialScene(seed=7, size=(1400, 800)), iterations=4)
    assert list(costs) == list(FRAME_KINDS)
    assert all(len(seconds) == 4 and min(seconds) > 0 for seconds in costs.values())
    # One untimed warm-up and four timed frames per format, each the model's input tensor.
    assert [(width, color) for width, color, _ in made] == [
        (kind.width, 'mono' if kind.encoding == 'mono8' else 'rgb')
        for kind in FRAME_KINDS.values() for _ in range(5)]
    assert {shape for _, _, shape in made} == {manifest.preprocess.input_shape}
