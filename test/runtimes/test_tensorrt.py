"""TensorrtRuntime on the recording fakes, which refuse CUDA work without a current context.

Gate and budget before TensorRT, rollback at every stage, H2D -> enqueue -> D2H -> sync on the
handle's stream, the primary context pushed on whichever thread calls, idempotent release and
third-party errors rewrapped.
"""

from dataclasses import replace
import subprocess
import sys
import threading

from fakes import gpu
from fakes.engines import build_engine, TRT
import numpy as np
import pytest
from sysfs import orin_tree

from gps_denied_inference.artifacts.gate import EngineGate, GateExpectation
from gps_denied_inference.artifacts.manifest import Manifest, MemoryPrediction, TensorSpec
from gps_denied_inference.artifacts.sealing import manifest_sidecar_path, seal_artifact
from gps_denied_inference.errors import (
    ConfigError,
    EngineGateError,
    EngineLoadError,
    InferenceError,
    OutOfMemoryError,
    RuntimeUnavailableError,
)
from gps_denied_inference.resources.budget import MemoryBudget, MemoryNeed
from gps_denied_inference.resources.thermal import (
    ThermalConfig,
    ThermalLevel,
    ThermalStatePublisher,
    ThermalZoneReader,
)
from gps_denied_inference.runtimes.protocol import build_inference_runtime
from gps_denied_inference.runtimes.settings import CUDA_CONTEXT_OVERHEAD_BYTES, RuntimeConfig
from gps_denied_inference.runtimes.tensorrt import TensorrtHandle, TensorrtRuntime

GIB = 1 << 30


@pytest.fixture
def fake():
    with gpu.installed() as device:
        yield device


@pytest.fixture
def engine(tmp_path, fake):
    path = build_engine(tmp_path)
    fake.calls.clear()
    return path


class RecordingGate(EngineGate):
    """The real gate, logging each admission into the fakes' call log."""

    def admit(self, path, expected):
        gpu.active().record('gate.admit')
        return super().admit(path, expected)


def make_runtime(budget=None, **options):
    return TensorrtRuntime(config=RuntimeConfig(), budget=budget, gate=RecordingGate(),
                           **options)


def loaded(engine, budget=None, name='model'):
    runtime = make_runtime(budget)
    handle = runtime.deserialize_engine(name, str(engine), TRT)
    runtime.prepare_execution(handle)
    return runtime, handle


def image(value=None, shape=(1, 1, 16, 16)):
    rng = np.random.default_rng(7)
    return rng.random(shape, dtype=np.float32) if value is None else np.full(
        shape, value, np.float32)


def assert_nothing_held(fake, budget=None):
    assert fake.live_allocations == 0
    assert fake.retained == 0
    assert fake.stack() == []
    if budget is not None:
        assert budget.is_empty()


# -- load: gate, then budget, then TensorRT --------------------------------------------------

def test_the_gate_runs_before_tensorrt_or_pycuda_is_imported(engine, fake):
    gpu.unload()
    runtime = make_runtime()
    runtime.deserialize_engine('model', str(engine), TRT)
    events = fake.events('gate', 'import', 'trt.', 'Runtime.')
    assert events[:4] == ['gate.admit', 'import tensorrt', 'import pycuda',
                          'import pycuda.driver']
    assert events.index('trt.Runtime') > events.index('import pycuda.driver')


@pytest.mark.parametrize('tamper', ['bytes', 'sidecar', 'version', 'capability'])
def test_a_refused_artifact_imports_nothing_and_reserves_nothing(engine, fake, tamper):
    expected = TRT
    if tamper == 'bytes':
        engine.write_bytes(engine.read_bytes() + b'\0')
    elif tamper == 'sidecar':
        manifest_sidecar_path(engine).write_text('{}')
    elif tamper == 'version':
        expected = replace(TRT, tensorrt_version='10.3.1')
    else:
        expected = replace(TRT, compute_capability='7.2')
    budget = MemoryBudget(GIB, GIB)
    with pytest.raises(EngineGateError):
        make_runtime(budget).deserialize_engine('model', str(engine), expected)
    assert fake.events() == ['gate.admit']
    assert budget.is_empty()


