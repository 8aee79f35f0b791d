"""The primary context as PyCUDA 2024.1.2 really treats it, and the owner thread that copes.

The fake driver models PyCUDA's rule (cuda.hpp): `Context.detach()` releases a primary
context only on the thread that retained it, and there leaves it current (the release never
pops); on any other thread the retain silently leaks. PrimaryContext must release every
retain exactly once, from whichever thread asks, and leave no context current anywhere.
"""

from functools import partial
import threading

from fakes import gpu
from fakes.engines import build_engine, TRT
import pytest

from gps_denied_inference.errors import RuntimeUnavailableError
from gps_denied_inference.runtimes.cuda_context import outstanding_retains, PrimaryContext
from gps_denied_inference.runtimes.settings import RuntimeConfig
from gps_denied_inference.runtimes.tensorrt import TensorrtRuntime


@pytest.fixture
def fake():
    with gpu.installed() as device:
        yield device


def on_thread(function, name='other'):
    """Run `function` on a new thread, re-raising what it raised."""
    outcome = {}

    def run():
        try:
            outcome['value'] = function()
        except BaseException as err:  # noqa: B902 - handed back to the test
            outcome['error'] = err
    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join()
    if 'error' in outcome:
        raise outcome['error']
    return outcome.get('value')


# -- the fake is as unforgiving as PyCUDA ------------------------------------------------------

def test_the_fake_leaks_a_retain_detached_on_another_thread(fake):
    import pycuda.driver as cuda
    context = cuda.Device(0).retain_primary_context()
    on_thread(context.detach)
    assert fake.retained == 1 and fake.leaked_detaches == 1
    with pytest.raises(cuda.LogicError, match='invalid context'):
        context.detach()


def test_the_fake_leaves_a_context_detached_on_its_own_thread_current(fake):
    import pycuda.driver as cuda

    def retain_and_detach():
        context = cuda.Device(0).retain_primary_context()
        context.detach()
        return list(gpu.active().stack()), gpu.active().threads_with_a_current_context()
    stack, current = on_thread(retain_and_detach, name='retainer')
    assert fake.retained == 0
    assert len(stack) == 1 and current == ['retainer']  # never popped while it lived
    assert fake.threads_with_a_current_context() == []  # gone with the thread


# -- PrimaryContext ------------------------------------------------------------------------------

def test_a_retain_is_released_once_from_any_thread_and_nothing_stays_current(fake):
    import pycuda.driver as cuda
    before = outstanding_retains()
    primary = PrimaryContext(cuda)
    assert fake.retained == 1 and outstanding_retains() == before + 1
    with primary.current():
        assert len(fake.stack()) == 1
    on_thread(primary.detach)
    primary.detach()  # later calls do nothing
    assert fake.retained == 0 and fake.leaked_detaches == 0
    assert outstanding_retains() == before
    assert fake.threads_with_a_current_context() == []
    assert fake.stack() == []
    with pytest.raises(RuntimeUnavailableError, match='already released'):
        with primary.current():
            pass


def test_concurrent_detaches_release_once(fake):
    import pycuda.driver as cuda
    primary = PrimaryContext(cuda)
    start = threading.Barrier(4)

    def detach():
        start.wait()
        primary.detach()
    threads = [threading.Thread(target=detach) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fake.retained == 0 and len(fake.calls_of('Context.detach')) == 1


def test_detach_waits_for_a_block_using_the_context_on_another_thread(fake):
    import pycuda.driver as cuda
    primary = PrimaryContext(cuda)
    inside, leave = threading.Event(), threading.Event()

    def use():
        with primary.current():
            inside.set()
            leave.wait()
    user = threading.Thread(target=use)
    user.start()
    inside.wait()
    releaser = threading.Thread(target=primary.detach)
    releaser.start()
    releaser.join(0.2)
    assert releaser.is_alive() and fake.retained == 1
    leave.set()
    user.join()
    releaser.join()
    assert fake.retained == 0 and fake.threads_with_a_current_context() == []


def test_a_failed_retain_raises_on_the_caller_and_holds_nothing(fake):
    import pycuda.driver as cuda
    with pytest.raises(cuda.LogicError, match='invalid device ordinal'):
        PrimaryContext(cuda, device_index=3)
    assert fake.retained == 0


# -- the runtime's load/release cycles ----------------------------------------------------------

def test_200_load_release_cycles_alternating_the_releasing_thread_leak_nothing(tmp_path, fake):
    engine = build_engine(tmp_path)
    runtime = TensorrtRuntime(config=RuntimeConfig())
    start, before = fake.retained, outstanding_retains()
    for cycle in range(200):
        handle = runtime.deserialize_engine('model', str(engine), TRT)
        if cycle % 2:
            on_thread(partial(runtime.release_engine, handle), name=f'releaser-{cycle}')
        else:
            runtime.release_engine(handle)
    assert fake.retained == start and outstanding_retains() == before
    assert fake.leaked_detaches == 0
    assert fake.threads_with_a_current_context() == []
    assert fake.stack() == [] and fake.pycuda_stack() == []


def test_concurrent_releases_of_one_engine_all_return_and_release_once(tmp_path, fake):
    engine = build_engine(tmp_path)
    runtime = TensorrtRuntime(config=RuntimeConfig())
    handle = runtime.deserialize_engine('model', str(engine), TRT)
    runtime.prepare_execution(handle)
    fake.calls.clear()
    start = threading.Barrier(3)
    errors = []

    def release():
        start.wait()
        try:
            runtime.release_engine(handle)
        except Exception as err:  # noqa: B902 - the test reports any
            errors.append(err)
    threads = [threading.Thread(target=release) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert handle.is_released and fake.retained == 0 and fake.live_allocations == 0
    assert len(fake.calls_of('Context.detach')) == 1


def test_the_context_overhead_is_measured_from_available_memory(fake, tmp_path):
    import pycuda.driver as cuda

    from gps_denied_inference.runtimes.cuda_context import (
        measure_context_overhead,
        mem_available_bytes,
    )
    readings = iter([8 << 30, (8 << 30) - (300 << 20)])
    assert measure_context_overhead(cuda, available=lambda: next(readings)) == 300 << 20
    assert fake.retained == 0 and fake.threads_with_a_current_context() == []
    assert measure_context_overhead(cuda, available=lambda: None) is None
    meminfo = tmp_path / 'meminfo'
    meminfo.write_text('MemTotal:       31000000 kB\nMemAvailable:   1024 kB\n')
    assert mem_available_bytes(str(meminfo)) == 1024 * 1024
    assert mem_available_bytes(str(tmp_path / 'missing')) is None
