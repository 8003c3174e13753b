"""Space-utilisation measures (UK Space Management Group) per room, day and band.

For one room over its *available* hours (opening hours within the band) minus the hours
it was ``unknown`` (the observed hours):

* frequency rate   = hours in use / observed hours
* occupancy rate   = mean count while in use / capacity
* utilisation rate = frequency x occupancy = person-hours / seat-hours observed

Rollups (floor, building, site) and periods weigh rooms by seats: frequency is seat-hours
in use over seat-hours observed, occupancy is person-hours over seat-hours in use, so
utilisation = frequency x occupancy holds at every level. A count above capacity counts
as full (occupancy is a share of seats); the real peak is kept in ``peak_count``.
A room with no observed hours (closed all day, or no data) has rates 0, never NaN.
Idle square-metre-hours = area x vacant hours inside the available hours.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from detector.days import DayPlan
from detector.intervals import State
from softplace.registry import PlacedRoom
from softplace.schema import MeasureField
from softplace.timeutil import MS_PER_H


@dataclass(frozen=True, slots=True)
class RoomRef:
    """What the measures and the stored tags need to know of a room."""

    site: str
    building: str
    floor: str
    room: str
    kind: str
    area_m2: float
    capacity: int
    rules: bool  # subject to vacancy rules (breaches, under-use, idle slots)

    @classmethod
    def of(cls, placed: PlacedRoom, include_housing: bool = False) -> RoomRef:
        room = placed.room
        return cls(
            placed.site.id, placed.building.id, placed.floor.id, room.id, room.kind.value,
            room.area_m2, room.capacity, room.subject_to_vacancy_rules or include_housing,
        )

    @property
    def tags(self) -> dict[str, str]:
        return {
            "site": self.site, "building": self.building, "floor": self.floor,
            "room": self.room, "kind": self.kind,
        }


@dataclass(slots=True)
class Tally:
    """Additive totals over rooms and days; rates are derived, so sums stay exact."""

    available_ms: int = 0
    used_ms: int = 0
    vacant_ms: int = 0
    unknown_ms: int = 0
    person_ms: int = 0  # count (capped at capacity) x ms while in use
    seat_observed_ms: int = 0  # capacity x (available - unknown)
    seat_used_ms: int = 0  # capacity x used
    idle_m2ms: float = 0.0  # area x vacant ms
    peak_count: int = 0
    rooms: int = 0
    area_m2: float = 0.0
    capacity: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.available_ms + other.available_ms, self.used_ms + other.used_ms,
            self.vacant_ms + other.vacant_ms, self.unknown_ms + other.unknown_ms,
            self.person_ms + other.person_ms, self.seat_observed_ms + other.seat_observed_ms,
            self.seat_used_ms + other.seat_used_ms, self.idle_m2ms + other.idle_m2ms,
            max(self.peak_count, other.peak_count), self.rooms + other.rooms,
            self.area_m2 + other.area_m2, self.capacity + other.capacity,
        )

    def add(self, other: Tally) -> None:
        """``self = self + other`` in place (a rollup's running sum: no Tally per term)."""
        self.available_ms += other.available_ms
        self.used_ms += other.used_ms
        self.vacant_ms += other.vacant_ms
        self.unknown_ms += other.unknown_ms
        self.person_ms += other.person_ms
        self.seat_observed_ms += other.seat_observed_ms
        self.seat_used_ms += other.seat_used_ms
        self.idle_m2ms += other.idle_m2ms
        self.peak_count = max(self.peak_count, other.peak_count)
        self.rooms += other.rooms
        self.area_m2 += other.area_m2
        self.capacity += other.capacity

    def over_days(self, other: Tally) -> Tally:
        """The same rooms on another day: room count, area and capacity do not add up."""
        total = self + other
        total.rooms, total.area_m2, total.capacity = (
            max(self.rooms, other.rooms), max(self.area_m2, other.area_m2),
            max(self.capacity, other.capacity),
        )
        return total

    @property
    def frequency_rate(self) -> float:
        return self.seat_used_ms / self.seat_observed_ms if self.seat_observed_ms else 0.0

    @property
    def occupancy_rate(self) -> float:
        return self.person_ms / self.seat_used_ms if self.seat_used_ms else 0.0

    @property
    def utilisation_rate(self) -> float:
        return self.person_ms / self.seat_observed_ms if self.seat_observed_ms else 0.0

    @property
    def idle_m2h(self) -> float:
        return self.idle_m2ms / MS_PER_H

    def hours(self, ms: int) -> float:
        return ms / MS_PER_H

    def fields(self) -> dict[str, float | int]:
        """The ``room_measure`` / ``space_measure`` fields."""
        return {
            MeasureField.AVAILABLE_H: self.available_ms / MS_PER_H,
            MeasureField.USED_H: self.used_ms / MS_PER_H,
            MeasureField.UNKNOWN_H: self.unknown_ms / MS_PER_H,
            MeasureField.FREQUENCY_RATE: self.frequency_rate,
            MeasureField.OCCUPANCY_RATE: self.occupancy_rate,
            MeasureField.UTILISATION_RATE: self.utilisation_rate,
            MeasureField.PEAK_COUNT: self.peak_count,
            MeasureField.IDLE_M2H: self.idle_m2h,
            MeasureField.AREA_M2: self.area_m2,
            MeasureField.CAPACITY: self.capacity,
            MeasureField.OCCUPIED_SEAT_H: self.person_ms / MS_PER_H,
            MeasureField.OBSERVED_SEAT_H: self.seat_observed_ms / MS_PER_H,
        }


@dataclass(frozen=True, slots=True)
class RoomMeasure:
    room: RoomRef
    date: dt.date
    day_start_ms: int  # local midnight in UTC ms: the stored point's time
    band: str
    tally: Tally


class DayAccumulator:
    """One room's tallies for the local day being observed, one per band."""

    def __init__(self, ref: RoomRef, plan: DayPlan) -> None:
        self.ref = ref
        self.plan = plan
        self.used = dict.fromkeys((name for name, _ in plan.bands), 0)
        self.vacant = dict(self.used)
        self.unknown = dict(self.used)
        self.person = dict(self.used)
        self.peak = dict(self.used)
        windows = [w for _, band in plan.bands for w in band]
        # no band window outside these: a segment outside them (a night, a closed day) adds 0
        self._first = min((lo for lo, _ in windows), default=0)
        self._last = max((hi for _, hi in windows), default=0)

    def add(self, start: int, end: int, state: State, count: int) -> None:
        # once per segment: days.overlap inlined, the state's tally chosen once
        if end <= self._first or start >= self._last:
            return
        occupied = state is State.OCCUPIED
        tally = self.used if occupied else self.vacant if state is State.VACANT else self.unknown
        person, peak = self.person, self.peak
        capped = min(count, self.ref.capacity)
        for name, windows in self.plan.bands:
            span = 0
            for lo, hi in windows:
                if hi <= start:
                    continue
                if lo >= end:
                    break
                span += (end if end < hi else hi) - (start if start > lo else lo)
            if not span:
                continue
            tally[name] += span
            if occupied:
                person[name] += capped * span
                peak[name] = max(peak[name], count)

    def measures(self) -> list[RoomMeasure]:
        ref, plan = self.ref, self.plan
        result = []
        for name, windows in plan.bands:
            available = sum(end - start for start, end in windows)
            used, vacant, unknown = self.used[name], self.vacant[name], self.unknown[name]
            tally = Tally(
                available_ms=available, used_ms=used, vacant_ms=vacant, unknown_ms=unknown,
                person_ms=self.person[name],
                seat_observed_ms=ref.capacity * (available - unknown),
                seat_used_ms=ref.capacity * used, idle_m2ms=ref.area_m2 * vacant,
                peak_count=self.peak[name], rooms=1, area_m2=ref.area_m2, capacity=ref.capacity,
            )
            result.append(RoomMeasure(ref, plan.date, plan.start_ms, name, tally))
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "used": self.used, "vacant": self.vacant, "unknown": self.unknown,
            "person": self.person, "peak": self.peak,
        }

    def load_dict(self, data: dict[str, Any]) -> None:
        self.used, self.vacant, self.unknown = data["used"], data["vacant"], data["unknown"]
        self.person, self.peak = data["person"], data["peak"]