def test_budget_refusal_comes_before_any_load_and_changes_nothing(engine, fake):
    budget = MemoryBudget(100, GIB)
    budget.reserve('other:weights', MemoryNeed(gpu_bytes=60))
    with pytest.raises(OutOfMemoryError) as info:
        make_runtime(budget).deserialize_engine('model', str(engine), TRT)
    assert info.value.pool == 'GPU'
    assert info.value.name == 'model:weights+model:plan-copy+cuda-context'
    assert fake.events() == ['gate.admit']
    assert budget.gpu.reservations() == {'other:weights': 60}
    assert budget.host.reservations() == {}


def test_load_reserves_the_manifest_weights_on_the_gpu(engine, fake):
    budget = MemoryBudget(GIB, GIB)
    runtime = make_runtime(budget)
    handle = runtime.deserialize_engine('model', str(engine), TRT)
    assert budget.gpu.reservations() == {'model:weights': handle.manifest.memory.weights_bytes,
                                         'cuda-context': CUDA_CONTEXT_OVERHEAD_BYTES}
    assert budget.host.reservations() == {}  # the plan's host copy only while deserializing
    assert handle.manifest.memory.weights_bytes == engine.stat().st_size
    assert handle.on_gpu and not handle.is_released and handle.name == 'model'


@pytest.mark.parametrize('event,soft', [
    ('cuda.init', False),
    ('Device.retain_primary_context', False),
    ('Context.push', False),
    ('trt.Runtime', False),
    ('Runtime.deserialize_cuda_engine', False),
    ('Runtime.deserialize_cuda_engine', True),
])
def test_a_load_failure_at_any_stage_rolls_everything_back(engine, fake, event, soft):
    budget = MemoryBudget(GIB, GIB)
    runtime = make_runtime(budget)
    fake.fail(event, soft=soft)
    with pytest.raises(EngineLoadError) as info:
        runtime.deserialize_engine('model', str(engine), TRT)
    assert 'model' in str(info.value)
    if not soft:
        assert isinstance(info.value.__cause__, gpu.InjectedError)
    assert_nothing_held(fake, budget)
    handle = runtime.deserialize_engine('model', str(engine), TRT)  # the name is free again
    runtime.release_engine(handle)
    assert_nothing_held(fake, budget)


@pytest.mark.parametrize('library', ['tensorrt', 'pycuda'])
def test_a_missing_library_is_named_after_the_gate_and_rolled_back(engine, fake, library):
    gpu.unload()
    fake.blocked.add(library)
    budget = MemoryBudget(GIB, GIB)
    with pytest.raises(RuntimeUnavailableError, match=library):
        make_runtime(budget).deserialize_engine('model', str(engine), TRT)
    assert fake.events()[0] == 'gate.admit'
    assert_nothing_held(fake, budget)


def reseal(engine, **changes):
    manifest = Manifest.from_json(manifest_sidecar_path(engine).read_text())
    seal_artifact(engine, replace(manifest, **changes))


@pytest.mark.parametrize('change,message', [
    ({'tensors': (TensorSpec('image', 'input', 'float32', (1, 1, 16, 32)),
                  TensorSpec('doubled', 'output', 'float32', (1, 1, 16, 16)))},
     'disagrees with its manifest'),
    ({'tensors': (TensorSpec('image', 'input', 'float16', (1, 1, 16, 16)),
                  TensorSpec('doubled', 'output', 'float32', (1, 1, 16, 16)))},
     'disagrees with its manifest'),
    ({'memory': MemoryPrediction(weights_bytes=1, activation_bytes=1024, io_buffer_bytes=1)},
     'activation memory'),
])
def test_an_engine_that_contradicts_its_manifest_is_refused(engine, fake, change, message):
    reseal(engine, **change)
    budget = MemoryBudget(GIB, GIB)
    with pytest.raises(EngineLoadError, match=message):
        make_runtime(budget).deserialize_engine('model', str(engine), TRT)
    assert_nothing_held(fake, budget)


def test_an_artifact_altered_after_the_gate_is_not_what_gets_loaded(engine, fake):
    """The runtime deserializes the bytes the gate hashed, not the file as it is now."""
    original = engine.read_bytes()

    class AlteringGate(EngineGate):
        def admit(self, path, expected):
            admitted = super().admit(path, expected)
            engine.write_bytes(original[:-1] + b'!')
            return admitted

    runtime = TensorrtRuntime(config=RuntimeConfig(), gate=AlteringGate())
    handle = runtime.deserialize_engine('model', str(engine), TRT)
    assert engine.read_bytes() != original
    assert 'Runtime.deserialize_cuda_engine' in fake.events()
    runtime.release_engine(handle)


