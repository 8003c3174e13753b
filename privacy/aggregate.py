"""From room-level measures to integer cell totals with a stated sensitivity.

Pure: takes the registry, the ``room_measure``, ``breach`` and ``booking`` samples and
returns, per released cell (building or district x period), integer totals of available
m²·h, idle m²·h, utilised m²·h, breaches, ghost bookings and booked-and-used hours, plus
the L1 sensitivity of each vector under the neighbouring relation *one room-day changed*.
Bookings (room and times: public in the offer feeds) count only once compared with the
sensors; whether one was used or a ghost derives from presence, so they are noised and
charged like the rest, and no requester field is read. Everything that shapes the output (which
cells exist, how many rooms they cover, the clamps) comes from the registry and the
settings, never from the measurements, so it leaks nothing.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from privacy.settings import PeriodKind, PrivacySettings
from softplace.registry import PlacedRoom, Registry
from softplace.schema import AggregateField, BookingField, MeasureField
from softplace.storage.base import Sample
from softplace.timeutil import ms_to_datetime

Level = Literal["building", "district"]
USED_M2H = "used_m2h"  # noised like the others, released only as the utilisation rate
# Coverage: room-hours the detector observed (its available_h). It depends on the data
# (sensor uptime), so it is a noised sum like the others, never an exact count.
OBSERVED_H = "observed_h"
AVAILABLE_M2H, IDLE_M2H, BREACHES = (
    AggregateField.AVAILABLE_M2H, AggregateField.IDLE_M2H, AggregateField.BREACHES
)
GHOST_BOOKINGS, BOOKED_USED_H = AggregateField.GHOST_BOOKINGS, AggregateField.BOOKED_USED_H
# the sensor measures share privacy.epsilon_per_release; the bookings privacy.epsilon_bookings
MEASURE_QUANTITIES = (AVAILABLE_M2H, IDLE_M2H, USED_M2H, BREACHES, OBSERVED_H)
BOOKING_QUANTITIES = (GHOST_BOOKINGS, BOOKED_USED_H)
QUANTITIES = (*MEASURE_QUANTITIES, *BOOKING_QUANTITIES)
BOOKED_H_QUANTUM = 0.25  # booked-and-used hours are summed in quarter hours
# A booking counts in the room-day it starts on, but whether it was used depends on the
# presence over its whole span, which may run into the next day: one changed room-day can
# move the bookings of two room-days (bookings last at most a day).
BOOKING_DAYS_TOUCHED = 2
RoomKey = tuple[str, str]  # (site, room)


@dataclass(frozen=True, slots=True)
class Area:
    """A building (``site/building``) or a district, with the rooms it covers."""

    level: Level
    id: str
    rooms: frozenset[RoomKey]
    sites: frozenset[str]


@dataclass(frozen=True, slots=True)
class RoomFacts:
    """What the registry says about an eligible room (public facts, not measurements)."""

    key: RoomKey
    timezone: str
    area_m2: float
    max_day_hours: float  # longest opening day
    weekly_hours: float
    offered: bool = False  # open to bookings (the registry's offer): only these hold any

    @property
    def day_bound_m2h(self) -> float:
        """No room-day can hold more m²·h than its area times its longest opening day."""
        return self.area_m2 * self.max_day_hours


def eligible(placed: PlacedRoom) -> bool:
    """Rooms released in aggregates: watched by a sensor and subject to vacancy rules
    (housing is never included)."""
    return bool(placed.room.devices) and placed.room.subject_to_vacancy_rules


def room_facts(placed: PlacedRoom) -> RoomFacts:
    hours = [
        sum(r.end_minute - r.start_minute for r in placed.opening_hours.ranges(day)) / 60
        for day in range(7)
    ]
    return RoomFacts(
        key=(placed.site.id, placed.room.id),
        timezone=placed.site.timezone,
        area_m2=placed.room.area_m2,
        max_day_hours=max(hours) if max(hours) > 0 else 24.0,
        weekly_hours=sum(hours),
        offered=placed.room.offer is not None,
    )


def areas_in_scope(
    registry: Registry, sites: Sequence[str] = (), districts: Sequence[str] = ()
) -> list[Area]:
    """Buildings of the chosen sites and districts, plus every district whose sites are all
    in scope (a district figure over part of its sites would be mislabelled).
    Nothing chosen means the whole registry."""
    chosen = {s.id for s in registry.sites if s.id in sites or s.district in districts}
    for site_id in sites:
        registry.site(site_id)  # KeyError names the known sites
    if not sites and not districts:
        chosen = {s.id for s in registry.sites}
    unknown = set(districts) - {s.district for s in registry.sites}
    if unknown:
        raise KeyError(f"no district {sorted(unknown)} in the registry")
    areas: list[Area] = []
    by_district: dict[str, list[str]] = defaultdict(list)
    for site in registry.sites:
        by_district[site.district].append(site.id)
        if site.id not in chosen:
            continue
        for building in site.buildings:
            rooms = frozenset(
                (site.id, p.room.id)
                for p in site.placed_rooms()
                if p.building.id == building.id and eligible(p)
            )
            areas.append(Area("building", f"{site.id}/{building.id}", rooms, frozenset({site.id})))
    for district, site_ids in sorted(by_district.items()):
        if all(s in chosen for s in site_ids):
            rooms = frozenset(
                (p.site.id, p.room.id)
                for p in registry.placed_rooms()
                if p.site.id in site_ids and eligible(p)
            )
            areas.append(Area("district", district, rooms, frozenset(site_ids)))
    return areas


def period_label(day: dt.date, half: str | None, kind: PeriodKind) -> str:
    if kind == "half_day":
        return f"{day.isoformat()}/{half}"
    if kind == "day":
        return day.isoformat()
    if kind == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{day.year}-{day.month:02d}"


def periods_between(start: dt.date, end: dt.date, kind: PeriodKind) -> list[str]:
    """Every period label touching ``[start, end)``, whether or not data exists (a cell's
    existence must not depend on the data)."""
    labels: list[str] = []
    day = start
    while day < end:
        for half in ("am", "pm") if kind == "half_day" else (None,):
            label = period_label(day, half, kind)
            if label not in labels:
                labels.append(label)
        day += dt.timedelta(days=1)
    return labels


def period_start(label: str) -> dt.date:
    """First day of a period label (for the point's timestamp)."""
    if "-W" in label:
        year, week = label.split("-W")
        return dt.date.fromisocalendar(int(year), int(week), 1)
    if len(label) == 7:
        return dt.date(int(label[:4]), int(label[5:7]), 1)
    return dt.date.fromisoformat(label[:10])


@dataclass(slots=True)
class CellTotals:
    """Integer totals (in units of the quantum for m²·h) per released cell."""

    cells: list[tuple[Area, str]]
    values: dict[str, list[int]]
    sensitivity: dict[str, int]
    parts: int  # cells of one area a room-day can touch (2 for half-days, else 1)
    rows_used: int = 0
    rows_dropped: dict[str, int] = field(default_factory=dict)


def _local_day(time_ms: int, timezone: str) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return ms_to_datetime(time_ms, ZoneInfo(timezone))


def _clamp(value: float, low: float, high: float) -> float:
    if math.isnan(value):
        return low
    return min(max(value, low), high)


def aggregate(
    registry: Registry,
    released: Sequence[Area],
    measures: Iterable[Sample],
    breaches: Iterable[Sample],
    *,
    start: dt.date,
    end: dt.date,
    kind: PeriodKind,
    settings: PrivacySettings,
    bookings: Iterable[Sample] = (),
) -> CellTotals:
    """Sum clamped room-day contributions into the released cells.

    Clamps (public, so the sensitivity is exact): each half-day band of a room-day holds at
    most ``area x longest opening day`` m²·h; for day-or-coarser periods the room-day's sum
    is clamped to that too; utilisation is clamped to [0, 1]; at most
    ``max_breaches_per_room_day`` breaches count per room-day and at most
    ``max_breaches_per_room_cell`` per room and cell (the first ones in time); at most
    ``max_bookings_per_room_day`` bookings count per room-day (the first ones in time,
    whatever their outcome) and their booked-and-used hours at most the room's longest
    opening day.
    """
    facts = {room_facts(p).key: room_facts(p) for p in registry.placed_rooms() if eligible(p)}
    periods = periods_between(start, end, kind)
    cells = [(area, period) for area in released for period in periods]
    index = {(area.id, period): i for i, (area, period) in enumerate(cells)}
    areas_of: dict[RoomKey, list[Area]] = defaultdict(list)
    for area in released:
        for room in area.rooms:
            areas_of[room].append(area)
    dropped: dict[str, int] = defaultdict(int)
    values = {name: [0] * len(cells) for name in QUANTITIES}
    q = settings.m2h_quantum
    room_days = _room_days(measures, facts, settings, dropped)
    for (key, day), halves in room_days.items():
        for half, (available, idle, used, observed) in _contributions(halves, facts[key], kind):
            label = period_label(day, half, kind)
            for area in areas_of.get(key, ()):
                i = index.get((area.id, label))
                if i is None:
                    dropped["room_measure outside the period"] += 1
                    continue
                values[AVAILABLE_M2H][i] += round(available / q)
                values[IDLE_M2H][i] += round(idle / q)
                values[USED_M2H][i] += round(used / q)
                values[OBSERVED_H][i] += round(observed)
    per_room_cell: dict[tuple[RoomKey, str], int] = defaultdict(int)
    for key, local in _counted_breaches(breaches, facts, settings, dropped):
        half = "am" if local.hour < settings.day_split_hour else "pm"
        label = period_label(local.date(), half, kind)
        if per_room_cell[(key, label)] >= settings.max_breaches_per_room_cell:
            dropped["breach over the per-room-cell clamp"] += 1
            continue
        per_room_cell[(key, label)] += 1
        for area in areas_of.get(key, ()):
            i = index.get((area.id, label))
            if i is not None:
                values[BREACHES][i] += 1
    for key, local, ghost, used_units in _counted_bookings(bookings, facts, settings, dropped):
        half = "am" if local.hour < settings.day_split_hour else "pm"
        label = period_label(local.date(), half, kind)
        for area in areas_of.get(key, ()):
            i = index.get((area.id, label))
            if i is not None:
                values[GHOST_BOOKINGS][i] += ghost
                values[BOOKED_USED_H][i] += used_units
    sensitivity = sensitivities(registry, released, kind, settings)
    parts = 2 if kind == "half_day" else 1
    return CellTotals(cells, values, sensitivity, parts, len(room_days), dict(dropped))


# "am"/"pm" -> (available m²·h, idle m²·h, used m²·h, observed hours)
Halves = dict[str, tuple[float, float, float, float]]


def _room_days(
    measures: Iterable[Sample], facts: dict[RoomKey, RoomFacts], settings: PrivacySettings,
    dropped: dict[str, int],
) -> dict[tuple[RoomKey, dt.date], Halves]:
    am_band, pm_band = settings.half_day_bands
    room_days: dict[tuple[RoomKey, dt.date], Halves] = defaultdict(dict)
    for sample in measures:
        key = (sample.tags.get("site", ""), sample.tags.get("room", ""))
        band = sample.tags.get("band", "")
        if key not in facts or band not in (am_band, pm_band):
            dropped["room_measure outside scope or band"] += 1
            continue
        room = facts[key]
        local = _local_day(sample.time_ms, room.timezone)
        hours = float(sample.fields.get(MeasureField.AVAILABLE_H, 0.0))
        available = _clamp(hours, 0, 24) * room.area_m2
        available = _clamp(available, 0, room.day_bound_m2h)
        idle = _clamp(float(sample.fields.get(MeasureField.IDLE_M2H, 0.0)), 0, available)
        rate = float(sample.fields.get(MeasureField.UTILISATION_RATE, 0.0))
        used = _clamp(rate, 0, 1) * available
        observed = _clamp(hours, 0, room.max_day_hours)
        room_days[(key, local.date())]["am" if band == am_band else "pm"] = (
            available, idle, used, observed
        )
    return room_days


def _contributions(
    halves: Halves, room: RoomFacts, kind: PeriodKind
) -> list[tuple[str | None, tuple[float, float, float, float]]]:
    if kind == "half_day":
        return [(half, v) for half, v in halves.items()]
    bound = room.day_bound_m2h
    available, idle, used, observed = (sum(v[i] for v in halves.values()) for i in range(4))
    shrink = bound / available if available > bound else 1.0
    return [(None, (available * shrink, idle * shrink, used * shrink,
                    min(observed, room.max_day_hours)))]


def _counted_breaches(
    breaches: Iterable[Sample], facts: dict[RoomKey, RoomFacts], settings: PrivacySettings,
    dropped: dict[str, int],
) -> list[tuple[RoomKey, dt.datetime]]:
    counted: list[tuple[RoomKey, dt.datetime]] = []
    per_room_day: dict[tuple[RoomKey, dt.date], int] = defaultdict(int)
    for sample in sorted(breaches, key=lambda s: s.time_ms):
        key = (sample.tags.get("site", ""), sample.tags.get("room", ""))
        if key not in facts:
            dropped["breach outside scope"] += 1
            continue
        local = _local_day(sample.time_ms, facts[key].timezone)
        if per_room_day[(key, local.date())] >= settings.max_breaches_per_room_day:
            dropped["breach over the per-room-day clamp"] += 1
            continue
        per_room_day[(key, local.date())] += 1
        counted.append((key, local))
    return counted


def _counted_bookings(
    bookings: Iterable[Sample], facts: dict[RoomKey, RoomFacts], settings: PrivacySettings,
    dropped: dict[str, int],
) -> list[tuple[RoomKey, dt.datetime, int, int]]:
    """(room, local start, ghost 0/1, booked-and-used quarter hours) per counted booking;
    the room-day clamps are applied in start order on the booked times, so which bookings
    count, and for how many hours, never depends on what the sensors saw."""
    counted: list[tuple[RoomKey, dt.datetime, int, int]] = []
    per_room_day: dict[tuple[RoomKey, dt.date], list[int]] = defaultdict(lambda: [0, 0])
    for sample in sorted(bookings, key=lambda s: s.time_ms):
        key = (sample.tags.get("site", ""), sample.tags.get("room", ""))
        if key not in facts or not facts[key].offered:
            dropped["booking outside scope"] += 1
            continue
        if not sample.fields.get(BookingField.CHECKED):
            dropped["booking not compared with the sensors yet"] += 1
            continue
        room = facts[key]
        local = _local_day(sample.time_ms, room.timezone)
        day = per_room_day[(key, local.date())]
        if day[0] >= settings.max_bookings_per_room_day:
            dropped["booking over the per-room-day clamp"] += 1
            continue
        day[0] += 1
        # the day's hours go to its bookings in start order by their booked hours, never by
        # their outcome, so flipping outcomes moves at most the day's clamp
        booked = _clamp(float(sample.fields.get(BookingField.BOOKED_H, 0.0)), 0,
                        room.max_day_hours)
        share = min(round(booked / BOOKED_H_QUANTUM), hour_units(room) - day[1])
        day[1] += share
        used = float(sample.fields.get(BookingField.USED_H, 0.0)) > 0
        counted.append((key, local, int(bool(sample.fields.get(BookingField.GHOST))),
                        share if used else 0))
    return counted


def hour_units(room: RoomFacts) -> int:
    """Booked-and-used quarter hours one room-day may hold (its longest opening day)."""
    return math.ceil(room.max_day_hours / BOOKED_H_QUANTUM)


def sensitivities(
    registry: Registry, released: Sequence[Area], kind: PeriodKind, settings: PrivacySettings
) -> dict[str, int]:
    """L1 sensitivity of each quantity's vector over all released cells when one room-day
    changes: the clamp, times the cells of one area it can touch (2 half-days or 1 period),
    times the released areas holding that room. From the registry only."""
    facts = {room_facts(p).key: room_facts(p) for p in registry.placed_rooms() if eligible(p)}
    parts = 2 if kind == "half_day" else 1
    holders: dict[RoomKey, int] = defaultdict(int)
    for area in released:
        for room in area.rooms:
            holders[room] += 1
    q = settings.m2h_quantum
    m2h = max((math.ceil(facts[r].day_bound_m2h / q) * n for r, n in holders.items()), default=0)
    # a room-day moves a room's clamped count in a cell by at most the smaller clamp
    per_cell = min(settings.max_breaches_per_room_day, settings.max_breaches_per_room_cell)
    breaches = max(holders.values(), default=0) * per_cell
    # observed hours: each band (half-days) or the room-day (else) is clamped to the room's
    # longest opening day, so its rounded contribution is at most that, rounded up
    hours = max((math.ceil(facts[r].max_day_hours) * n for r, n in holders.items()), default=0)
    # bookings: the clamps hold per room-day over both half-days, and a room-day reaches
    # the bookings of BOOKING_DAYS_TOUCHED room-days; a room never offered holds none, so
    # an area without an offered room adds no noise and costs nothing
    offered = {r: n for r, n in holders.items() if facts[r].offered}
    ghost = BOOKING_DAYS_TOUCHED * settings.max_bookings_per_room_day * max(
        offered.values(), default=0)
    used = BOOKING_DAYS_TOUCHED * max(
        (hour_units(facts[r]) * n for r, n in offered.items()), default=0)
    return {
        AVAILABLE_M2H: parts * m2h,
        IDLE_M2H: parts * m2h,
        USED_M2H: parts * m2h,
        BREACHES: parts * breaches,
        OBSERVED_H: parts * hours,
        GHOST_BOOKINGS: ghost,
        BOOKED_USED_H: used,
    }


def opening_capacity_m2h(registry: Registry, area: Area, kind: PeriodKind) -> float:
    """Average m²·h the area is open per period (registry only): the yardstick the
    coarsening rule compares the noise with."""
    days = {"half_day": 0.5, "day": 1.0, "week": 7.0, "month": 28.0}[kind]
    facts = {room_facts(p).key: room_facts(p) for p in registry.placed_rooms() if eligible(p)}
    return sum(facts[r].area_m2 * facts[r].weekly_hours / 7 * days for r in area.rooms)


def align(start: dt.date, end: dt.date, kind: PeriodKind) -> tuple[dt.date, dt.date]:
    """Widen ``[start, end)`` to whole periods, so no cell covers part of its period."""
    if kind == "week":
        start -= dt.timedelta(days=start.weekday())
        end += dt.timedelta(days=(7 - end.weekday()) % 7)
    elif kind == "month":
        start = start.replace(day=1)
        if end.day != 1:
            end = (end.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    return start, end
