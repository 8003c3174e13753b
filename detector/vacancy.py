"""Vacancy intervals and each day's longest vacancy inside opening hours: what a regulator
checking the half-day rule asks for first (``softplace intervals``).

Pure: intervals and opening hours in, rows out; the command renders them as a table, CSV
or JSON.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from detector.intervals import Interval, State
from softplace.registry import OpeningHours
from softplace.timeutil import MS_PER_H, local_ms, ms_to_datetime


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VacancyRow(_Row):
    """One vacant interval (clipped to the requested days)."""

    room: str
    start: dt.datetime
    end: dt.datetime
    hours: float


class LongestRow(_Row):
    """A room's longest vacancy inside opening hours on one open day (0 h when none)."""

    room: str
    date: dt.date
    open_h: float
    longest_h: float
    start: dt.datetime | None
    end: dt.datetime | None


class VacancyListing(_Row):
    site: str
    timezone: str
    start: dt.date
    end: dt.date  # inclusive
    intervals: list[VacancyRow]
    longest: list[LongestRow]


def vacancy_rows(
    room: str, intervals: Iterable[Interval], tz: ZoneInfo, lo_ms: int, hi_ms: int
) -> list[VacancyRow]:
    rows = []
    for interval in sorted(intervals, key=lambda i: i.start_ms):
        if interval.state is not State.VACANT or interval.room != room:
            continue
        start, end = max(interval.start_ms, lo_ms), min(interval.end_ms, hi_ms)
        if end > start:
            rows.append(VacancyRow(room=room, start=ms_to_datetime(start, tz),
                                   end=ms_to_datetime(end, tz), hours=(end - start) / MS_PER_H))
    return rows


def longest_per_day(
    room: str, intervals: Sequence[Interval], hours: OpeningHours, tz: ZoneInfo,
    first: dt.date, last: dt.date,
) -> list[LongestRow]:
    """For each open day ``first`` .. ``last``: the longest vacant stretch inside one
    opening period (a vacancy across a lunch closure counts per period, as breaches do)."""
    vacant = sorted((i for i in intervals if i.state is State.VACANT and i.room == room),
                    key=lambda i: i.start_ms)
    rows = []
    day = first
    while day <= last:
        periods = hours.ranges(day.weekday())
        if periods:
            best, best_span = 0, (0, 0)
            open_ms = 0
            for period in periods:
                lo = local_ms(day, period.start_minute, tz)
                hi = local_ms(day, period.end_minute, tz)
                open_ms += hi - lo
                run_start, run_end = 0, 0
                for interval in vacant:  # adjacent vacant intervals make one stretch
                    start, end = max(interval.start_ms, lo), min(interval.end_ms, hi)
                    if end <= start:
                        continue
                    if start > run_end:
                        run_start = start
                    run_end = end
                    if run_end - run_start > best:
                        best, best_span = run_end - run_start, (run_start, run_end)
            rows.append(LongestRow(
                room=room, date=day, open_h=open_ms / MS_PER_H, longest_h=best / MS_PER_H,
                start=ms_to_datetime(best_span[0], tz) if best else None,
                end=ms_to_datetime(best_span[1], tz) if best else None,
            ))
        day += dt.timedelta(days=1)
    return rows


INTERVAL_COLUMNS = ("room", "start", "end", "hours")
LONGEST_COLUMNS = ("room", "date", "open_h", "longest_h", "start", "end")


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def to_csv_rows(rows: Sequence[_Row], columns: Sequence[str]) -> list[list[str]]:
    return [list(columns), *([_cell(getattr(r, c)) for c in columns] for r in rows)]