def test_loading_a_second_engine_under_a_taken_name_is_refused(engine, fake):
    runtime = make_runtime()
    runtime.deserialize_engine('model', str(engine), TRT)
    with pytest.raises(ConfigError, match='already loaded'):
        runtime.deserialize_engine('model', str(engine), TRT)


def test_an_onnxruntime_expectation_is_refused_before_the_gate(engine, fake):
    with pytest.raises(ConfigError, match='onnxruntime'):
        make_runtime().deserialize_engine('model', str(engine), GateExpectation('onnxruntime'))
    assert fake.events() == []


# -- prepare: reserve, then allocate, then warm up -------------------------------------------

def test_prepare_reserves_allocates_binds_and_warms_up_once(engine, fake):
    budget = MemoryBudget(GIB, GIB)
    runtime = make_runtime(budget)
    handle = runtime.deserialize_engine('model', str(engine), TRT)
    fake.calls.clear()
    runtime.prepare_execution(handle)
    runtime.prepare_execution(handle)  # idempotent
    memory = handle.manifest.memory
    assert budget.gpu.reservations()['model:execution'] == (memory.activation_bytes
                                                            + memory.io_buffer_bytes)
    assert budget.host.reservations() == {'model:execution': memory.io_buffer_bytes}
    events = fake.events()
    assert events[:3] == ['Context.push', 'ICudaEngine.create_execution_context', 'cuda.Stream']
    assert events.count('cuda.mem_alloc') == 2 and events.count('cuda.pagelocked_empty') == 2
    bound = {c.detail[0]: c.detail[1] for c in fake.calls_of(
        'IExecutionContext.set_tensor_address')}
    assert set(bound) == {'image', 'doubled'} and all(a in fake.memory for a in bound.values())
    assert events.count('IExecutionContext.execute_async_v3') == 1  # the warm-up
    assert events[-1] == 'Context.pop'


@pytest.mark.parametrize('event,soft,after', [
    ('Context.push', False, 0),
    ('ICudaEngine.create_execution_context', False, 0),
    ('ICudaEngine.create_execution_context', True, 0),
    ('cuda.Stream', False, 0),
    ('cuda.pagelocked_empty', False, 1),
    ('cuda.mem_alloc', False, 0),
    ('cuda.mem_alloc', False, 1),
    ('IExecutionContext.set_tensor_address', True, 1),
    ('cuda.memcpy_htod_async', False, 0),
    ('IExecutionContext.execute_async_v3', True, 0),
    ('cuda.memcpy_dtoh_async', False, 0),
    ('Event.synchronize', False, 0),
])
def test_a_prepare_failure_at_any_stage_frees_what_was_allocated(engine, fake, event, soft,
                                                                  after):
    budget = MemoryBudget(GIB, GIB)
    runtime = make_runtime(budget)
    handle = runtime.deserialize_engine('model', str(engine), TRT)
    weights = budget.gpu.reservations()
    fake.fail(event, soft=soft, after=after)
    with pytest.raises(EngineLoadError) as info:
        runtime.prepare_execution(handle)
    assert 'model' in str(info.value)
    assert fake.live_allocations == 0 and fake.stack() == []
    assert budget.gpu.reservations() == weights and budget.host.reservations() == {}
    assert not handle.is_prepared and handle.context is None and handle.host == {}
    runtime.prepare_execution(handle)  # a later attempt starts clean and succeeds
    assert np.array_equal(runtime.infer(handle, {'image': image(1.5)})['doubled'], image(3.0))


def test_prepare_is_refused_by_the_budget_before_any_allocation(engine, fake):
    budget = MemoryBudget(GIB, engine.stat().st_size + 100)
    runtime = make_runtime(budget)
    handle = runtime.deserialize_engine('model', str(engine), TRT)
    fake.calls.clear()
    with pytest.raises(OutOfMemoryError) as info:
        runtime.prepare_execution(handle)
    assert info.value.pool == 'host' and info.value.name == 'model:execution'
    assert fake.events() == []
    assert list(budget.gpu.reservations()) == ['model:weights', 'cuda-context']


# -- infer -----------------------------------------------------------------------------------

