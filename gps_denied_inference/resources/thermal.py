"""How hot the board is: Linux thermal zones read into one snapshot, polled on a thread.

Reads the sysfs zones the kernel governs by, with thresholds from the board's trip points or
the configuration; offline sensors and odd values are skipped, never raised, and without a
usable zone the snapshot says telemetry is unavailable and why. ROS-free.
"""

from dataclasses import dataclass, replace
import enum
import glob
import logging
import math
import os
import re
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

from gps_denied_inference.validation import positive_number, require

_LOG = logging.getLogger(__name__)

OFFLINE_AT_OR_BELOW_C = -40.0
# No silicon survives this; a reading above it is a broken sensor, not a temperature.
IMPLAUSIBLE_ABOVE_C = 200.0
# Trip points outside (0, 150] C are placeholders (Orin lists disabled ones at 187 C).
TRIP_MAX_C = 150.0
WARN_TRIP_TYPES = ('passive', 'hot')
CRITICAL_TRIP_TYPES = ('critical',)

# sysfs zone type -> friendly name: Orin on JetPack 6 and 5, Xavier / TX2 / Nano.
KNOWN_ZONE_NAMES: Dict[str, str] = {
    'cpu-thermal': 'cpu', 'gpu-thermal': 'gpu',
    'cv0-thermal': 'cv0', 'cv1-thermal': 'cv1', 'cv2-thermal': 'cv2',
    'soc0-thermal': 'soc0', 'soc1-thermal': 'soc1', 'soc2-thermal': 'soc2',
    'tj-thermal': 'tj',
    'CPU-therm': 'cpu', 'GPU-therm': 'gpu',
    'CV0-therm': 'cv0', 'CV1-therm': 'cv1', 'CV2-therm': 'cv2',
    'SOC0-therm': 'soc0', 'SOC1-therm': 'soc1', 'SOC2-therm': 'soc2',
    'Tj-therm': 'tj', 'tj-therm': 'tj',
    'AO-therm': 'ao', 'AUX-therm': 'aux', 'PLL-therm': 'pll', 'MCPU-therm': 'mcpu',
    'BCPU-therm': 'bcpu', 'PMIC-Die': 'pmic', 'Tdiode_tegra': 'tdiode',
    'Tboard_tegra': 'tboard', 'thermal-fan-est': 'fan_est',
}


@dataclass(frozen=True)
class ThermalConfig:
    """Where thermal zones are read and when they count as hot (when the board has no trips)."""

    root: str = '/sys/class/thermal'
    warn_c: float = 85.0
    critical_c: float = 95.0
    throttle: bool = False
    poll_period_s: float = 1.0

    def __post_init__(self) -> None:
        owner = 'ThermalConfig'
        require(isinstance(self.root, str) and bool(self.root), owner, 'root', self.root,
                'a non-empty path')
        positive_number(owner, 'warn_c', self.warn_c)
        positive_number(owner, 'critical_c', self.critical_c)
        require(self.critical_c > self.warn_c, owner, 'critical_c', self.critical_c,
                f'greater than warn_c ({self.warn_c})')
        require(isinstance(self.throttle, bool), owner, 'throttle', self.throttle, 'a bool')
        positive_number(owner, 'poll_period_s', self.poll_period_s)

class ThermalLevel(enum.Enum):
    """How close the board is to throttling or shutting down."""

    OK = 'OK'
    WARN = 'WARN'
    CRITICAL = 'CRITICAL'


_SEVERITY = {ThermalLevel.OK: 0, ThermalLevel.WARN: 1, ThermalLevel.CRITICAL: 2}


def _worst(levels: List[ThermalLevel]) -> ThermalLevel:
    return max(levels, key=_SEVERITY.__getitem__, default=ThermalLevel.OK)


@dataclass(frozen=True)
class ZoneReading:
    """One online zone: temperature, its thresholds and where they came from."""

    name: str
    temp_c: float
    warn_c: float
    critical_c: float
    level: ThermalLevel
    thresholds_from: str  # 'trip_points' | 'config'
    raw_type: str = ''
    zone: str = ''


