"""Shared builders for the privacy tests: a registry, room-level samples, an in-memory Store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from zoneinfo import ZoneInfo

from softplace.registry import Registry, parse_registry
from softplace.storage.base import Sample

PARIS = ZoneInfo("Europe/Paris")
HOURS = '["08:00-12:00", "13:00-17:00"]'


OFFER = """
                offer: {name: Shared room, email: rooms@example.org}"""


def _rooms(prefix: str, n: int, area: float = 20.0, offered: bool = False) -> str:
    return "".join(
        f"""
              - id: {prefix}-{i}
                kind: office
                area_m2: {area}
                capacity: 4
                devices: [{prefix}-dev-{i}]{OFFER if offered else ""}"""
        for i in range(n)
    )


def make_registry(district_sizes: Mapping[str, Sequence[int]], area: float = 20.0,
                  offered: bool = False) -> Registry:
    """One site per building: ``{"d1": [6, 2, 5]}`` = district d1 with three buildings;
    ``offered``: every office room is open to bookings."""
    sites = []
    for district, sizes in district_sizes.items():
        for b, size in enumerate(sizes):
            sites.append(f"""
  - id: {district}-s{b}
    district: {district}
    timezone: Europe/Paris
    opening_hours: {{mon: {HOURS}, tue: {HOURS}, wed: {HOURS}, thu: {HOURS}, fri: {HOURS}}}
    buildings:
      - id: b{b}
        floors:
          - id: f0
            rooms:{_rooms(f"{district}-b{b}", size, area, offered)}
              - id: {district}-b{b}-flat
                kind: housing
                area_m2: 50
                capacity: 2
                devices: [{district}-b{b}-flat-dev]""")
    return parse_registry("version: 1\nsites:" + "".join(sites))


def midnight_ms(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=PARIS).timestamp() * 1000)


def measure(
    site: str, room: str, day: dt.date, band: str, *, available_h: float = 4.0,
    idle_m2h: float = 40.0, utilisation: float = 0.5, area: float = 20.0, building: str = "b0",
) -> Sample:
    return Sample(
        "room_measure",
        {"site": site, "building": building, "floor": "f0", "room": room, "kind": "office",
         "band": band},
        {"available_h": available_h, "idle_m2h": idle_m2h, "utilisation_rate": utilisation,
         "used_h": available_h * utilisation, "area_m2": area, "capacity": 4},
        midnight_ms(day),
    )


def breach(site: str, room: str, day: dt.date, hour: int) -> Sample:
    start = dt.datetime(day.year, day.month, day.day, hour, tzinfo=PARIS)
    return Sample(
        "breach",
        {"site": site, "building": "b0", "floor": "f0", "room": room, "kind": "office"},
        {"duration_s": 5 * 3600.0, "limit_s": 4 * 3600.0, "end_ms": 0},
        int(start.timestamp() * 1000),
    )


def booking(site: str, room: str, day: dt.date, hour: int, *, hours: float = 2.0,
            ghost: bool = True, checked: bool = True, building: str = "b0") -> Sample:
    """A ``booking`` point as the bookings stage writes it."""
    start = int(dt.datetime(day.year, day.month, day.day, hour, tzinfo=PARIS).timestamp() * 1000)
    return Sample(
        "booking",
        {"site": site, "building": building, "floor": "f0", "room": room, "kind": "office"},
        {"end_ms": start + int(hours * 3_600_000), "booked_h": hours,
         "used_h": 0.0 if ghost or not checked else hours, "checked": int(checked),
         "ghost": int(ghost and checked), "unknown": 0},
        start,
    )


def week_of_data(registry: Registry, start: dt.date, days: int = 7) -> tuple[list[Sample],
                                                                             list[Sample]]:
    """Every eligible room, every day, both bands; a breach on every third room-day."""
    measures: list[Sample] = []
    breaches: list[Sample] = []
    n = 0
    for placed in registry.placed_rooms():
        if placed.room.kind.value == "housing":
            continue
        for d in range(days):
            day = start + dt.timedelta(days=d)
            for band in ("morning", "afternoon"):
                measures.append(measure(placed.site.id, placed.room.id, day, band,
                                        area=placed.room.area_m2, building=placed.building.id))
            n += 1
            if n % 3 == 0:
                breaches.append(breach(placed.site.id, placed.room.id, day, 9))
    return measures, breaches


