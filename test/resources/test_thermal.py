"""Thermal zones read from fake sysfs trees, levels at the thresholds, the polling thread."""

import threading
import time

import pytest
from sysfs import (
    desktop_tree,
    make_zone,
    older_jetson_tree,
    orin_tree,
    set_temp,
    SOC_TRIPS,
)

from gps_denied_inference.errors import ConfigError
from gps_denied_inference.resources.thermal import (
    level_for,
    ThermalConfig,
    ThermalLevel,
    ThermalState,
    ThermalStatePublisher,
    ThermalZoneReader,
)

OK, WARN, CRITICAL = ThermalLevel.OK, ThermalLevel.WARN, ThermalLevel.CRITICAL
# The thread tests poll every 10 ms, so the default limit (three periods) would hand out a
# snapshot as stale after a 30 ms stall of the test process; staleness itself is tested with
# an injected clock.
STALE_AFTER_S = 60.0


def read(root, **config):
    return ThermalZoneReader(ThermalConfig(root=str(root), **config)).read()


def by_name(state):
    return {zone.name: zone for zone in state.zones}


def wait_until(predicate, timeout_s=10.0):
    """Poll until predicate() is true; a bound for a stuck thread, not a timing assertion."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, 'condition not reached'
        time.sleep(0.005)


def publisher_threads():
    return [t for t in threading.enumerate() if t.name == 'thermal-publisher']


def test_an_orin_reads_every_online_zone_in_degrees_with_friendly_names(tmp_path):
    state = read(orin_tree(tmp_path))
    assert state.is_telemetry_available and state.reason == ''
    assert [z.name for z in state.zones] == ['cpu', 'gpu', 'soc0', 'soc1', 'soc2', 'tj']
    zones = by_name(state)
    assert (zones['gpu'].temp_c, zones['gpu'].raw_type, zones['gpu'].zone) == (
        47.312, 'gpu-thermal', 'thermal_zone1')
    assert zones['tj'].zone == 'thermal_zone8'
    assert state.hottest.temp_c == 48.5 and state.hottest.name in ('cpu', 'tj')
    assert state.level == OK


def test_orin_thresholds_come_from_its_trips_and_ignore_disabled_and_fan_trips(tmp_path):
    zones = by_name(read(orin_tree(tmp_path), warn_c=70.0, critical_c=80.0))
    cpu = zones['cpu']
    assert (cpu.warn_c, cpu.critical_c, cpu.thresholds_from) == (99.0, 104.5, 'trip_points')
    tj = zones['tj']  # only active (fan) trips: configuration decides
    assert (tj.warn_c, tj.critical_c, tj.thresholds_from) == (70.0, 80.0, 'config')


@pytest.mark.parametrize('temp_mc,level', [
    (98999, OK), (99000, WARN), (104499, WARN), (104500, CRITICAL), (120000, CRITICAL),
])
def test_the_level_changes_exactly_at_the_board_trip_points(tmp_path, temp_mc, level):
    orin_tree(tmp_path)
    set_temp(tmp_path, 0, temp_mc)
    state = read(tmp_path)
    assert by_name(state)['cpu'].level == level
    assert state.level == level  # the worst zone decides
    assert state.hottest.name == 'cpu' or temp_mc < 48500


@pytest.mark.parametrize('temp_mc,level', [
    (79999, OK), (80000, WARN), (89999, WARN), (90000, CRITICAL),
])
def test_without_trips_the_configured_thresholds_decide(tmp_path, temp_mc, level):
    make_zone(tmp_path, 0, 'x86_pkg_temp', temp_mc)
    zone = read(tmp_path, warn_c=80.0, critical_c=90.0).zones[0]
    assert (zone.warn_c, zone.critical_c, zone.thresholds_from) == (80.0, 90.0, 'config')
    assert zone.level == level


def test_the_worst_zone_sets_the_board_level(tmp_path):
    orin_tree(tmp_path)
    set_temp(tmp_path, 5, 100000)  # soc0 past its passive trip
    state = read(tmp_path)
    assert by_name(state)['soc0'].level == WARN and by_name(state)['cpu'].level == OK
    assert state.level == WARN and state.hottest.name == 'soc0'
    set_temp(tmp_path, 8, 96000)  # tj past the configured critical (95 C)
    assert read(tmp_path).level == CRITICAL


@pytest.mark.parametrize('trips,warn_c,critical_c,source', [
    ((('critical', 187000),), 85.0, 95.0, 'config'),
    ((('critical', 0), ('passive', -5000)), 85.0, 95.0, 'config'),
    ((('critical', 150001), ('hot', 151000)), 85.0, 95.0, 'config'),
    ((('critical', 150000),), 140.0, 150.0, 'trip_points'),
    ((('critical', 100000),), 90.0, 100.0, 'trip_points'),  # warn keeps the config margin
    ((('passive', 70000),), 70.0, 80.0, 'trip_points'),
    ((('hot', 88000), ('passive', 92000), ('critical', 97000), ('critical', 99000)),
     88.0, 97.0, 'trip_points'),
    ((('passive', 99000), ('critical', 97000)), 97.0, 97.0, 'trip_points'),  # warn <= critical
    ((('active', 50000), ('active', 60000)), 85.0, 95.0, 'config'),
    ((('bogus', 60000),), 85.0, 95.0, 'config'),
])
def test_trip_points_are_used_only_when_plausible(tmp_path, trips, warn_c, critical_c, source):
    make_zone(tmp_path, 0, 'cpu-thermal', 40000, trips)
    zone = read(tmp_path).zones[0]
    assert (zone.warn_c, zone.critical_c, zone.thresholds_from) == (warn_c, critical_c, source)


def test_unreadable_trip_files_are_skipped(tmp_path):
    zone = make_zone(tmp_path, 0, 'cpu-thermal', 40000, SOC_TRIPS)
    (zone / 'trip_point_0_temp').write_text('not a number\n')
    (zone / 'trip_point_1_temp').unlink()
    (zone / 'trip_point_3_type').write_text('passive\n')  # no matching _temp
    assert read(tmp_path).zones[0].thresholds_from == 'config'


@pytest.mark.parametrize('temp', [
    -256000, -40000, '', 'N/A\n', '48.5\n', None, '-\n', 200001, '99999999999999999999999\n',
])
def test_offline_unreadable_or_odd_sensors_are_skipped(tmp_path, temp):
    make_zone(tmp_path, 0, 'cv0-thermal', temp)
    make_zone(tmp_path, 1, 'gpu-thermal', 41000)
    state = read(tmp_path)
    assert [z.name for z in state.zones] == ['gpu']


def test_a_temp_that_is_a_directory_is_skipped_not_raised(tmp_path):
    zone = make_zone(tmp_path, 0, 'cpu-thermal', None)
    (zone / 'temp').mkdir()
    assert not read(tmp_path).is_telemetry_available


@pytest.mark.parametrize('temp_mc', [-39999, 0, 150000, 200000])
def test_every_plausible_temperature_is_a_reading(tmp_path, temp_mc):
    make_zone(tmp_path, 0, 'cpu-thermal', temp_mc)
    assert read(tmp_path).zones[0].temp_c == temp_mc / 1000


@pytest.mark.parametrize('make', [desktop_tree, lambda root: root / 'missing'])
def test_a_desktop_without_zones_is_unavailable_never_a_crash(tmp_path, make):
    root = make(tmp_path)
    state = read(root)
    assert state == ThermalState.unavailable(f'no thermal zones under {root}')
    assert (state.level, state.zones, state.hottest) == (OK, (), None)


def test_zones_that_are_all_offline_leave_telemetry_unavailable_with_the_count(tmp_path):
    for index in range(3):
        make_zone(tmp_path, index, f'cv{index}-thermal', -256000)
    state = read(tmp_path)
    assert not state.is_telemetry_available
    assert state.reason == (f'no thermal zones under {tmp_path} report a usable temperature '
                            '(3 offline or unreadable)')


def test_older_jetson_zone_names_are_known_and_raw_types_kept(tmp_path):
    state = read(older_jetson_tree(tmp_path))
    assert [(z.name, z.raw_type) for z in state.zones] == [
        ('ao', 'AO-therm'), ('cpu', 'CPU-therm'), ('gpu', 'GPU-therm'), ('pll', 'PLL-therm'),
        ('pmic', 'PMIC-Die'), ('tdiode', 'Tdiode_tegra'), ('fan_est', 'thermal-fan-est')]
    assert state.hottest.name == 'pmic'


def test_unknown_and_repeated_zone_types_get_unique_names_in_zone_order(tmp_path):
    make_zone(tmp_path, 10, 'acpitz', 30000)
    make_zone(tmp_path, 2, 'acpitz', 31000)
    make_zone(tmp_path, 9, 'x86_pkg_temp', 45000)
    make_zone(tmp_path, 3, 'iwlwifi_1', 35000)
    make_zone(tmp_path, 4, None, 36000)
    names = [z.name for z in read(tmp_path).zones]
    assert names == ['acpitz_2', 'iwlwifi_1', 'thermal_zone4', 'x86_pkg_temp', 'acpitz_10']


@pytest.mark.parametrize('temp_c,level', [
    (84.9, OK), (85.0, WARN), (94.99, WARN), (95.0, CRITICAL), (-10.0, OK),
])
def test_level_for_is_inclusive_at_each_threshold(temp_c, level):
    assert level_for(temp_c, 85.0, 95.0) == level


def test_a_publisher_before_its_first_read_is_unavailable(tmp_path):
    publisher = ThermalStatePublisher(ThermalZoneReader(ThermalConfig(str(orin_tree(tmp_path)))),
                                      1.0)
    assert publisher.latest() == ThermalState.unavailable('not started')
    assert publisher.reads == 0 and not publisher.is_running
    publisher.stop()  # stopping a publisher that never started is harmless


def test_refresh_reads_now_on_the_callers_thread(tmp_path):
    orin_tree(tmp_path)
    publisher = ThermalStatePublisher(ThermalZoneReader(ThermalConfig(str(tmp_path))), 60.0)
    assert publisher.refresh().is_telemetry_available
    set_temp(tmp_path, 0, 104500)
    assert publisher.refresh().level == CRITICAL
    assert publisher.latest().level == CRITICAL and publisher.reads == 2


def test_the_publisher_thread_starts_updates_and_stops_cleanly(tmp_path):
    orin_tree(tmp_path)
    publisher = ThermalStatePublisher(ThermalZoneReader(ThermalConfig(str(tmp_path))), 0.01,
                                      stale_after_s=STALE_AFTER_S)
    before = len(publisher_threads())
    publisher.start()
    publisher.start()  # idempotent: still one thread
    assert len(publisher_threads()) == before + 1 and publisher.is_running
    wait_until(lambda: publisher.latest().is_telemetry_available)
    assert publisher.latest().level == OK
    set_temp(tmp_path, 1, 99500)
    wait_until(lambda: publisher.latest().level == WARN)
    assert by_name(publisher.latest())['gpu'].temp_c == 99.5
    reads = publisher.reads
    wait_until(lambda: publisher.reads > reads + 2)  # it keeps polling
    publisher.stop()
    publisher.stop()
    assert not publisher.is_running and len(publisher_threads()) == before
    stopped_at = publisher.reads
    time.sleep(0.05)
    assert publisher.reads == stopped_at


def test_the_publisher_is_a_context_manager_and_can_start_again(tmp_path):
    orin_tree(tmp_path)
    publisher = ThermalStatePublisher(ThermalZoneReader(ThermalConfig(str(tmp_path))), 0.01,
                                      stale_after_s=STALE_AFTER_S)
    before = len(publisher_threads())
    with publisher as running:
        assert running is publisher and publisher.is_running
        wait_until(lambda: publisher.reads > 0)
    assert not publisher.is_running
    publisher.start()
    reads = publisher.reads
    wait_until(lambda: publisher.reads > reads)
    publisher.stop()
    assert not publisher.is_running and len(publisher_threads()) == before


class FlakyReader(ThermalZoneReader):
    """A real reader that raises on chosen calls, as a broken driver might."""

    def __init__(self, config, failing_calls):
        super().__init__(config)
        self.failing_calls = set(failing_calls)
        self.calls = 0

    def read(self):
        self.calls += 1
        if self.calls in self.failing_calls:
            raise RuntimeError(f'sensor bus error on read {self.calls}')
        return super().read()


def test_a_failing_read_is_recorded_and_the_poller_keeps_going(tmp_path, caplog):
    orin_tree(tmp_path)
    reader = FlakyReader(ThermalConfig(str(tmp_path)), failing_calls={1})
    publisher = ThermalStatePublisher(reader, 60.0)
    state = publisher.refresh()
    assert state == ThermalState.unavailable(
        'thermal read failed: RuntimeError: sensor bus error on read 1')
    assert 'thermal read failed' in caplog.text
    assert publisher.refresh().is_telemetry_available


def test_a_publisher_thread_survives_failing_reads(tmp_path):
    orin_tree(tmp_path)
    reader = FlakyReader(ThermalConfig(str(tmp_path)), failing_calls={1, 2, 3})
    with ThermalStatePublisher(reader, 0.01, stale_after_s=STALE_AFTER_S) as publisher:
        wait_until(lambda: publisher.latest().is_telemetry_available)
        assert publisher.is_running and reader.calls >= 4


def test_a_stale_snapshot_is_handed_out_as_unavailable(tmp_path):
    orin_tree(tmp_path)
    now = [1000.0]
    publisher = ThermalStatePublisher(ThermalZoneReader(ThermalConfig(str(tmp_path))), 1.0,
                                      clock=lambda: now[0])
    assert publisher.stale_after_s == 3.0
    publisher.refresh()
    now[0] += 3.0
    assert publisher.latest().is_telemetry_available
    now[0] += 0.5
    stale = publisher.latest()
    assert not stale.is_telemetry_available
    assert stale.reason == ('last thermal reading is 3.5 s old (limit 3.0 s): publisher '
                            'stopped or stalled')
    publisher.refresh()
    assert publisher.latest().is_telemetry_available


@pytest.mark.parametrize('period_s,stale_after_s', [
    (0, None), (-1.0, None), (float('nan'), None), ('1', None), (1.0, 0.0),
    (1.0, float('inf')),
])
def test_a_publisher_needs_a_positive_period(tmp_path, period_s, stale_after_s):
    reader = ThermalZoneReader(ThermalConfig(str(tmp_path)))
    with pytest.raises(ValueError, match='must be a finite number > 0'):
        ThermalStatePublisher(reader, period_s, stale_after_s=stale_after_s)


def test_the_live_thermal_root_of_this_machine_is_read_without_error():
    state = ThermalZoneReader(ThermalConfig()).read()
    assert state.is_telemetry_available == bool(state.zones)
    assert state.is_telemetry_available or state.reason.startswith(
        'no thermal zones under /sys/class/thermal')


@pytest.mark.parametrize('field,value', [
    ('warn_c', -1.0), ('critical_c', 50.0), ('throttle', 'yes'), ('poll_period_s', 0),
    ('root', ''),
])
def test_thermal_config_refuses_bad_values(field, value):
    with pytest.raises(ConfigError, match=field):
        ThermalConfig(**{field: value})
