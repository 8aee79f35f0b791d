"""The ledger refuses before anything is allocated, with exact numbers, and never over-commits."""

import sys
import threading

import pytest
from sealed_models import plan_manifest

from gps_denied_inference.artifacts.manifest import MemoryPrediction, TensorSpec
from gps_denied_inference.errors import OutOfMemoryError
from gps_denied_inference.resources.budget import (
    execution_need,
    in_flight_need,
    INPUTS_IN_FLIGHT,
    MemoryBudget,
    MemoryLedger,
    MemoryNeed,
    RESULTS_IN_FLIGHT,
    weights_need,
)


@pytest.fixture(autouse=True)
def frequent_thread_switches():
    """Switch threads every microsecond so unlocked check-then-act races would show."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(interval)


def run_threads(count, target):
    """Start `count` threads on target(index) together (a barrier), join, re-raise failures."""
    barrier = threading.Barrier(count)
    failures = []

    def body(index):
        try:
            barrier.wait()
            target(index)
        except BaseException as err:  # noqa: B902 - surfaced in the main thread below
            failures.append(err)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads), 'a thread is stuck (deadlock?)'
    assert not failures, failures


@pytest.mark.parametrize('budget,first,second,fits', [
    (100, 60, 40, True),   # resident + requested == budget is allowed
    (100, 60, 41, False),
    (100, 0, 100, True),
    (100, 100, 0, True),   # a zero-byte reservation always fits
    (100, 0, 101, False),
    (0, 0, 1, False),
    (1 << 40, (1 << 40) - 1, 1, True),
])
def test_a_reservation_fits_exactly_up_to_the_budget(budget, first, second, fits):
    ledger = MemoryLedger('GPU', budget)
    ledger.reserve('a', first)
    if fits:
        ledger.reserve('b', second)
        assert ledger.resident_bytes == first + second
        assert ledger.available_bytes == budget - first - second
    else:
        with pytest.raises(OutOfMemoryError):
            ledger.reserve('b', second)
        assert ledger.reservations() == {'a': first}


@pytest.mark.parametrize('pool,budget,resident,requested', [
    ('GPU', 4096, 1000, 3097),
    ('host', 1536 * 2 ** 20, 1536 * 2 ** 20, 1),
    ('GPU', 10, 0, 11),
    ('host', 8 * 2 ** 30, 7 * 2 ** 30 + 12345, 2 ** 30),
])
def test_a_refusal_names_the_engine_and_the_exact_numbers_and_changes_nothing(
        pool, budget, resident, requested):
    ledger = MemoryLedger(pool, budget)
    ledger.reserve('superpoint:weights', resident)
    before = (ledger.reservations(), ledger.resident_bytes, ledger.available_bytes)
    with pytest.raises(OutOfMemoryError) as info:
        ledger.reserve('lightglue:execution', requested)
    err = info.value
    assert (err.pool, err.name, err.requested, err.resident, err.budget) == (
        pool, 'lightglue:execution', requested, resident, budget)
    assert str(err) == (f"{pool} memory budget refused 'lightglue:execution': requested "
                        f'{requested} B, resident {resident} B, budget {budget} B '
                        f'(short by {resident + requested - budget} B)')
    assert (ledger.reservations(), ledger.resident_bytes, ledger.available_bytes) == before


def test_release_returns_the_bytes_freed_once_and_then_zero():
    ledger = MemoryLedger('host', 1000)
    ledger.reserve('a', 300)
    ledger.reserve('b', 200)
    assert ledger.release('a') == 300
    assert ledger.release('a') == 0
    assert ledger.release('never-reserved') == 0
    assert ledger.reservations() == {'b': 200}
    assert ledger.resident_bytes == 200
    ledger.reserve('a', 800)  # a released name can be reserved again, with the freed room
    assert ledger.available_bytes == 0


def test_reserving_a_name_twice_is_refused_by_name_and_changes_nothing():
    ledger = MemoryLedger('GPU', 1000)
    ledger.reserve('vo:weights', 10)
    with pytest.raises(ValueError, match=r"'vo:weights' is already reserved \(10 B\)"):
        ledger.reserve('vo:weights', 10)
    assert ledger.reservations() == {'vo:weights': 10}


@pytest.mark.parametrize('nbytes', [-1, 1.5, '10', None, True])
def test_a_byte_count_that_is_not_a_non_negative_integer_is_refused(nbytes):
    ledger = MemoryLedger('GPU', 1000)
    with pytest.raises(ValueError, match='integer number of bytes >= 0'):
        ledger.reserve('x', nbytes)
    assert ledger.reservations() == {}


@pytest.mark.parametrize('name', ['', None, 3])
def test_a_reservation_needs_a_name(name):
    with pytest.raises(ValueError, match='non-empty string'):
        MemoryLedger('GPU', 10).reserve(name, 1)


@pytest.mark.parametrize('pool,budget', [('gpu', 10), ('DRAM', 10), ('GPU', -1), ('host', 2.0)])
def test_a_ledger_needs_a_known_pool_and_a_byte_budget(pool, budget):
    with pytest.raises(ValueError):
        MemoryLedger(pool, budget)


def test_concurrent_reservations_never_exceed_the_budget():
    size, budget, threads, per_thread = 7, 7 * 50 + 3, 8, 40
    ledger = MemoryLedger('GPU', budget)
    refused = []
    sampled_over = []
    done = threading.Event()

    def monitor():
        while not done.is_set():
            if ledger.resident_bytes > budget or sum(ledger.reservations().values()) > budget:
                sampled_over.append(ledger.reservations())

    def reserve_many(index):
        for k in range(per_thread):
            try:
                ledger.reserve(f't{index}-{k}', size)
            except OutOfMemoryError as err:
                refused.append(err)

    watcher = threading.Thread(target=monitor)
    watcher.start()
    try:
        run_threads(threads, reserve_many)
    finally:
        done.set()
        watcher.join()
    assert not sampled_over
    assert len(ledger.reservations()) == budget // size
    assert ledger.resident_bytes == (budget // size) * size
    assert len(refused) == threads * per_thread - budget // size
    assert all(err.resident + err.requested > err.budget for err in refused)


@pytest.mark.parametrize('through_budget', [False, True])
def test_threads_racing_for_one_slot_never_hold_it_together(through_budget):
    # Check-then-commit without the lock lets two winners in within a few thousand rounds.
    budget = MemoryBudget(10, 10)
    ledger = budget.host
    overcommitted = []

    def race(index):
        name = f'racer{index}'
        for _ in range(15_000):
            try:
                if through_budget:
                    budget.reserve(name, MemoryNeed(host_bytes=10))
                else:
                    ledger.reserve(name, 10)
            except OutOfMemoryError:
                continue
            if ledger.resident_bytes > 10:
                overcommitted.append(ledger.reservations())
            (budget if through_budget else ledger).release(name)

    run_threads(4, race)
    assert not overcommitted
    assert budget.is_empty()


def test_concurrent_reserve_and_release_keep_resident_equal_to_the_sum_of_reservations():
    ledger = MemoryLedger('host', 1000)

    def churn(index):
        for k in range(300):
            name = f'{index}-{k % 5}'
            try:
                ledger.reserve(name, 37)
            except (OutOfMemoryError, ValueError):
                pass
            ledger.release(f'{index}-{(k + 2) % 5}')

    run_threads(6, churn)
    reservations = ledger.reservations()
    assert ledger.resident_bytes == sum(reservations.values()) <= 1000
    for name in list(reservations):
        ledger.release(name)
    assert ledger.resident_bytes == 0


def test_the_budget_reserves_in_both_pools_and_lists_only_real_bytes():
    budget = MemoryBudget(1000, 500)
    budget.reserve('m:weights', MemoryNeed(gpu_bytes=400))
    budget.reserve('m:execution', MemoryNeed(gpu_bytes=300, host_bytes=100))
    assert budget.gpu.reservations() == {'m:weights': 400, 'm:execution': 300}
    assert budget.host.reservations() == {'m:execution': 100}
    snapshot = budget.snapshot()
    assert (snapshot.gpu.resident_bytes, snapshot.gpu.budget_bytes,
            snapshot.gpu.available_bytes) == (700, 1000, 300)
    assert snapshot.host.reservations == (('m:execution', 100),)
    assert not budget.is_empty()
    budget.release('m:execution')
    budget.release('m:execution')
    budget.release('m:weights')
    assert budget.is_empty()
    assert (budget.gpu.resident_bytes, budget.host.resident_bytes) == (0, 0)


def test_a_zero_need_is_still_held_by_name_until_released():
    budget = MemoryBudget(10, 10)
    budget.reserve('empty', MemoryNeed())
    assert not budget.is_empty()
    with pytest.raises(ValueError, match="'empty' is already reserved"):
        budget.reserve('empty', MemoryNeed(gpu_bytes=1))
    budget.release('empty')
    assert budget.is_empty()


@pytest.mark.parametrize('need,pool,requested,resident,limit', [
    (MemoryNeed(gpu_bytes=601, host_bytes=1), 'GPU', 601, 400, 1000),
    (MemoryNeed(gpu_bytes=1, host_bytes=401), 'host', 401, 100, 500),
    (MemoryNeed(gpu_bytes=700, host_bytes=500), 'GPU', 700, 400, 1000),
])
def test_a_refusal_in_either_pool_changes_neither(need, pool, requested, resident, limit):
    budget = MemoryBudget(1000, 500)
    budget.reserve('a', MemoryNeed(gpu_bytes=400, host_bytes=100))
    before = budget.snapshot()
    with pytest.raises(OutOfMemoryError) as info:
        budget.reserve('b', need)
    assert (info.value.pool, info.value.name, info.value.requested, info.value.resident,
            info.value.budget) == (pool, 'b', requested, resident, limit)
    assert budget.snapshot() == before
    budget.reserve('b', MemoryNeed(gpu_bytes=600, host_bytes=400))  # exactly what is left
    assert budget.snapshot().gpu.available_bytes == budget.snapshot().host.available_bytes == 0


def test_reserve_all_is_all_or_nothing_and_names_everything_it_refused():
    budget = MemoryBudget(1000, 1000)
    budget.reserve('resident', MemoryNeed(host_bytes=200))
    needs = {'a:execution': MemoryNeed(gpu_bytes=500, host_bytes=300),
             'b:execution': MemoryNeed(gpu_bytes=400, host_bytes=600)}
    before = budget.snapshot()
    with pytest.raises(OutOfMemoryError) as info:
        budget.reserve_all(needs)
    err = info.value
    assert (err.pool, err.name, err.requested, err.resident, err.budget) == (
        'host', 'a:execution+b:execution', 900, 200, 1000)
    assert budget.snapshot() == before
    budget.release('resident')
    budget.reserve_all(needs)
    assert budget.gpu.reservations() == {'a:execution': 500, 'b:execution': 400}
    assert budget.host.resident_bytes == 900


def test_reserve_all_refuses_a_name_already_held_and_reserves_none():
    budget = MemoryBudget(1000, 1000)
    budget.reserve('b', MemoryNeed(gpu_bytes=1))
    with pytest.raises(ValueError, match="'b' is already reserved"):
        budget.reserve_all({'a': MemoryNeed(gpu_bytes=1), 'b': MemoryNeed(gpu_bytes=1)})
    assert budget.gpu.reservations() == {'b': 1}


def test_a_name_reserved_directly_in_a_ledger_is_not_reserved_again_through_the_budget():
    budget = MemoryBudget(1000, 1000)
    budget.host.reserve('x', 5)
    with pytest.raises(ValueError, match="'x' is already reserved in the ledger"):
        budget.reserve('x', MemoryNeed(gpu_bytes=1, host_bytes=1))
    assert budget.gpu.reservations() == {} and budget.host.reservations() == {'x': 5}
    assert not budget.is_empty()


@pytest.mark.parametrize('need', [{'gpu_bytes': -1}, {'host_bytes': 2.5}, {'gpu_bytes': False}])
def test_a_need_is_whole_non_negative_bytes(need):
    with pytest.raises(ValueError, match='MemoryNeed'):
        MemoryNeed(**need)


def test_a_budget_refuses_a_need_of_the_wrong_type():
    with pytest.raises(ValueError, match='expected a MemoryNeed, got int'):
        MemoryBudget(10, 10).reserve('a', 5)


def test_concurrent_budget_and_direct_ledger_use_neither_deadlocks_nor_over_commits():
    gpu_budget, host_budget = 10_000, 6_000
    budget = MemoryBudget(gpu_budget, host_budget)

    def churn(index):
        for k in range(200):
            name = f'{index}-{k % 4}'
            try:
                if index % 3 == 0:
                    budget.gpu.reserve(name, 90)
                elif index % 3 == 1:
                    budget.host.reserve(name, 70)
                else:
                    budget.reserve_all({name: MemoryNeed(gpu_bytes=110, host_bytes=60),
                                        name + 'b': MemoryNeed(host_bytes=30)})
            except (OutOfMemoryError, ValueError):
                pass
            snapshot = budget.snapshot()
            assert snapshot.gpu.resident_bytes == sum(b for _, b in snapshot.gpu.reservations)
            assert snapshot.gpu.resident_bytes <= gpu_budget
            assert snapshot.host.resident_bytes <= host_budget
            old = f'{index}-{(k + 1) % 4}'
            budget.release(old)
            budget.release(old + 'b')
            budget.gpu.release(old)
            budget.host.release(old)

    run_threads(9, churn)
    for name in {*budget.gpu.reservations(), *budget.host.reservations()}:
        budget.release(name)
    for index in range(9):
        for k in range(4):
            budget.release(f'{index}-{k}')
            budget.release(f'{index}-{k}b')
    assert budget.is_empty()


MEMORY = MemoryPrediction(weights_bytes=11_000_000, activation_bytes=3_000_000,
                          io_buffer_bytes=2_457_600)


@pytest.mark.parametrize('on_gpu,weights,execution', [
    (True, MemoryNeed(gpu_bytes=11_000_000),
     MemoryNeed(gpu_bytes=5_457_600, host_bytes=2_457_600)),
    (False, MemoryNeed(host_bytes=11_000_000), MemoryNeed(host_bytes=5_457_600)),
])
def test_needs_come_from_the_manifest_prediction(on_gpu, weights, execution):
    manifest = plan_manifest(memory=MEMORY)
    assert weights_need(manifest, on_gpu) == weights
    assert execution_need(manifest, on_gpu) == execution


def test_in_flight_are_host_copies_of_two_inputs_and_two_results():
    two_outputs = plan_manifest(tensors=(
        TensorSpec('image', 'input', 'float32', (1, 1, 480, 640)),
        TensorSpec('keypoints', 'output', 'float32', (1, 1, 480, 640)),
        TensorSpec('descriptors', 'output', 'float16', (1, 256, 60, 80))))
    per_input = 4 * 480 * 640
    per_result = 4 * 480 * 640 + 2 * 256 * 60 * 80
    assert (INPUTS_IN_FLIGHT, RESULTS_IN_FLIGHT) == (2, 2)
    assert in_flight_need(two_outputs) == MemoryNeed(host_bytes=2 * per_input + 2 * per_result)


def test_needs_add_pool_by_pool():
    assert (MemoryNeed(gpu_bytes=1, host_bytes=2) + MemoryNeed(gpu_bytes=10, host_bytes=20)
            == MemoryNeed(gpu_bytes=11, host_bytes=22))


def test_an_engine_that_fits_its_weights_but_not_its_execution_is_refused_at_execution():
    manifest = plan_manifest(memory=MEMORY)
    budget = MemoryBudget(17_000_000, 2_000_000)
    budget.reserve('vo:weights', weights_need(manifest, True))
    with pytest.raises(OutOfMemoryError, match="host memory budget refused 'vo:execution'"):
        budget.reserve('vo:execution', execution_need(manifest, True))
    assert budget.gpu.reservations() == {'vo:weights': 11_000_000}
    assert budget.host.reservations() == {}