LEVELS = ("floor", "building", "site")


@dataclass(frozen=True, slots=True)
class SpaceMeasure:
    """A rollup of room measures over a floor, a building or a site."""

    level: str  # floor | building | site
    site: str
    building: str | None
    floor: str | None
    band: str
    date: dt.date | None  # None: the whole period
    day_start_ms: int | None
    tally: Tally = field(default_factory=Tally)

    @property
    def tags(self) -> dict[str, str]:
        tags = {"site": self.site, "level": self.level, "band": self.band}
        if self.building is not None:
            tags["building"] = self.building
        if self.floor is not None:
            tags["floor"] = self.floor
        return tags

    @property
    def label(self) -> str:
        return "/".join(p for p in (self.site, self.building, self.floor) if p is not None)


def _space_key(ref: RoomRef, level: str) -> tuple[str, str | None, str | None]:
    if level == "floor":
        return (ref.site, ref.building, ref.floor)
    if level == "building":
        return (ref.site, ref.building, None)
    return (ref.site, None, None)


def rollup_days(measures: Iterable[RoomMeasure], rules_only: bool = True) -> list[SpaceMeasure]:
    """Per day, band and level; only rooms subject to vacancy rules when ``rules_only``."""
    groups: dict[tuple[Any, ...], Tally] = {}
    starts: dict[dt.date, int] = {}
    for measure in measures:
        if rules_only and not measure.room.rules:
            continue
        starts[measure.date] = measure.day_start_ms
        for level in LEVELS:
            key = (level, *_space_key(measure.room, level), measure.band, measure.date)
            total = groups.get(key)
            if total is None:
                groups[key] = Tally() + measure.tally  # a copy: the sum is built in place
            else:
                total.add(measure.tally)
    return [
        SpaceMeasure(level, site, building, floor, band, day, starts[day], tally)
        for (level, site, building, floor, band, day), tally in sorted(
            groups.items(), key=lambda item: tuple(str(p) for p in item[0])
        )
    ]


