"""Fake Linux thermal sysfs trees in a test's tmp dir, laid out like real boards.

A zone is `<root>/thermal_zone<N>/` with `type`, `temp` (milli-degrees C, newline-terminated
as the kernel writes it) and `trip_point_<K>_{type,temp}`. The Orin layout follows L4T 36
(JetPack 6): nine zones, the CV clusters powered down and reporting -256 C, and a tj zone
whose only trips are fan (active) trips. Trip temperatures are representative, not a board
capture; the desktop layout has cooling devices but no thermal zone, as in many VMs.
"""

from pathlib import Path
from typing import Optional, Sequence, Tuple

Trip = Tuple[str, int]  # (type, milli-degrees C)

OFFLINE_MC = -256000
SOC_TRIPS: Sequence[Trip] = (('passive', 99000), ('critical', 104500), ('critical', 187000))
FAN_TRIPS: Sequence[Trip] = (('active', 85000), ('active', 105000))

ORIN_ZONES: Sequence[Tuple[str, int, Sequence[Trip]]] = (
    ('cpu-thermal', 48500, SOC_TRIPS),
    ('gpu-thermal', 47312, SOC_TRIPS),
    ('cv0-thermal', OFFLINE_MC, SOC_TRIPS),
    ('cv1-thermal', OFFLINE_MC, SOC_TRIPS),
    ('cv2-thermal', OFFLINE_MC, SOC_TRIPS),
    ('soc0-thermal', 46250, SOC_TRIPS),
    ('soc1-thermal', 47000, SOC_TRIPS),
    ('soc2-thermal', 45968, SOC_TRIPS),
    ('tj-thermal', 48500, FAN_TRIPS),
)

# Jetson Xavier NX / Nano style names (L4T 32-35), without trip points.
OLDER_JETSON_ZONES: Sequence[Tuple[str, int]] = (
    ('AO-therm', 38500), ('CPU-therm', 41000), ('GPU-therm', 39500), ('PLL-therm', 38000),
    ('PMIC-Die', 50000), ('Tdiode_tegra', 40750), ('thermal-fan-est', 40200),
)


def make_zone(root: Path, index: int, zone_type: Optional[str], temp: Optional[object],
              trips: Sequence[Trip] = ()) -> Path:
    """Write one zone; `temp` None leaves no temp file, a str is written verbatim."""
    zone = Path(root) / f'thermal_zone{index}'
    zone.mkdir(parents=True, exist_ok=True)
    if zone_type is not None:
        (zone / 'type').write_text(f'{zone_type}\n')
    if temp is not None:
        (zone / 'temp').write_text(temp if isinstance(temp, str) else f'{temp}\n')
    for k, (trip_type, trip_mc) in enumerate(trips):
        (zone / f'trip_point_{k}_type').write_text(f'{trip_type}\n')
        (zone / f'trip_point_{k}_temp').write_text(f'{trip_mc}\n')
    return zone


def set_temp(root: Path, index: int, temp_mc: int) -> None:
    """Change a zone's temperature the way the kernel would: the whole file at once."""
    (Path(root) / f'thermal_zone{index}' / 'temp').write_text(f'{temp_mc}\n')


def orin_tree(root: Path) -> Path:
    """A Jetson Orin (JetPack 6) thermal root."""
    for index, (zone_type, temp_mc, trips) in enumerate(ORIN_ZONES):
        make_zone(root, index, zone_type, temp_mc, trips)
    (Path(root) / 'cooling_device0').mkdir(exist_ok=True)
    return Path(root)


def older_jetson_tree(root: Path) -> Path:
    """A Xavier / Nano style thermal root with no trip points."""
    for index, (zone_type, temp_mc) in enumerate(OLDER_JETSON_ZONES):
        make_zone(root, index, zone_type, temp_mc)
    return Path(root)


def desktop_tree(root: Path) -> Path:
    """A thermal root with cooling devices and no thermal zone."""
    for index in range(2):
        (Path(root) / f'cooling_device{index}').mkdir(parents=True, exist_ok=True)
    return Path(root)