def test_infer_copies_in_enqueues_copies_out_and_synchronizes_in_order(engine, fake):
    runtime, handle = loaded(engine)
    fake.calls.clear()
    data = image()
    outputs = runtime.infer(handle, {'image': data})
    assert fake.events() == ['Context.push', 'cuda.memcpy_htod_async',
                             'IExecutionContext.execute_async_v3', 'cuda.memcpy_dtoh_async',
                             'Event.record', 'Event.synchronize', 'Context.pop']
    assert fake.calls_of('IExecutionContext.execute_async_v3')[0].detail == (
        handle.stream.handle,)
    assert np.array_equal(outputs['doubled'], data * 2)
    assert outputs['doubled'].dtype == np.float32


def test_page_locked_buffers_are_allocated_once_and_outputs_are_copies(engine, fake):
    runtime, handle = loaded(engine)
    first = runtime.infer(handle, {'image': image(1.0)})['doubled']
    fake.calls.clear()
    second = runtime.infer(handle, {'image': image(2.0)})['doubled']
    assert 'cuda.pagelocked_empty' not in fake.events()
    assert 'cuda.mem_alloc' not in fake.events()
    assert np.all(first == 2.0) and np.all(second == 4.0)
    assert not np.shares_memory(second, handle.host['doubled'])


def test_any_executor_thread_may_infer_with_the_primary_context_pushed_for_it(engine, fake):
    runtime, handle = loaded(engine)
    fake.calls.clear()
    results, errors = {}, []

    def worker(value):
        try:
            for _ in range(20):
                out = runtime.infer(handle, {'image': image(value)})['doubled']
                results.setdefault(value, []).append(bool(np.all(out == 2 * value)))
        except Exception as err:  # noqa: B902 - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(v,), name=f'executor-{v}')
               for v in (1.0, 2.0)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == {1.0: [True] * 20, 2.0: [True] * 20}
    for name in ('executor-1.0', 'executor-2.0'):
        own = [c.event for c in fake.calls if c.thread == name]
        assert own[0] == 'Context.push' and own[-1] == 'Context.pop'
        assert own.count('Context.push') == own.count('Context.pop') == 20
    assert fake.stack() == []  # nothing left current on the test's thread


def test_the_fake_driver_refuses_cuda_work_on_a_thread_without_a_context(engine, fake):
    """What the per-thread push prevents: the PyCUDA "invalid device context" failure."""
    runtime, handle = loaded(engine)
    errors = []

    def bare_copy():
        try:
            handle.cuda.memcpy_htod_async(handle.device['image'], image(), handle.stream)
        except Exception as err:  # noqa: B902 - reported below
            errors.append(err)

    thread = threading.Thread(target=bare_copy)
    thread.start()
    thread.join()
    assert len(errors) == 1 and 'invalid device context' in str(errors[0])


@pytest.mark.parametrize('event,soft', [
    ('cuda.memcpy_htod_async', False),
    ('IExecutionContext.execute_async_v3', False),
    ('IExecutionContext.execute_async_v3', True),
    ('cuda.memcpy_dtoh_async', False),
    ('Event.synchronize', False),
    ('Context.push', False),
])
def test_third_party_failures_become_inference_errors_with_the_cause(engine, fake, event,
                                                                     soft):
    runtime, handle = loaded(engine)
    fake.fail(event, soft=soft)
    with pytest.raises(InferenceError) as info:
        runtime.infer(handle, {'image': image()})
    assert 'model' in str(info.value)
    if not soft:
        assert isinstance(info.value.__cause__, gpu.InjectedError)
    assert fake.stack() == []
    assert np.array_equal(runtime.infer(handle, {'image': image(1.0)})['doubled'], image(2.0))


@pytest.mark.parametrize('inputs,message', [
    ({'image': image().astype(np.float64)}, 'float32'),
    ({'image': image(shape=(1, 1, 16, 15))}, 'shape'),
    ({'image': image(shape=(1, 16, 16))}, 'rank'),
    ({'picture': image()}, 'do not match'),
    ({'image': image(), 'extra': image()}, 'do not match'),
    ({'image': [[1.0]]}, 'float32 array'),
])
def test_inputs_that_disagree_with_the_manifest_are_refused_before_cuda(engine, fake, inputs,
                                                                         message):
    runtime, handle = loaded(engine)
    fake.calls.clear()
    with pytest.raises(InferenceError, match=message):
        runtime.infer(handle, inputs)
    assert fake.events() == []


