"""Messages, topics, registry and settings: the contracts every component shares."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from devkit.simulation import RoomSchedule, split_count
from softplace import timeutil, topics
from softplace.errors import ConfigError, MessageError, UnknownSeriesError
from softplace.messages import DeviceReading, parse_message
from softplace.registry import load_registry, parse_registry
from softplace.schema import MEASURE_FIELDS, SERIES, SeriesName, series
from softplace_cli.settings import load_settings

SAMPLE = Path("softplace/samples/registry.yaml").read_text()


def test_topics_round_trip() -> None:
    parsed = topics.parse(topics.device_reading("s1", "d-1"))
    assert (parsed.site, parsed.kind, parsed.subject, parsed.leaf) == ("s1", "dev", "d-1",
                                                                       "reading")
    assert topics.shared("ingest", "a/+") == "$share/ingest/a/+"
    with pytest.raises(ValueError, match="unknown topic"):
        topics.parse("softplace/v1/s1/dev/d1/other")


def test_messages_refuse_unknown_fields_and_versions() -> None:
    with pytest.raises(MessageError) as err:
        parse_message(DeviceReading, b'{"v": 2}')
    assert err.value.reason == "unknown_schema_version"
    with pytest.raises(MessageError) as err:
        parse_message(DeviceReading, b'{"v": 1, "device": "d", "boot": 0, "seq": 0, "ts": 1,'
                                     b' "synced": true, "count": 0, "sensor": "pir", "mac": "x"}')
    assert "mac" in err.value.detail


def test_registry_error_names_file_line_and_field() -> None:
    broken = SAMPLE.replace("capacity: 10", "capacity: lots")
    with pytest.raises(ConfigError) as err:
        parse_registry(broken, "registry.yaml")
    line = SAMPLE.splitlines().index("                capacity: 10") + 1
    assert f"registry.yaml:{line}:" in str(err.value)
    assert "rooms.3.capacity" in str(err.value)


def test_registry_rejects_a_device_in_two_rooms() -> None:
    broken = SAMPLE.replace("devices: [lyon-office-2]", "devices: [lyon-office-1]")
    with pytest.raises(ConfigError, match="lyon-office-1"):
        parse_registry(broken)


def test_registry_rejects_overlapping_opening_hours_and_bad_time_zone() -> None:
    with pytest.raises(ConfigError, match="overlap"):
        parse_registry(SAMPLE.replace('"13:30-17:30"]', '"12:00-17:30"]', 1))
    with pytest.raises(ConfigError, match="time zone"):
        parse_registry(SAMPLE.replace("Europe/Paris", "Mars/Olympus", 1))


def test_registry_housing_is_excluded_from_vacancy_rules() -> None:
    flat = load_registry().site("branch-lyon-part-dieu").room("flat")
    assert not flat.room.subject_to_vacancy_rules


def test_settings_environment_overrides_file(tmp_path: Path) -> None:
    config = tmp_path / "softplace.yaml"
    config.write_text("influxdb:\n  url: http://a:8086\ningest:\n  batch_size: 10\n")
    settings = load_settings(config, {"SOFTPLACE_INFLUXDB__URL": "http://b:8086"})
    assert settings.influxdb.url == "http://b:8086"
    assert settings.ingest.batch_size == 10


def test_settings_error_names_line_and_option(tmp_path: Path) -> None:
    config = tmp_path / "softplace.yaml"
    config.write_text("mqtt:\n  url: mqtt://x\n  protocol: '4'\n")
    with pytest.raises(ConfigError, match=r"softplace.yaml:3: mqtt.protocol"):
        load_settings(config, {})
    config.write_text("mqtt:\n  ur: mqtt://x\n")
    with pytest.raises(ConfigError, match=r"softplace.yaml:2: mqtt.ur: Extra inputs"):
        load_settings(config, {})


def test_sample_settings_file_is_valid() -> None:
    settings = load_settings(Path("softplace_cli/samples/softplace.yaml"), {})
    assert settings.registry is not None and settings.registry.exists()


def test_simulation_is_repeatable_and_respects_capacity() -> None:
    import datetime as dt

    placed = load_registry().site("branch-lyon-part-dieu").room("meeting-a")
    start = dt.datetime(2026, 11, 16, 6, tzinfo=dt.UTC)
    times = [start + dt.timedelta(minutes=5 * i) for i in range(2000)]
    first_run, second_run = RoomSchedule(placed, seed=7), RoomSchedule(placed, seed=7)
    first = [first_run.count_at(t) for t in times]
    assert first == [second_run.count_at(t) for t in times]
    assert max(first) <= placed.room.capacity and 0 < sum(c > 0 for c in first) < len(first)
    assert split_count(7, 2, "sum") == [4, 3] and split_count(7, 2, "max") == [7, 7]


def test_settings_environment_null_and_foreign_variables() -> None:
    settings = load_settings(None, {"SOFTPLACE_INGEST__SHARED_GROUP": "null",
                                    "SOFTPLACE_SITE": "compose-only variable"})
    assert settings.ingest.shared_group is None
    with pytest.raises(ConfigError, match="SOFTPLACE_MQTT"):
        load_settings(None, {"SOFTPLACE_MQTT": "x", "SOFTPLACE_MQTT__URL": "mqtt://a"})


def test_dead_letter_keeps_a_bounded_prefix_of_a_huge_payload() -> None:
    from softplace.messages import DEAD_LETTER_KEEP_BYTES, DeadLetter

    junk = b"x" * 100_000
    letter = DeadLetter.of(site="s", topic="t", payload=junk, reason="malformed_json",
                           detail="d", received_at=1.0)
    assert letter.payload == junk[:DEAD_LETTER_KEEP_BYTES]
    assert letter.payload_bytes == len(junk) and len(letter.to_json()) < 4 * 1024


def test_messages_refuse_infinite_timestamps() -> None:
    from softplace.messages import RoomReading

    with pytest.raises(MessageError):
        parse_message(RoomReading, b'{"v":1,"site":"s","room":"r","ts":Infinity,"count":1,'
                                   b'"sources":1}')


def test_settings_environment_takes_json_for_maps() -> None:
    settings = load_settings(None, {"SOFTPLACE_PRIVACY__BUDGETS": '{"regulator": 2.5}'})
    assert settings.privacy.budgets == {"regulator": 2.5}


def test_schema_has_one_row_per_series_name_and_plain_string_names() -> None:
    assert list(SERIES) == list(SeriesName)
    for row in SERIES.values():
        assert type(row.name) is str
        assert all(type(name) is str for name in row.fields)


def test_schema_room_and_space_measures_share_the_smg_fields() -> None:
    for name in (SeriesName.ROOM_MEASURE, SeriesName.SPACE_MEASURE):
        fields = SERIES[name].fields
        assert {k: fields[k] for k in MEASURE_FIELDS} == MEASURE_FIELDS


def test_schema_unknown_series_raises_its_own_error() -> None:
    with pytest.raises(UnknownSeriesError, match=r"room_cuont.*known: room_count"):
        series("room_cuont")


def test_timeutil_seconds_round_to_the_nearest_millisecond() -> None:
    assert 1.001 * 1000 < 1001  # the float product floor() would take one ms early
    assert timeutil.s_to_ms(1.001) == 1001
    assert timeutil.s_to_ms(1_700_000_000.123) == 1_700_000_000_123
    assert timeutil.s_to_ms(0.0004) == 0
    assert timeutil.s_to_ms(0.0006) == 1
    assert timeutil.ms_to_s(1500) == 1.5


def test_timeutil_datetime_to_ms_is_exact_and_refuses_naive_times() -> None:
    moment = dt.datetime(2024, 3, 4, 9, 0, 0, 1_600, tzinfo=dt.UTC)
    assert timeutil.datetime_to_ms(moment) == 1_709_542_800_002
    assert timeutil.datetime_to_ms(moment.replace(microsecond=2_500)) == 1_709_542_800_002
    assert timeutil.ms_to_datetime(1_709_542_800_002, dt.UTC) == moment.replace(microsecond=2_000)
    with pytest.raises(ValueError, match="no time zone"):
        timeutil.datetime_to_ms(dt.datetime(2024, 3, 4, 9, 0))


def test_timeutil_local_date_follows_the_time_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    midnight = timeutil.datetime_to_ms(dt.datetime(2024, 3, 31, tzinfo=paris))  # DST day
    assert timeutil.local_date(midnight, paris) == dt.date(2024, 3, 31)
    assert timeutil.local_date(midnight - 1, paris) == dt.date(2024, 3, 30)
    assert timeutil.local_date(midnight, dt.UTC) == dt.date(2024, 3, 30)
