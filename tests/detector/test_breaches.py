"""Breaches: vacancies inside opening hours longer than the limit."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from detector.settings import DetectorSettings
from tests.detector.helpers import HOUR, at, clock
from tests.detector.test_measures import _day

MON = dt.date(2024, 3, 4)


def _busy_except(start: str, end: str) -> Callable[[int], int | None]:
    return lambda t: 0 if at(MON, start) <= t < at(MON, end) else 1


def test_breaches_half_day_is_the_default_limit() -> None:
    results = _day("s1", MON, {"meet": _busy_except("09:00", "13:30")})  # 4.5 h > 4 h
    (breach,) = [b for b in results.breaches if b.room.room == "meet"]
    assert (clock(breach.start_ms), clock(breach.end_ms)) == ("09:00", "13:30")
    assert (breach.vacant_ms, breach.limit_ms) == (4.5 * HOUR, 4 * HOUR)
    shorter = _day("s1", MON, {"meet": _busy_except("09:00", "12:59")})
    assert [b for b in shorter.breaches if b.room.room == "meet"] == []


def test_breaches_two_hour_option() -> None:
    settings = DetectorSettings(breach_limit_h=2)
    results = _day("s1", MON, {"meet": _busy_except("14:00", "16:30")}, settings)
    (breach,) = results.breaches
    assert breach.limit_ms == 2 * HOUR
    assert breach.vacant_ms == 2.5 * HOUR


def test_breaches_lunch_break_neither_counts_nor_ends_the_run() -> None:
    # office opens 09:00-12:00 and 13:00-17:00 (7 h, limit 3.5 h); empty 10:00-15:00
    results = _day("s1", MON, {"office": _busy_except("10:00", "15:00")})
    (breach,) = results.breaches
    assert breach.vacant_ms == 4 * HOUR  # 10-12 and 13-15
    assert (clock(breach.start_ms), clock(breach.end_ms)) == ("10:00", "15:00")


def test_breaches_housing_excluded_by_default() -> None:
    assert _day("s1", MON, {"flat": lambda t: 0}).breaches == []
    # housing has the site's opening hours here: included on request
    included = _day("s1", MON, {"flat": lambda t: 0}, DetectorSettings(include_housing=True))
    assert [b.room.room for b in included.breaches] == ["flat"]


def test_breaches_unknown_is_never_a_breach() -> None:
    # readings only outside opening hours: the open day is unknown, not vacant
    def count_at(t: int) -> int | None:
        return 0 if t < at(MON, "08:00") or t >= at(MON, "18:00") else None

    results = _day("s1", MON, {"meet": count_at})
    assert results.breaches == []


def test_breaches_settings_reject_a_bad_limit() -> None:
    with pytest.raises(ValueError, match="breach_limit_h"):
        DetectorSettings(breach_limit_h=0)
