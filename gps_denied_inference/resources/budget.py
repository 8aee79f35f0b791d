"""Memory budgets: refuse an engine before anything is allocated, never after.

On a Jetson CPU and GPU share one DRAM, so every allocation is first reserved by name from the
manifest's prediction; a reservation over its pool's budget raises OutOfMemoryError and leaves
the ledger as it was. ROS-free and thread-safe; see docs/design.md.
"""

from dataclasses import dataclass
import numbers
import threading
from typing import Dict, Mapping, Tuple

from gps_denied_inference.artifacts.manifest import Manifest
from gps_denied_inference.errors import OutOfMemoryError

POOLS = ('GPU', 'host')


def _byte_count(what: str, value: object) -> int:
    """`value` as an int >= 0; ValueError naming `what` otherwise (bools are not counts)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f'{what} must be an integer number of bytes >= 0, got {value!r}')
    return int(value)


def _reservation_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f'a reservation name must be a non-empty string, got {name!r}')
    return name


class MemoryLedger:
    """What is resident in one pool ('GPU' or 'host') against its budget, by name."""

    def __init__(self, pool: str, budget_bytes: int) -> None:
        if pool not in POOLS:
            raise ValueError(f'memory pool must be one of {", ".join(POOLS)}, got {pool!r}')
        self.pool = pool
        self._budget = _byte_count(f'{pool} budget', budget_bytes)
        self._reservations: Dict[str, int] = {}
        self._resident = 0
        self._lock = threading.Lock()

    def reserve(self, name: str, nbytes: int) -> None:
        """Record `nbytes` under `name`, or raise OutOfMemoryError and change nothing."""
        name = _reservation_name(name)
        nbytes = _byte_count(f'{self.pool} reservation {name!r}', nbytes)
        with self._lock:
            self._refuse_unless_fits_locked(name, nbytes)
            self._commit_locked(name, nbytes)

    def release(self, name: str) -> int:
        """Forget `name`'s reservation; returns the bytes freed (0 if it held none)."""
        with self._lock:
            return self._release_locked(name)

    @property
    def resident_bytes(self) -> int:
        """Bytes reserved right now."""
        with self._lock:
            return self._resident

    @property
    def budget_bytes(self) -> int:
        """The pool's budget."""
        return self._budget

    @property
    def available_bytes(self) -> int:
        """Bytes that can still be reserved."""
        with self._lock:
            return self._budget - self._resident

    def reservations(self) -> Dict[str, int]:
        """A copy of every reservation, name -> bytes, in the order they were made."""
        with self._lock:
            return dict(self._reservations)

    def _refuse_unless_fits_locked(self, name: str, nbytes: int) -> None:
        if name in self._reservations:
            raise ValueError(f'{self.pool} memory: {name!r} is already reserved '
                             f'({self._reservations[name]} B); release it first')
        if self._resident + nbytes > self._budget:
            raise OutOfMemoryError(self.pool, name, nbytes, self._resident, self._budget)

    def _commit_locked(self, name: str, nbytes: int) -> None:
        self._reservations[name] = nbytes
        self._resident += nbytes

    def _release_locked(self, name: str) -> int:
        freed = self._reservations.pop(name, 0)
        self._resident -= freed
        return freed


@dataclass(frozen=True)
class MemoryNeed:
    """Bytes one reservation needs in each pool."""

    gpu_bytes: int = 0
    host_bytes: int = 0

    def __post_init__(self) -> None:
        _byte_count('MemoryNeed.gpu_bytes', self.gpu_bytes)
        _byte_count('MemoryNeed.host_bytes', self.host_bytes)

    def __add__(self, other: 'MemoryNeed') -> 'MemoryNeed':
        """Both needs together, pool by pool."""
        return MemoryNeed(self.gpu_bytes + other.gpu_bytes, self.host_bytes + other.host_bytes)


@dataclass(frozen=True)
class PoolSnapshot:
    """One pool at one instant, for diagnostics."""

    pool: str
    budget_bytes: int
    resident_bytes: int
    reservations: Tuple[Tuple[str, int], ...]

    @property
    def available_bytes(self) -> int:
        """Bytes that could still be reserved at that instant."""
        return self.budget_bytes - self.resident_bytes


@dataclass(frozen=True)
class MemorySnapshot:
    """Both pools taken under one lock, so the numbers agree with each other."""

    gpu: PoolSnapshot
    host: PoolSnapshot


