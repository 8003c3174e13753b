"""Idle-slot offers: weekly windows in which a room has reliably been vacant.

Each opening period of a weekday is cut into slots (30 min by default). A slot counts as
vacant in a week when the room was *known* vacant for the whole slot that day (unknown
time counts against it). Slots vacant in at least ``idle_slot_min_share`` of the weeks
observed are merged into windows (the window's share is its weakest slot's); windows
shorter than ``idle_slot_min_minutes`` are dropped. Published as iCalendar (RFC 5545,
one weekly recurring event per window, in the site's time zone) and as JSON.
"""

from __future__ import annotations

import datetime as dt
import json
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from detector.intervals import Interval, State
from detector.measures import RoomRef
from detector.settings import DetectorSettings
from softplace.registry import WEEKDAYS, OpeningHours
from softplace.timeutil import local_ms

_ICAL_DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True, slots=True)
class IdleSlot:
    room: RoomRef
    room_name: str
    weekday: int  # 0 = Monday
    start_minute: int  # local clock
    end_minute: int
    weeks_vacant: int  # of the weakest slot in the window
    weeks: int

    @property
    def share(self) -> float:
        return self.weeks_vacant / self.weeks if self.weeks else 0.0

    @property
    def start_text(self) -> str:
        return f"{self.start_minute // 60:02d}:{self.start_minute % 60:02d}"

    @property
    def end_text(self) -> str:
        return f"{self.end_minute // 60:02d}:{self.end_minute % 60:02d}"


def _fully_vacant(starts: list[int], vacant: Sequence[Interval], lo: int, hi: int) -> bool:
    """Whether [lo, hi) lies inside the union of the (sorted, disjoint) vacant intervals."""
    i = bisect_right(starts, lo) - 1
    cursor = lo
    while 0 <= i < len(vacant) and cursor < hi:
        interval = vacant[i]
        if interval.start_ms > cursor:
            return False
        cursor = max(cursor, interval.end_ms)
        i += 1
    return cursor >= hi


def find_idle_slots(
    ref: RoomRef, intervals: Iterable[Interval], *, name: str, hours: OpeningHours,
    tz: ZoneInfo, start: dt.date, end: dt.date, settings: DetectorSettings,
) -> list[IdleSlot]:
    """Windows of one room over the local days ``start`` .. ``end`` (exclusive)."""
    vacant = sorted(
        (i for i in intervals if i.state is State.VACANT), key=lambda i: i.start_ms
    )
    starts = [i.start_ms for i in vacant]
    step = settings.idle_slot_minutes
    tallies: dict[tuple[int, int], list[int]] = {}  # (weekday, minute) -> [vacant, weeks]
    day = start
    while day < end:
        weekday = day.weekday()
        for period in hours.ranges(weekday):
            minute = period.start_minute
            while minute + step <= period.end_minute:
                lo, hi = local_ms(day, minute, tz), local_ms(day, minute + step, tz)
                tally = tallies.setdefault((weekday, minute), [0, 0])
                tally[1] += 1
                if lo < hi and _fully_vacant(starts, vacant, lo, hi):
                    tally[0] += 1
                minute += step
        day += dt.timedelta(days=1)
    slots: list[IdleSlot] = []
    current: list[int] | None = None  # [weekday, start, end, min_vacant, weeks]

    def close() -> None:
        if current is not None and current[2] - current[1] >= settings.idle_slot_min_minutes:
            slots.append(IdleSlot(ref, name, *current))

    for (weekday, minute), (vacant_weeks, weeks) in sorted(tallies.items()):
        reliable = weeks > 0 and vacant_weeks / weeks >= settings.idle_slot_min_share
        if not reliable:
            close()
            current = None
            continue
        if current is not None and current[0] == weekday and current[2] == minute:
            current[2] = minute + step
            if vacant_weeks / weeks < current[3] / current[4]:
                current[3], current[4] = vacant_weeks, weeks
        else:
            close()
            current = [weekday, minute, minute + step, vacant_weeks, weeks]
    close()
    return slots


def slots_json(slots: Sequence[IdleSlot], timezone: str) -> list[dict[str, Any]]:
    return [
        {
            "site": s.room.site, "building": s.room.building, "floor": s.room.floor,
            "room": s.room.room, "name": s.room_name, "kind": s.room.kind,
            "area_m2": s.room.area_m2, "capacity": s.room.capacity,
            "weekday": WEEKDAYS[s.weekday], "start": s.start_text, "end": s.end_text,
            "timezone": timezone, "share_vacant": round(s.share, 4),
            "weeks_vacant": s.weeks_vacant, "weeks": s.weeks,
        }
        for s in slots
    ]


def to_json(slots: Sequence[IdleSlot], timezone: str) -> str:
    return json.dumps({"idle_slots": slots_json(slots, timezone)}, indent=2)


def to_ical(
    slots: Sequence[IdleSlot], tz: ZoneInfo, first_day: dt.date, weeks: int,
    stamp: dt.datetime,
) -> bytes:
    """A calendar offering each window weekly for ``weeks`` weeks from ``first_day``."""
    from icalendar import Calendar, Event

    calendar = Calendar()
    calendar.add("prodid", "-//SoftPlace//idle slots//EN")
    calendar.add("version", "2.0")
    calendar.add("x-wr-timezone", str(tz))
    if slots:
        calendar.add("x-wr-calname", f"SoftPlace idle slots: {slots[0].room.site}")
    for slot in slots:
        offset = (slot.weekday - first_day.weekday()) % 7
        day = first_day + dt.timedelta(days=offset)
        start = dt.datetime.combine(day, dt.time(slot.start_minute // 60, slot.start_minute % 60))
        end_minute = min(slot.end_minute, 24 * 60 - 1)
        end = dt.datetime.combine(day, dt.time(end_minute // 60, end_minute % 60))
        if slot.end_minute == 24 * 60:
            end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0))
        event = Event()
        ref = slot.room
        event.add("uid", f"{ref.site}.{ref.room}.{_ICAL_DAYS[slot.weekday]}.{slot.start_text}"
                         "@softplace")
        event.add("dtstamp", stamp.astimezone(dt.UTC))
        event.add("dtstart", start.replace(tzinfo=tz))
        event.add("dtend", end.replace(tzinfo=tz))
        event.add("rrule", {"freq": "weekly", "byday": _ICAL_DAYS[slot.weekday], "count": weeks})
        event.add("summary", f"Available: {slot.room_name or ref.room}")
        event.add("location", f"{ref.site} / {ref.building} / {ref.floor} / {ref.room}")
        event.add("description", (
            f"{ref.kind}, {ref.area_m2:g} m², {ref.capacity} seats. Vacant in "
            f"{slot.weeks_vacant} of the last {slot.weeks} weeks at this time."
        ))
        event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    calendar.add_missing_timezones()
    data: bytes = calendar.to_ical()
    return data
