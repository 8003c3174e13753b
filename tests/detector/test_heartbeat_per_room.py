"""The heartbeat is the room's (or its sensor kind's), not one global setting: an hourly
source and a minutely one each get theirs."""

from __future__ import annotations

import datetime as dt

import pytest

from detector.batch import run_site_batch
from detector.core import room_heartbeat_s
from detector.intervals import State
from detector.settings import DetectorSettings
from softplace.errors import ConfigError
from softplace.registry import parse_registry
from softplace.storage.sqlite import SqliteStore
from tests.detector.helpers import LONDON, REGISTRY_YAML, count_samples

HOURLY = REGISTRY_YAML.replace(
    "    timezone: Europe/London\n    opening_hours:\n      mon: [\"09:00-17:00\"]",
    "    timezone: Europe/London\n    sensor_kinds:\n      scraped: {heartbeat_s: 3900}\n"
    "    opening_hours:\n      mon: [\"09:00-17:00\"]", 1,
).replace("capacity: 4, devices: [dev-meet]}", "capacity: 4, devices: [dev-meet],"
          " sensor_kind: scraped}")


def test_heartbeat_room_kind_then_default() -> None:
    site = parse_registry(HOURLY).site("s1")
    settings = DetectorSettings(heartbeat_s=900)
    assert room_heartbeat_s(site.room("meet"), settings) == 3900
    assert room_heartbeat_s(site.room("office"), settings) == 900


def test_heartbeat_unknown_sensor_kind_names_the_room_line() -> None:
    text = HOURLY.replace("sensor_kind: scraped}", "sensor_kind: scrapped}")
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "scrapped" in t)
    with pytest.raises(ConfigError, match=rf"r.yaml:{line}: .*sensor kind 'scrapped' is not"):
        parse_registry(text, "r.yaml")


def test_heartbeat_hourly_room_stays_known_between_readings(sqlite_store: SqliteStore) -> None:
    site = parse_registry(HOURLY).site("s1")
    monday = dt.date(2024, 3, 4)
    start_ms = int(dt.datetime.combine(monday, dt.time(), LONDON).timestamp() * 1000)
    hourly = [(start_ms + h * 3_600_000, 0) for h in range(-2, 26)]
    for room in ("meet", "office"):
        sqlite_store.write(count_samples(site, room, hourly))
    result = run_site_batch(sqlite_store, site, monday, monday + dt.timedelta(days=1),
                            settings=DetectorSettings(heartbeat_s=900), write=False)

    def hours(room: str, state: State) -> float:
        return sum(i.end_ms - i.start_ms for i in result.intervals
                   if i.room == room and i.state is state) / 3_600_000

    assert hours("meet", State.VACANT) == pytest.approx(24)
    assert hours("office", State.VACANT) == pytest.approx(24 * 900 / 3600)
    assert hours("office", State.UNKNOWN) == pytest.approx(24 * 2700 / 3600)