@dataclass(frozen=True)
class ThermalState:
    """One snapshot of every usable zone; `level` is the worst zone's."""

    zones: Tuple[ZoneReading, ...]
    level: ThermalLevel
    is_telemetry_available: bool
    reason: str = ''

    @property
    def hottest(self) -> Optional[ZoneReading]:
        """The zone with the highest temperature, or None without zones."""
        return max(self.zones, key=lambda z: z.temp_c, default=None)

    @classmethod
    def unavailable(cls, reason: str) -> 'ThermalState':
        """No telemetry: level OK (nothing known to be hot), no zones, and why."""
        return cls(zones=(), level=ThermalLevel.OK, is_telemetry_available=False,
                   reason=reason)


def level_for(temp_c: float, warn_c: float, critical_c: float) -> ThermalLevel:
    """CRITICAL at or above critical_c, WARN at or above warn_c, OK below."""
    if temp_c >= critical_c:
        return ThermalLevel.CRITICAL
    if temp_c >= warn_c:
        return ThermalLevel.WARN
    return ThermalLevel.OK


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path, encoding='ascii', errors='replace') as handle:
            return handle.read().strip()
    except OSError:
        return None


def _read_millidegrees(path: str) -> Optional[float]:
    text = _read_text(path)
    if text is None:
        return None
    try:
        value = int(text) / 1000.0
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _zone_number(path: str) -> int:
    match = re.search(r'(\d+)$', path)
    return int(match.group(1)) if match else -1


def _friendly_name(raw_type: str) -> str:
    if raw_type in KNOWN_ZONE_NAMES:
        return KNOWN_ZONE_NAMES[raw_type]
    return re.sub(r'[^a-z0-9]+', '_', raw_type.lower()).strip('_') or 'zone'


class ThermalZoneReader:
    """Reads `<config.root>/thermal_zone*` into a ThermalState; never raises for sysfs."""

    def __init__(self, config: ThermalConfig) -> None:
        self.config = config

    def read(self) -> ThermalState:
        """A fresh snapshot of every online zone (unavailable, with a reason, if none)."""
        root = self.config.root
        paths = sorted(glob.glob(os.path.join(glob.escape(root), 'thermal_zone*')),
                       key=_zone_number)
        if not paths:
            return ThermalState.unavailable(f'no thermal zones under {root}')
        raw = [reading for reading in (self._read_zone(path) for path in paths) if reading]
        if not raw:
            return ThermalState.unavailable(
                f'no thermal zones under {root} report a usable temperature '
                f'({len(paths)} offline or unreadable)')
        zones = tuple(_unique_names(raw))
        return ThermalState(zones=zones, level=_worst([z.level for z in zones]),
                            is_telemetry_available=True)

    def _read_zone(self, path: str) -> Optional[ZoneReading]:
        temp_c = _read_millidegrees(os.path.join(path, 'temp'))
        if temp_c is None or not OFFLINE_AT_OR_BELOW_C < temp_c <= IMPLAUSIBLE_ABOVE_C:
            return None
        raw_type = _read_text(os.path.join(path, 'type')) or os.path.basename(path)
        warn_c, critical_c, source = self._thresholds(path)
        return ZoneReading(name=_friendly_name(raw_type), temp_c=temp_c, warn_c=warn_c,
                           critical_c=critical_c,
                           level=level_for(temp_c, warn_c, critical_c),
                           thresholds_from=source, raw_type=raw_type,
                           zone=os.path.basename(path))

    def _thresholds(self, path: str) -> Tuple[float, float, str]:
        """(warn_c, critical_c, source) from the zone's usable trips, else configuration.

        With only one kind of trip, the other threshold keeps the configured margin
        (critical_c - warn_c) from it; warn never exceeds critical.
        """
        warn_trips: List[float] = []
        critical_trips: List[float] = []
        for type_path in glob.glob(os.path.join(glob.escape(path), 'trip_point_*_type')):
            kind = _read_text(type_path)
            temp_c = _read_millidegrees(type_path[:-len('_type')] + '_temp')
            if temp_c is None or not 0.0 < temp_c <= TRIP_MAX_C:
                continue
            if kind in WARN_TRIP_TYPES:
                warn_trips.append(temp_c)
            elif kind in CRITICAL_TRIP_TYPES:
                critical_trips.append(temp_c)
        margin = self.config.critical_c - self.config.warn_c
        if not warn_trips and not critical_trips:
            return self.config.warn_c, self.config.critical_c, 'config'
        critical_c = min(critical_trips) if critical_trips else min(warn_trips) + margin
        warn_c = min(warn_trips) if warn_trips else critical_c - margin
        return min(warn_c, critical_c), critical_c, 'trip_points'