def test_dynamic_inputs_set_their_shape_for_every_call(tmp_path, fake):
    profile = {'min': [1, 1, 8, 8], 'opt': [1, 1, 16, 16], 'max': [1, 1, 32, 32]}
    from gps_denied_inference.compiler.build_config import build_config_from_dict
    path = build_engine(tmp_path, dynamic=True,
                        config=build_config_from_dict({'profiles': {'image': profile}}))
    runtime, handle = loaded(path)
    spec = handle.manifest.inputs[0]
    assert spec.shape == (1, 1, -1, -1) and spec.profile == ((1, 1, 8, 8), (1, 1, 16, 16),
                                                             (1, 1, 32, 32))
    assert handle.host['image'].size == 32 * 32  # page-locked at the profile's max
    fake.calls.clear()
    for shape in ((1, 1, 8, 12), (1, 1, 32, 32)):
        data = image(shape=shape)
        assert np.array_equal(runtime.infer(handle, {'image': data})['doubled'], data * 2)
    assert [c.detail for c in fake.calls_of('IExecutionContext.set_input_shape')] == [
        ('image', (1, 1, 8, 12)), ('image', (1, 1, 32, 32))]
    with pytest.raises(InferenceError, match='outside the profile'):
        runtime.infer(handle, {'image': image(shape=(1, 1, 33, 8))})


def test_infer_before_prepare_is_refused(engine, fake):
    runtime = make_runtime()
    handle = runtime.deserialize_engine('model', str(engine), TRT)
    with pytest.raises(InferenceError, match='not prepared'):
        runtime.infer(handle, {'image': image()})


# -- release, foreign handles, thermal, factory ----------------------------------------------

def test_release_frees_everything_once_and_then_does_nothing(engine, fake):
    budget = MemoryBudget(GIB, GIB)
    runtime, handle = loaded(engine, budget)
    fake.calls.clear()
    runtime.release_engine(handle)
    assert fake.events() == ['Context.push', 'DeviceAllocation.free', 'DeviceAllocation.free',
                             'Context.pop', 'Context.detach']
    assert handle.is_released and handle.engine is None and handle.context is None
    assert_nothing_held(fake, budget)
    fake.calls.clear()
    runtime.release_engine(handle)
    assert fake.events() == []
    for call in (lambda: runtime.infer(handle, {'image': image()}),
                 lambda: runtime.prepare_execution(handle)):
        with pytest.raises(InferenceError, match='released'):
            call()


def test_release_of_a_loaded_but_unprepared_engine_gives_back_its_weights(engine, fake):
    budget = MemoryBudget(GIB, GIB)
    runtime = make_runtime(budget)
    runtime.release_engine(runtime.deserialize_engine('model', str(engine), TRT))
    assert_nothing_held(fake, budget)


def test_a_release_that_fails_still_gives_back_context_and_reservations(engine, fake):
    budget = MemoryBudget(GIB, GIB)
    runtime, handle = loaded(engine, budget)
    fake.fail('DeviceAllocation.free')
    with pytest.raises(InferenceError, match='releasing') as info:
        runtime.release_engine(handle)
    assert isinstance(info.value.__cause__, gpu.InjectedError)
    assert handle.is_released and budget.is_empty() and fake.retained == 0
    runtime.release_engine(handle)


def test_a_handle_of_another_runtime_or_no_handle_is_refused(engine, fake):
    _, handle = loaded(engine)
    other = make_runtime()
    for call in (lambda: other.infer(handle, {'image': image()}),
                 lambda: other.prepare_execution(handle),
                 lambda: other.release_engine(handle)):
        with pytest.raises(InferenceError, match='does not belong'):
            call()
    with pytest.raises(InferenceError, match='not a TensorRT engine handle'):
        other.infer(object(), {'image': image()})
    assert not handle.is_released


def test_thermal_state_is_unavailable_without_a_publisher(fake):
    state = make_runtime().thermal_state()
    assert not state.is_telemetry_available and state.level is ThermalLevel.OK
    assert 'no thermal publisher' in state.reason


def test_thermal_state_delegates_to_the_publisher(tmp_path, fake):
    reader = ThermalZoneReader(ThermalConfig(root=str(orin_tree(tmp_path / 'thermal'))))
    with ThermalStatePublisher(reader, period_s=0.05) as publisher:
        runtime = TensorrtRuntime(config=RuntimeConfig(), thermal=publisher)
        for _ in range(200):
            state = runtime.thermal_state()
            if state.is_telemetry_available:
                break
            threading.Event().wait(0.01)
    assert state.is_telemetry_available and state.hottest is not None
    assert {zone.name for zone in state.zones} >= {'cpu', 'gpu'}


