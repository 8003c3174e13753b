"""Idle-slot offers: weekly windows in which a room has reliably been vacant.

Each opening period of a weekday is cut into slots (30 min by default). A slot counts as
vacant in a week when the room was *known* vacant for the whole slot that day (unknown
time counts against it). Slots vacant in at least ``idle_slot_min_share`` of the weeks
observed are merged into windows (the window's share is its weakest slot's); windows
shorter than ``idle_slot_min_minutes`` are dropped. Published as iCalendar (RFC 5545,
one weekly recurring event per window, in the site's time zone) and as JSON.

Bookings follow ``detector.booked.BOOKED_TIME_RULE``: a slot overlapping a used booking
is not vacant that week; one overlapping a ghost booking still is, and the window counts
the days it was ghost-booked; a feed leaves out (EXDATE) the weeks a booking ahead takes.
"""

from __future__ import annotations

import datetime as dt
import json
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from detector.booked import BookedSpan, BookedUse, spans_of
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
    ghost_weeks: int = 0  # days on which a ghost booking overlapped the window

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
    booked: Sequence[BookedSpan] = (),
) -> list[IdleSlot]:
    """Windows of one room over the local days ``start`` .. ``end`` (exclusive), with its
    ``booked`` spans under the booked-time rule."""
    vacant = sorted(
        (i for i in intervals if i.state is State.VACANT), key=lambda i: i.start_ms
    )
    starts = [i.start_ms for i in vacant]
    used = spans_of(booked, ref.room, BookedUse.USED)
    ghosts = spans_of(booked, ref.room, BookedUse.GHOST)
    step = settings.idle_slot_minutes
    tallies: dict[tuple[int, int], list[int]] = {}  # (weekday, minute) -> [vacant, weeks]
    ghosted: dict[tuple[int, int], set[dt.date]] = {}  # ghost-booked days of a slot
    day = start
    while day < end:
        weekday = day.weekday()
        for period in hours.ranges(weekday):
            minute = period.start_minute
            while minute + step <= period.end_minute:
                lo, hi = local_ms(day, minute, tz), local_ms(day, minute + step, tz)
                tally = tallies.setdefault((weekday, minute), [0, 0])
                tally[1] += 1
                if lo < hi and _fully_vacant(starts, vacant, lo, hi) and not any(
                        u.overlaps(lo, hi) for u in used):
                    tally[0] += 1
                    if any(g.overlaps(lo, hi) for g in ghosts):
                        ghosted.setdefault((weekday, minute), set()).add(day)
                minute += step
        day += dt.timedelta(days=1)
    slots: list[IdleSlot] = []
    current: list[int] | None = None  # [weekday, start, end, min_vacant, weeks]
    ghost_days: set[dt.date] = set()

    def close() -> None:
        if current is not None and current[2] - current[1] >= settings.idle_slot_min_minutes:
            weekday, first, last, weeks_vacant, weeks = current
            slots.append(IdleSlot(ref, name, weekday, first, last, weeks_vacant, weeks,
                                  len(ghost_days)))

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
            ghost_days = set()
        ghost_days |= ghosted.get((weekday, minute), set())
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
            "weeks_vacant": s.weeks_vacant, "weeks": s.weeks, "ghost_weeks": s.ghost_weeks,
        }
        for s in slots
    ]


def to_json(slots: Sequence[IdleSlot], timezone: str) -> str:
    return json.dumps({"idle_slots": slots_json(slots, timezone)}, indent=2)


def to_ical(
    slots: Sequence[IdleSlot], tz: ZoneInfo, first_day: dt.date, weeks: int,
    stamp: dt.datetime, booked: Sequence[BookedSpan] = (),
) -> bytes:
    """A calendar offering each window weekly for ``weeks`` weeks from ``first_day``, less
    the occurrences an accepted booking ahead overlaps (EXDATE)."""
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
        taken = booked_occurrences(slot, tz, day, weeks, booked)
        if taken:
            event.add("exdate", taken)
        event.add("summary", f"Available: {slot.room_name or ref.room}")
        event.add("location", f"{ref.site} / {ref.building} / {ref.floor} / {ref.room}")
        event.add("description", (
            f"{ref.kind}, {ref.area_m2:g} m², {ref.capacity} seats. Vacant in "
            f"{slot.weeks_vacant} of the last {slot.weeks} weeks at this time."
        ))
        event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    last_day = first_day + dt.timedelta(weeks=weeks)
    calendar.add_component(vtimezone(tz, first_day.year, last_day.year))
    data: bytes = calendar.to_ical()
    return data