class MemoryBudget:
    """A GPU and a host ledger whose reservations are all-or-nothing across both pools.

    Locks are always taken in one order (budget, GPU, host), so concurrent callers of the
    budget and of either ledger directly cannot deadlock. A name whose need is zero in a pool
    is not entered in that pool's ledger, so each ledger lists only real bytes.
    """

    def __init__(self, gpu_budget_bytes: int, host_budget_bytes: int) -> None:
        self.gpu = MemoryLedger('GPU', gpu_budget_bytes)
        self.host = MemoryLedger('host', host_budget_bytes)
        self._needs: Dict[str, MemoryNeed] = {}
        self._lock = threading.Lock()

    def reserve(self, name: str, need: MemoryNeed) -> None:
        """Reserve `need` under `name` in both pools, or in neither (OutOfMemoryError)."""
        self.reserve_all({name: need})

    def reserve_all(self, needs: Mapping[str, MemoryNeed]) -> None:
        """Reserve every name's need, or none of them.

        A refusal names every requested name joined by '+', with the total requested from the
        refusing pool, so the message says what did not fit, not just the last straw.
        """
        items = [(_reservation_name(name), need) for name, need in needs.items()]
        for name, need in items:
            if not isinstance(need, MemoryNeed):
                raise ValueError(f'reservation {name!r}: expected a MemoryNeed, '
                                 f'got {type(need).__name__}')
        if not items:
            return
        label = '+'.join(name for name, _ in items)
        with self._lock, self.gpu._lock, self.host._lock:
            for name, _ in items:
                if name in self._needs:
                    raise ValueError(f'memory budget: {name!r} is already reserved '
                                     f'({self._needs[name]}); release it first')
            for ledger, attr in ((self.gpu, 'gpu_bytes'), (self.host, 'host_bytes')):
                entries = [(name, getattr(need, attr)) for name, need in items
                           if getattr(need, attr) > 0]
                for name, _ in entries:
                    if name in ledger._reservations:
                        raise ValueError(f'{ledger.pool} memory: {name!r} is already '
                                         'reserved in the ledger directly; release it first')
                requested = sum(nbytes for _, nbytes in entries)
                if ledger._resident + requested > ledger._budget:
                    raise OutOfMemoryError(ledger.pool, label, requested, ledger._resident,
                                           ledger._budget)
            for name, need in items:
                if need.gpu_bytes > 0:
                    self.gpu._commit_locked(name, need.gpu_bytes)
                if need.host_bytes > 0:
                    self.host._commit_locked(name, need.host_bytes)
                self._needs[name] = need

    def release(self, name: str) -> None:
        """Release `name` from both pools; releasing an unknown name does nothing."""
        with self._lock, self.gpu._lock, self.host._lock:
            self._needs.pop(name, None)
            self.gpu._release_locked(name)
            self.host._release_locked(name)

    def is_empty(self) -> bool:
        """True when nothing is reserved in either pool."""
        with self._lock, self.gpu._lock, self.host._lock:
            return not (self._needs or self.gpu._reservations or self.host._reservations)

    def snapshot(self) -> MemorySnapshot:
        """Resident, budget and reservations of both pools, consistent with each other."""
        with self._lock, self.gpu._lock, self.host._lock:
            return MemorySnapshot(
                gpu=PoolSnapshot('GPU', self.gpu._budget, self.gpu._resident,
                                 tuple(self.gpu._reservations.items())),
                host=PoolSnapshot('host', self.host._budget, self.host._resident,
                                  tuple(self.host._reservations.items())))


def weights_need(manifest: Manifest, on_gpu: bool) -> MemoryNeed:
    """The engine's weights (~ its serialized size), resident where the engine runs."""
    weights = manifest.memory.weights_bytes
    return MemoryNeed(gpu_bytes=weights) if on_gpu else MemoryNeed(host_bytes=weights)


def execution_need(manifest: Manifest, on_gpu: bool) -> MemoryNeed:
    """Activations and I/O buffers; on a GPU the I/O is also staged in page-locked host memory."""
    memory = manifest.memory
    if on_gpu:
        return MemoryNeed(gpu_bytes=memory.activation_bytes + memory.io_buffer_bytes,
                          host_bytes=memory.io_buffer_bytes)
    return MemoryNeed(host_bytes=memory.activation_bytes + memory.io_buffer_bytes)


# What the model worker holds besides the runtime's own buffers (node/model_worker.py): prepared
# inputs, one waiting in the mailbox while the callback prepares the next; and results, one
# frame's outputs being published while the next waits in the handoff.
INPUTS_IN_FLIGHT = 2
RESULTS_IN_FLIGHT = 2


def in_flight_need(manifest: Manifest) -> MemoryNeed:
    """Host copies of the inputs and outputs in flight outside the runtime's buffers."""
    return MemoryNeed(host_bytes=(
        INPUTS_IN_FLIGHT * sum(t.max_nbytes for t in manifest.inputs)
        + RESULTS_IN_FLIGHT * sum(t.max_nbytes for t in manifest.outputs)))
