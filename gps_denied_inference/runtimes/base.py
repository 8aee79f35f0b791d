"""What every strategy shares: options, gated load prelude, handle registry, budget, thermal.

Each strategy keeps only what is specific to its library; the rules that make a strategy
safe to fly (gate before reading, one handle per name, foreign or released handles refused,
reservations given back) live here once.
"""

import threading
from typing import Any, Dict, Optional, Tuple, TYPE_CHECKING

from gps_denied_inference.artifacts.gate import EngineGate, GateExpectation
from gps_denied_inference.artifacts.manifest import Manifest
from gps_denied_inference.errors import ConfigError, InferenceError
from gps_denied_inference.runtimes.settings import RuntimeConfig

if TYPE_CHECKING:
    from gps_denied_inference.resources.budget import MemoryBudget, MemoryNeed
    from gps_denied_inference.resources.thermal import ThermalState, ThermalStatePublisher


class RuntimeBase:
    """Base of OnnxRuntimeRuntime and TensorrtRuntime; subclasses set the class attributes."""

    LABEL = ''
    OPTIONS: Tuple[str, ...] = ()
    HANDLE_TYPE: type = object
    HANDLE_DESCRIPTION = ''

    def __init__(self, *, config: RuntimeConfig, budget: Optional['MemoryBudget'] = None,
                 thermal: Optional['ThermalStatePublisher'] = None,
                 gate: Optional[EngineGate] = None, **options: Any) -> None:
        unknown = sorted(set(options) - set(self.OPTIONS))
        if unknown:
            raise ConfigError(f'{type(self).__name__} options {unknown} are unknown: expected '
                              f'some of {", ".join(self.OPTIONS)}')
        self.config = config
        self._budget = budget
        self._thermal = thermal
        self._gate = gate or EngineGate()
        self._lock = threading.Lock()
        self._handles: Dict[str, Any] = {}

    def thermal_state(self) -> 'ThermalState':
        """The thermal publisher's latest snapshot, or 'unavailable' without one."""
        if self._thermal is not None:
            return self._thermal.latest()
        from gps_denied_inference.resources.thermal import ThermalState
        return ThermalState.unavailable('no thermal publisher')

    def _gated_bytes(self, name: str, path: str,
                     expected: GateExpectation) -> Tuple[Manifest, bytes]:
        """Gate the artifact, refuse a second engine of the same name, read the gated bytes."""
        if expected.runtime != self.LABEL:
            raise ConfigError(f'model {name}: the {self.LABEL} strategy cannot load a '
                              f'{expected.runtime!r} artifact ({path})')
        manifest, data = self._gate.admit(path, expected)
        with self._lock:
            if name in self._handles:
                raise ConfigError(f'model {name}: an engine of that name is already loaded '
                                  f'({self._handles[name].path})')
        return manifest, data

    def _register(self, handle: Any) -> None:
        with self._lock:
            if handle.name in self._handles:
                raise ConfigError(f'model {handle.name}: loaded concurrently by another caller')
            self._handles[handle.name] = handle

    def _forget(self, handle: Any) -> None:
        """Drop the handle from the registry and give back both of its reservations."""
        with self._lock:
            if self._handles.get(handle.name) is handle:
                del self._handles[handle.name]
        self._release(f'{handle.name}:execution')
        self._release(f'{handle.name}:weights')

    def _owned(self, handle: object) -> None:
        if not isinstance(handle, self.HANDLE_TYPE):
            raise InferenceError(f'not {self.HANDLE_DESCRIPTION}: {type(handle).__name__}')
        if handle.is_released:
            raise InferenceError(f'model {handle.name}: engine handle was released')
        with self._lock:
            if self._handles.get(handle.name) is not handle:
                raise InferenceError(f'model {handle.name}: engine handle does not belong to '
                                     'this runtime')

    def _reserve(self, key: str, need: 'MemoryNeed') -> None:
        if self._budget is not None:
            self._budget.reserve(key, need)

    def _reserve_all(self, needs: Dict[str, 'MemoryNeed']) -> None:
        if self._budget is not None:
            self._budget.reserve_all(needs)

    def _release(self, key: str) -> None:
        if self._budget is not None:
            self._budget.release(key)
