"""A week of room counts for the sample registry, written straight into a SQLite store and
run through the detector's batch: the data every web test reads."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher

from detector.batch import run_batch
from devkit.simulation import RoomSchedule
from privacy.export import export_release
from privacy.ledger import Ledger
from privacy.release import build_release
from softplace.registry import Registry, load_registry
from softplace.schema import RoomCountField, SensorHealthField, SeriesName
from softplace.storage.base import Sample, Store
from softplace.storage.sqlite import SqliteStore
from softplace.timeutil import MS_PER_DAY, datetime_to_ms
from softplace_cli.settings import Settings, load_settings
from web.users import Role, UserStore

SITE = "branch-lyon-part-dieu"
# the first and last local days written (a Monday to a Sunday)
FIRST = dt.date(2026, 11, 16)
LAST = dt.date(2026, 11, 22)
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)  # the clock the app is given
# releases cover whole past months at the default error rule: exported once November is over
MONTH_AFTER = dt.date(2026, 12, 1)
STEP = dt.timedelta(minutes=10)
PASSWORD = "correct horse battery"
# argon2id at its lowest cost: the tests check the scheme, not its strength
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
USERS = {role: f"{role.value.replace('_', '-')}-1" for role in Role}


@dataclass(frozen=True, slots=True)
class WebData:
    settings: Settings
    registry: Registry
    config: Path
    store_path: Path


def write_week(store: Store, registry: Registry) -> None:
    start = dt.datetime.combine(FIRST, dt.time(0), registry.site(SITE).tz)
    end = dt.datetime.combine(LAST + dt.timedelta(days=1), dt.time(0), registry.site(SITE).tz)
    samples: list[Sample] = []
    for placed in registry.site(SITE).placed_rooms():
        if not placed.room.devices:
            continue
        schedule = RoomSchedule(placed)
        when = start
        while when < end:
            samples.append(Sample(
                SeriesName.ROOM_COUNT, placed.tags,
                {RoomCountField.COUNT: schedule.count_at(when), RoomCountField.SOURCES: 1},
                datetime_to_ms(when),
            ))
            when += STEP
        for i, device in enumerate(placed.room.devices):
            samples.append(Sample(
                SeriesName.SENSOR_HEALTH, {"site": SITE, "device": device, "room": placed.room.id},
                {SensorHealthField.ONLINE: 1, SensorHealthField.BATTERY_PCT: 80.0 - i,
                 SensorHealthField.LAST_SEEN: end.timestamp()},
                datetime_to_ms(end) - 1,
            ))
    store.write(samples)
    run_batch(store, registry, SITE, FIRST, LAST + dt.timedelta(days=1))
    store.write(live_now(registry))


LIVE_COUNTS = {"hall": 6, "counter-1": 1, "counter-2": 0, "office-1": 1, "office-2": 0,
               "meeting-a": 4, "meeting-b": 0, "coworking": 3}  # office-3: silent
OFFLINE = "lyon-meeting-b"  # reports offline after its last reading: the room is unknown


def live_now(registry: Registry) -> list[Sample]:
    """Readings a few minutes before ``NOW`` (after the report's period), for the live view."""
    now_ms = datetime_to_ms(NOW)
    samples = [
        Sample(SeriesName.ROOM_COUNT, registry.site(SITE).room(room).tags,
               {RoomCountField.COUNT: count, RoomCountField.SOURCES: 1}, now_ms - 240_000)
        for room, count in LIVE_COUNTS.items()
    ]
    samples.append(Sample(
        SeriesName.SENSOR_HEALTH, {"site": SITE, "device": OFFLINE, "room": "meeting-b"},
        {SensorHealthField.ONLINE: 0}, now_ms - 60_000,
    ))
    return samples


RELEASE_FOLDER = "2026-w47"


def make_release(settings: Settings, registry: Registry, store_path: Path) -> Path:
    """One regulator release of the week, exported as ``softplace export`` does."""
    privacy = settings.privacy
    start_ms = datetime_to_ms(dt.datetime.combine(FIRST, dt.time(0), dt.UTC)) - 2 * MS_PER_DAY
    end_ms = datetime_to_ms(dt.datetime.combine(LAST, dt.time(0), dt.UTC)) + 2 * MS_PER_DAY
    store = SqliteStore(store_path)
    try:
        with Ledger(privacy.ledger_path, privacy.budgets) as ledger:
            release = build_release(
                registry, privacy, ledger, recipient="regulator", start=FIRST,
                end=LAST + dt.timedelta(days=1),
                measures=store.query(SeriesName.ROOM_MEASURE, start_ms, end_ms),
                breaches=store.query(SeriesName.BREACH, start_ms, end_ms),
                now_ms=datetime_to_ms(NOW), today=MONTH_AFTER,
            )
    finally:
        store.close()
    export_release(release, settings.web.releases_dir / RELEASE_FOLDER)
    return settings.web.releases_dir / RELEASE_FOLDER


def make_web_data(folder: Path, *, extra: str = "") -> WebData:
    """A settings file (plain-HTTP cookies, fast polling), a store with a week in it, and
    one account per role."""
    store_path = folder / "store.sqlite"
    config = folder / "softplace.yaml"
    config.write_text(
        "storage:\n  backend: sqlite\n"
        f"  sqlite_path: {store_path}\n"
        f"privacy:\n  ledger_path: {folder / 'ledger.sqlite'}\n"
        f"web:\n  secure_cookies: false\n  live_poll_s: 1\n  releases_dir: {folder / 'release'}\n"
        + extra,
        encoding="utf-8",
    )
    settings = load_settings(config, environ={})
    registry = load_registry(settings.registry)
    store = SqliteStore(store_path)
    try:
        write_week(store, registry)
    finally:
        store.close()
    make_release(settings, registry, store_path)
    with UserStore(folder / "web-users.sqlite", CHEAP_HASHER) as users:
        for role, name in USERS.items():
            users.add(name, role, PASSWORD)
    return WebData(settings, registry, config, store_path)