def test_the_factory_builds_this_strategy_with_budget_and_options(engine, fake):
    budget = MemoryBudget(GIB, GIB)
    runtime = build_inference_runtime('tensorrt', budget=budget, device_index=0)
    assert isinstance(runtime, TensorrtRuntime)
    handle = runtime.deserialize_engine('model', str(engine), TRT)
    assert isinstance(handle, TensorrtHandle) and not budget.is_empty()
    runtime.release_engine(handle)
    assert budget.is_empty()


@pytest.mark.parametrize('options,message', [
    ({'providers': ['CUDAExecutionProvider']}, 'unknown'),
    ({'device_index': -1}, 'device_index'),
    ({'device_index': True}, 'device_index'),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        TensorrtRuntime(config=RuntimeConfig(), **options)


def test_the_module_imports_without_tensorrt_or_pycuda():
    code = ('import sys, gps_denied_inference.runtimes.tensorrt, '
            'gps_denied_inference.commands.compile; '
            'bad = [m for m in ("tensorrt", "pycuda", "polygraphy") if m in sys.modules]; '
            'print(bad); sys.exit(1 if bad else 0)')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- what the review against the real sources found ------------------------------------------

def test_plugins_are_registered_before_the_engine_is_deserialized(engine, fake):
    gpu.unload()  # a fresh tensorrt module, as in a new process
    make_runtime().deserialize_engine('model', str(engine), TRT)
    events = fake.events('trt.init_libnvinfer_plugins', 'Runtime.deserialize_cuda_engine')
    assert events == ['trt.init_libnvinfer_plugins', 'Runtime.deserialize_cuda_engine']


def test_an_output_larger_than_its_buffer_is_refused_before_anything_is_enqueued(tmp_path,
                                                                                  fake):
    from gps_denied_inference.compiler.build_config import build_config_from_dict
    profile = {'min': [1, 1, 8, 8], 'opt': [1, 1, 16, 16], 'max': [1, 1, 32, 32]}
    path = build_engine(tmp_path, dynamic=True,
                        config=build_config_from_dict({'profiles': {'image': profile}}))
    runtime, handle = loaded(path)
    real_shape = handle.context.get_tensor_shape
    handle.context.get_tensor_shape = lambda name: (
        (1, 1, 64, 64) if name == 'doubled' else real_shape(name))
    fake.calls.clear()
    with pytest.raises(InferenceError, match='nothing was enqueued'):
        runtime.infer(handle, {'image': image(shape=(1, 1, 16, 16))})
    assert fake.events('cuda.memcpy', 'IExecutionContext.execute_async_v3') == []


def test_the_wait_is_on_a_blocking_sync_event_not_a_spinning_stream_sync(engine, fake):
    runtime, handle = loaded(engine)
    import pycuda.driver as cuda
    assert [c.detail for c in fake.calls_of('cuda.Event')] == [
        (int(cuda.event_flags.BLOCKING_SYNC),)]
    fake.calls.clear()
    runtime.infer(handle, {'image': image()})
    assert fake.events('Stream.synchronize') == []
    assert fake.calls_of('Event.synchronize')[0].detail == (int(cuda.event_flags.BLOCKING_SYNC),)


def test_the_cuda_context_is_budgeted_once_while_any_engine_is_loaded(tmp_path, fake):
    first, second = build_engine(tmp_path, 'first'), build_engine(tmp_path, 'second')
    budget = MemoryBudget(GIB, GIB)
    runtime = TensorrtRuntime(config=RuntimeConfig(cuda_context_overhead_bytes=1000),
                              budget=budget, gate=RecordingGate())
    one = runtime.deserialize_engine('first', str(first), TRT)
    two = runtime.deserialize_engine('second', str(second), TRT)
    assert budget.gpu.reservations()['cuda-context'] == 1000
    assert sorted(budget.gpu.reservations()) == ['cuda-context', 'first:weights',
                                                 'second:weights']
    runtime.release_engine(one)
    assert 'cuda-context' in budget.gpu.reservations()
    runtime.release_engine(two)
    assert budget.is_empty()


def test_the_context_overhead_and_the_plan_copy_can_refuse_a_load(engine, fake):
    size = engine.stat().st_size
    budget = MemoryBudget(size + 999, GIB)
    runtime = TensorrtRuntime(config=RuntimeConfig(cuda_context_overhead_bytes=1000),
                              budget=budget, gate=RecordingGate())
    with pytest.raises(OutOfMemoryError, match='cuda-context'):
        runtime.deserialize_engine('model', str(engine), TRT)
    budget = MemoryBudget(GIB, size - 1)
    runtime = TensorrtRuntime(config=RuntimeConfig(), budget=budget, gate=RecordingGate())
    with pytest.raises(OutOfMemoryError, match='plan-copy') as info:
        runtime.deserialize_engine('model', str(engine), TRT)
    assert info.value.pool == 'host'
    assert fake.events('import', 'trt.', 'Runtime.') == [] and budget.is_empty()


def test_a_failed_load_gives_back_the_context_reservation(engine, fake):
    budget = MemoryBudget(GIB, GIB)
    fake.fail('Runtime.deserialize_cuda_engine', soft=True)
    with pytest.raises(EngineLoadError):
        make_runtime(budget).deserialize_engine('model', str(engine), TRT)
    assert budget.is_empty() and fake.retained == 0


def test_runtimes_sharing_a_budget_reserve_the_one_cuda_context_once(tmp_path, fake):
    first, second = build_engine(tmp_path, 'first'), build_engine(tmp_path, 'second')
    budget = MemoryBudget(GIB, GIB)
    runtimes = [make_runtime(budget), make_runtime(budget)]  # the core makes one per model
    one = runtimes[0].deserialize_engine('first', str(first), TRT)
    two = runtimes[1].deserialize_engine('second', str(second), TRT)
    assert list(budget.gpu.reservations()).count('cuda-context') == 1
    runtimes[0].release_engine(one)
    assert 'cuda-context' in budget.gpu.reservations()
    runtimes[1].release_engine(two)
    assert budget.is_empty()


def make_plugin_onnx(path):
    """`image` -> `doubled` through a node TensorRT implements as a plugin (`*_TRT`)."""
    import onnx
    from onnx import helper, TensorProto

    graph = helper.make_graph(
        [helper.make_node('Double_TRT', ['image'], ['doubled'])], 'plugin',
        [helper.make_tensor_value_info('image', TensorProto.FLOAT, [1, 1, 16, 16])],
        [helper.make_tensor_value_info('doubled', TensorProto.FLOAT, [1, 1, 16, 16])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_an_engine_that_needs_a_plugin_builds_and_loads_in_a_fresh_process(tmp_path, fake):
    from gps_denied_inference.compiler.build_config import BuildConfig
    from gps_denied_inference.compiler.engine_build import compile_engine
    for backend in ('builder', 'polygraphy'):
        onnx_path = make_plugin_onnx(tmp_path / f'{backend}.onnx')
        compile_engine(onnx_path, BuildConfig(backend=backend), progress=lambda line: None)
        fake.plugins_registered = False  # the drone's process: nothing registered yet
        gpu.unload()
        runtime, handle = loaded(tmp_path / f'{backend}.engine', name=backend)
        assert np.array_equal(runtime.infer(handle, {'image': image(1.0)})['doubled'],
                              image(2.0))
        runtime.release_engine(handle)


def test_without_plugin_registration_a_plugin_engine_neither_builds_nor_loads(
        tmp_path, fake, monkeypatch):
    from gps_denied_inference.compiler.build_config import BuildConfig
    from gps_denied_inference.compiler.engine_build import compile_engine
    from gps_denied_inference.errors import EngineBuildError
    onnx_path = make_plugin_onnx(tmp_path / 'model.onnx')
    compile_engine(onnx_path, BuildConfig(backend='polygraphy'), progress=lambda line: None)
    fake.plugins_registered = False
    for module in ('compiler.engine_build', 'runtimes.tensorrt'):
        monkeypatch.setattr(f'gps_denied_inference.{module}.register_tensorrt_plugins',
                            lambda trt: None)
    with pytest.raises(EngineLoadError, match='could not deserialize'):
        make_runtime().deserialize_engine('model', str(tmp_path / 'model.engine'), TRT)
    with pytest.raises(EngineBuildError, match='plugin not registered'):
        compile_engine(onnx_path, BuildConfig(output=str(tmp_path / 'other.engine')),
                       progress=lambda line: None)