def room_period(measures: Iterable[RoomMeasure], band: str) -> dict[str, tuple[RoomRef, Tally]]:
    """Each room's tally over all the days given, for one band."""
    result: dict[str, tuple[RoomRef, Tally]] = {}
    for measure in measures:
        if measure.band != band:
            continue
        ref = measure.room
        if ref.room in result:
            result[ref.room] = (ref, result[ref.room][1].over_days(measure.tally))
        else:
            result[ref.room] = (ref, measure.tally)
    return result


def rollup_period(
    measures: Iterable[RoomMeasure], band: str, rules_only: bool = True
) -> list[SpaceMeasure]:
    """Per level over the whole period, for one band."""
    per_room = room_period(measures, band)
    groups: dict[tuple[Any, ...], Tally] = {}
    for ref, tally in per_room.values():
        if rules_only and not ref.rules:
            continue
        for level in LEVELS:
            key = (level, *_space_key(ref, level))
            groups[key] = groups.get(key, Tally()) + tally
    order = {level: i for i, level in enumerate(reversed(LEVELS))}
    return [
        SpaceMeasure(level, site, building, floor, band, None, None, tally)
        for (level, site, building, floor), tally in sorted(
            groups.items(), key=lambda item: (order[item[0][0]], *(str(p) for p in item[0][1:]))
        )
    ]
