"""Local days in UTC milliseconds: midnights, opening windows and band windows.

Opening hours and bands are local clock times in the site's time zone; everything the
detector computes is in UTC milliseconds. The conversion of a local clock time is
``softplace.timeutil.local_ms``; this module builds each day's windows from it, so
daylight-saving days (23 h or 25 h) are handled once, by ``zoneinfo``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from detector.settings import Band
from softplace.registry import OpeningHours
from softplace.timeutil import local_date, local_ms

Window = tuple[int, int]  # [start_ms, end_ms) in UTC


def _intersect(a: list[tuple[int, int]], b: tuple[int, int]) -> list[tuple[int, int]]:
    result = []
    for start, end in a:
        lo, hi = max(start, b[0]), min(end, b[1])
        if lo < hi:
            result.append((lo, hi))
    return result


@dataclass(frozen=True, slots=True)
class DayPlan:
    """One local day of one room's calendar, in UTC ms."""

    date: dt.date
    start_ms: int
    end_ms: int
    opening: tuple[Window, ...]  # opening windows of the day, sorted
    bands: tuple[tuple[str, tuple[Window, ...]], ...]  # (band name, its available windows)

    @property
    def open_ms(self) -> int:
        return sum(end - start for start, end in self.opening)


class RoomCalendar:
    """Day plans for one (time zone, opening hours, bands) combination, cached by date."""

    def __init__(self, tz: ZoneInfo, opening_hours: OpeningHours, bands: tuple[Band, ...]) -> None:
        self.tz = tz
        self._hours = opening_hours
        self._bands = bands
        self._plan = lru_cache(maxsize=512)(self._make_plan)

    def plan(self, day: dt.date) -> DayPlan:
        return self._plan(day)

    def plan_at(self, ms: int) -> DayPlan:
        """The plan of the local day containing ``ms``."""
        return self._plan(local_date(ms, self.tz))

    def next_midnight(self, ms: int) -> int:
        """The first local midnight strictly after ``ms``."""
        return self.plan_at(ms).end_ms

    def date_of(self, ms: int) -> dt.date:
        return local_date(ms, self.tz)

    def _make_plan(self, day: dt.date) -> DayPlan:
        tz = self.tz
        opening_min = [(r.start_minute, r.end_minute) for r in self._hours.ranges(day.weekday())]
        bands = []
        for band in self._bands:
            minutes = (
                _intersect(opening_min, band.minutes) if band.within_opening_hours
                else [band.minutes]
            )
            windows = tuple(
                (local_ms(day, lo, tz), local_ms(day, hi, tz)) for lo, hi in minutes
            )
            bands.append((band.name, tuple((s, e) for s, e in windows if s < e)))
        opening = tuple(
            (s, e) for s, e in ((local_ms(day, lo, tz), local_ms(day, hi, tz))
                                for lo, hi in opening_min) if s < e
        )
        return DayPlan(
            date=day, start_ms=local_ms(day, 0, tz), end_ms=local_ms(day, 24 * 60, tz),
            opening=opening, bands=tuple(bands),
        )


def overlap(start: int, end: int, windows: tuple[Window, ...]) -> int:
    """Milliseconds of [start, end) inside the (sorted, disjoint) windows."""
    total = 0
    for lo, hi in windows:
        if hi <= start:
            continue
        if lo >= end:
            break
        total += min(end, hi) - max(start, lo)
    return total