def _unique_names(readings: List[ZoneReading]) -> List[ZoneReading]:
    """Zone names are diagnostic keys: a name shared by several zones gets '_<zone number>'."""
    counts: Dict[str, int] = {}
    for reading in readings:
        counts[reading.name] = counts.get(reading.name, 0) + 1
    return [reading if counts[reading.name] == 1 else
            replace(reading, name=f'{reading.name}_{_zone_number(reading.zone)}')
            for reading in readings]


class ThermalStatePublisher:
    """Polls a reader every `period_s` on a daemon thread; hands out the latest snapshot.

    A read that raises is recorded as an unavailable snapshot naming the error and polling
    goes on, so the thread never dies silently. A snapshot older than `stale_after_s`
    (default three periods) is handed out as unavailable: a stalled poller must not keep
    reporting the last, perhaps cool, reading as current.
    """

    JOIN_MARGIN_S = 2.0

    def __init__(self, reader: ThermalZoneReader, period_s: float, *,
                 stale_after_s: Optional[float] = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        for name, value in (('period_s', period_s), ('stale_after_s', stale_after_s)):
            if value is not None and not (isinstance(value, (int, float))
                                          and math.isfinite(value) and value > 0):
                raise ValueError(f'ThermalStatePublisher.{name} must be a finite number > 0, '
                                 f'got {value!r}')
        self._reader = reader
        self.period_s = float(period_s)
        self.stale_after_s = float(stale_after_s or 3.0 * self.period_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._state = ThermalState.unavailable('not started')
        self._stamp: Optional[float] = None
        self._reads = 0
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        """Start polling (the first read happens at once); a second call does nothing."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stop,),
                                            name='thermal-publisher', daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop polling and join the thread (within period_s + margin); idempotent."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is None or thread is threading.current_thread():
            return
        thread.join(self.period_s + self.JOIN_MARGIN_S)
        if thread.is_alive():
            _LOG.error('thermal publisher thread did not stop within %.1f s (a sysfs read is '
                       'hanging); it is a daemon and will not block exit',
                       self.period_s + self.JOIN_MARGIN_S)

    @property
    def is_running(self) -> bool:
        """True while the polling thread is alive."""
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    @property
    def reads(self) -> int:
        """How many snapshots have been taken (polls and refreshes)."""
        with self._lock:
            return self._reads

    def refresh(self) -> ThermalState:
        """Take a reading now (on the caller's thread), store it and return it."""
        try:
            state = self._reader.read()
        except Exception as err:  # noqa: B902 - record any failure, keep the poller alive
            _LOG.exception('thermal read failed')
            state = ThermalState.unavailable(f'thermal read failed: {type(err).__name__}: {err}')
        with self._lock:
            self._state = state
            self._stamp = self._clock()
            self._reads += 1
        return state

    def latest(self) -> ThermalState:
        """The newest snapshot; unavailable before the first read or once it is stale."""
        with self._lock:
            state, stamp = self._state, self._stamp
        if stamp is not None and state.is_telemetry_available:
            age = self._clock() - stamp
            if age > self.stale_after_s:
                return ThermalState.unavailable(
                    f'last thermal reading is {age:.1f} s old (limit {self.stale_after_s:.1f} '
                    's): publisher stopped or stalled')
        return state

    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.refresh()
            stop.wait(self.period_s)

    def __enter__(self) -> 'ThermalStatePublisher':
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
