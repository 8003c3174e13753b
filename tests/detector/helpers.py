"""Shared fixtures-as-functions for the detector tests: a small registry, time helpers."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from detector.booked import BookedUse
from detector.core import Results
from detector.intervals import Interval
from softplace.registry import Registry, Site, parse_registry
from softplace.schema import BookingField, SeriesName
from softplace.storage.base import Sample, Store
from softplace.storage.sqlite import SqliteStore

StoreT = TypeVar("StoreT", bound=Store)

LONDON = ZoneInfo("Europe/London")
MIN = 60_000
HOUR = 60 * MIN

REGISTRY_YAML = """
version: 1
sites:
  - id: s1
    district: d1
    timezone: Europe/London
    opening_hours:
      mon: ["09:00-17:00"]
      tue: ["09:00-17:00"]
      wed: ["09:00-17:00"]
      thu: ["09:00-17:00"]
      fri: ["09:00-17:00"]
    buildings:
      - id: b1
        floors:
          - id: f1
            rooms:
              - {id: meet, kind: meeting, area_m2: 20, capacity: 4, devices: [dev-meet]}
              - id: office
                kind: office
                area_m2: 10
                capacity: 2
                devices: [dev-office-a, dev-office-b]
                opening_hours:
                  mon: ["09:00-12:00", "13:00-17:00"]
                  tue: ["09:00-12:00", "13:00-17:00"]
                  wed: ["09:00-12:00", "13:00-17:00"]
                  thu: ["09:00-12:00", "13:00-17:00"]
                  fri: ["09:00-12:00", "13:00-17:00"]
          - id: f2
            rooms:
              - {id: flat, kind: housing, area_m2: 50, capacity: 3, devices: [dev-flat]}
              - {id: store, kind: storage, area_m2: 8, capacity: 1, opening_hours: {},
                 devices: [dev-store]}
  - id: always
    district: d1
    timezone: Europe/London
    opening_hours:
      mon: ["00:00-24:00"]
      tue: ["00:00-24:00"]
      wed: ["00:00-24:00"]
      thu: ["00:00-24:00"]
      fri: ["00:00-24:00"]
      sat: ["00:00-24:00"]
      sun: ["00:00-24:00"]
    buildings:
      - id: b1
        floors:
          - id: f1
            rooms:
              - {id: hall, kind: hall, area_m2: 100, capacity: 10, devices: [dev-hall]}
"""


@cache
def registry() -> Registry:
    return parse_registry(REGISTRY_YAML, "<test registry>")


def site(site_id: str = "s1") -> Site:
    return registry().site(site_id)


def at(day: dt.date, clock: str = "00:00", tz: ZoneInfo = LONDON) -> int:
    """UTC ms of a local wall-clock time on ``day``."""
    hour, minute = (int(p) for p in clock.split(":"))
    return int(dt.datetime.combine(day, dt.time(hour, minute), tz).timestamp()) * 1000


def clock(ms: int, tz: ZoneInfo = LONDON) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, tz).strftime("%H:%M")


def spans(intervals: Iterable[Interval], room: str) -> list[tuple[str, str, str]]:
    """(state, local start, local end) of a room's intervals, in time order."""
    return [
        (i.state.value, clock(i.start_ms), clock(i.end_ms))
        for i in sorted(intervals, key=lambda i: i.start_ms) if i.room == room
    ]


def count_samples(s: Site, room: str, points: Iterable[tuple[int, int]]) -> list[Sample]:
    tags = s.room(room).tags
    return [Sample("room_count", tags, {"count": c, "sources": 1}, t) for t, c in points]


def minutely(start_ms: int, end_ms: int, count_at: object) -> list[tuple[int, int]]:
    """One reading a minute; ``count_at(ms) -> int``."""
    assert callable(count_at)
    return [(t, int(count_at(t))) for t in range(start_ms, end_ms, MIN)]


def canonical(results: Results) -> tuple[list[object], list[object], list[object]]:
    """Order-independent, comparable form of detector results."""
    intervals = sorted((i.room, i.start_ms, i.end_ms, i.state.value, i.peak_count, i.count_ms)
                       for i in results.intervals)
    measures = sorted((m.room.room, m.date, m.band, m.tally.available_ms, m.tally.used_ms,
                       m.tally.vacant_ms, m.tally.unknown_ms, m.tally.person_ms,
                       m.tally.peak_count) for m in results.measures)
    breaches = sorted((b.room.room, b.start_ms, b.end_ms, b.vacant_ms, b.limit_ms)
                      for b in results.breaches)
    return list(intervals), list(measures), list(breaches)


def busy_weekdays(store: StoreT, monday: dt.date,
                  busy: Mapping[str, tuple[str, str]], days: int = 5) -> StoreT:
    """``days`` days from ``monday`` of one reading a minute per room of s1: 2 people in
    each room's busy (start, end) clock span, nobody otherwise."""
    s1 = site()
    for day in range(days):
        date = monday + dt.timedelta(days=day)
        start = at(date)
        samples: list[Sample] = []
        for room, (first, last) in busy.items():
            lo, hi = at(date, first), at(date, last)
            samples += count_samples(s1, room, [(t, 2 if lo <= t < hi else 0)
                                                for t in range(start, start + 24 * HOUR, MIN)])
        store.write(samples)
    return store


def booking_sample(day: dt.date, start: str, end: str, use: BookedUse,
                   room: str = "meet", site_id: str = "s1") -> Sample:
    """An accepted booking as the bookings stage stores it (``AHEAD``: not compared with
    the sensors yet)."""
    lo, hi = at(day, start), at(day, end)
    hours = (hi - lo) / HOUR
    return Sample(SeriesName.BOOKING, site(site_id).room(room).tags, {
        BookingField.END_MS: hi, BookingField.BOOKED_H: hours,
        BookingField.USED_H: hours if use is BookedUse.USED else 0.0,
        BookingField.CHECKED: int(use is not BookedUse.AHEAD),
        BookingField.GHOST: int(use is BookedUse.GHOST),
        BookingField.UNKNOWN: int(use is BookedUse.UNKNOWN),
    }, lo)


def scratch_store() -> SqliteStore:
    """A real SQLite store in a fresh temporary directory (no retention applied, so
    historical test data stays)."""
    return SqliteStore(Path(tempfile.mkdtemp(prefix="softplace-test-")) / "store.sqlite")