def booked_occurrences(slot: IdleSlot, tz: ZoneInfo, first: dt.date, weeks: int,
                       booked: Sequence[BookedSpan]) -> list[dt.datetime]:
    """Starts (local, aware) of the slot's weekly occurrences from ``first`` that an
    accepted booking ahead overlaps: the booked-time rule takes them off the offer."""
    ahead = spans_of(booked, slot.room.room, BookedUse.AHEAD)
    taken = []
    for week in range(weeks if ahead else 0):
        day = first + dt.timedelta(weeks=week)
        lo, hi = local_ms(day, slot.start_minute, tz), local_ms(day, slot.end_minute, tz)
        if any(b.overlaps(lo, hi) for b in ahead):
            taken.append(dt.datetime.combine(day, dt.time(slot.start_minute // 60,
                                                          slot.start_minute % 60), tz))
    return taken


_MINUTE = dt.timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class _Transition:
    local: dt.datetime  # wall clock just before the change (naive, in the old offset)
    offset_from: dt.timedelta
    offset_to: dt.timedelta
    name: str
    daylight: bool


def _offset(tz: ZoneInfo, moment: dt.datetime) -> dt.timedelta:
    return moment.astimezone(tz).utcoffset() or dt.timedelta(0)


def _transitions(tz: ZoneInfo, year: int) -> list[_Transition]:
    """Offset changes of ``tz`` during ``year``, found hour by hour, then to the minute."""
    found = []
    moment = dt.datetime(year, 1, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC)
    before = _offset(tz, moment)
    while moment < end:
        later = moment + dt.timedelta(hours=1)
        after = _offset(tz, later)
        if after != before:
            lo, hi = moment, later  # the change lies in (lo, hi]
            while hi - lo > _MINUTE:
                mid = lo + (hi - lo) / 2
                mid = mid.replace(second=0, microsecond=0)
                if mid <= lo:
                    break
                if _offset(tz, mid) == before:
                    lo = mid
                else:
                    hi = mid
            local = hi.astimezone(tz)
            found.append(_Transition(
                (hi + before).replace(tzinfo=None), before, after, local.tzname() or "",
                bool(local.dst()),
            ))
            before = after
        moment = later
    return found


def _nth_weekday(year: int, month: int, weekday: int, nth: int) -> dt.date:
    """The ``nth`` (1..4, or -1 for the last) ``weekday`` of a month."""
    if nth > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (nth - 1))
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    last = following - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _rule_of(transition: _Transition) -> tuple[int, int, int]:
    """(month, weekday, nth) of a transition: "the last Sunday of March" is (3, 6, -1)."""
    day = transition.local.date()
    nth = (day.day - 1) // 7 + 1
    if _nth_weekday(day.year, day.month, day.weekday(), -1) == day:
        nth = -1
    return day.month, day.weekday(), nth


def vtimezone(tz: ZoneInfo, first_year: int, last_year: int) -> Any:
    """A VTIMEZONE with one yearly RRULE per observance (RFC 5545 3.6.5), the form every
    client reads alike; the date-list form (RDATE per year) is read an hour off by some
    (vobject). The rule is checked against every year the feed covers; a zone whose rules
    change inside them falls back to one observance per transition."""
    from icalendar import Timezone, TimezoneStandard

    zone = Timezone()
    zone.add("tzid", str(tz))
    transitions = _transitions(tz, first_year)
    if not transitions:
        moment = dt.datetime(first_year, 1, 1, tzinfo=dt.UTC).astimezone(tz)
        standard = TimezoneStandard()
        standard.add("dtstart", dt.datetime(1970, 1, 1))
        offset = moment.utcoffset() or dt.timedelta(0)
        standard.add("tzoffsetfrom", offset)
        standard.add("tzoffsetto", offset)
        standard.add("tzname", moment.tzname() or str(tz))
        zone.add_component(standard)
        return zone
    rules = [_rule_of(t) for t in transitions]
    regular = all(
        [_rule_of(t) for t in _transitions(tz, year)] == rules
        for year in range(first_year, last_year + 1)
    )
    if not regular:  # one dated observance per transition, no rule to extrapolate
        for year in range(first_year, last_year + 1):
            for transition in _transitions(tz, year):
                zone.add_component(_observance(transition, transition.local, None))
        return zone
    for transition, (month, weekday, nth) in zip(transitions, rules, strict=True):
        onset = dt.datetime.combine(_nth_weekday(1970, month, weekday, nth),
                                    transition.local.time())
        rrule = {"freq": "yearly", "bymonth": month, "byday": f"{nth}{_ICAL_DAYS[weekday]}"}
        zone.add_component(_observance(transition, onset, rrule))
    return zone


def _observance(transition: _Transition, onset: dt.datetime, rrule: dict[str, Any] | None) -> (
    Any
):
    from icalendar import TimezoneDaylight, TimezoneStandard

    part = TimezoneDaylight() if transition.daylight else TimezoneStandard()
    part.add("dtstart", onset)
    if rrule is not None:
        part.add("rrule", rrule)
    part.add("tzoffsetfrom", transition.offset_from)
    part.add("tzoffsetto", transition.offset_to)
    part.add("tzname", transition.name)
    return part
