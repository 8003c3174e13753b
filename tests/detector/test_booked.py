"""The booked-time rule on the detector's records: breaches and idle slots account for
accepted bookings (used: not idle; ghost: still idle, flagged; ahead: not offered)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar
from rich.console import Console

from detector.batch import run_batch
from detector.booked import (
    BOOKED_TIME_RULE,
    BookedSpan,
    BookedUse,
    apply_to_breach,
    apply_to_breaches,
)
from detector.breaches import Breach
from detector.idle_slots import find_idle_slots, to_ical
from detector.measures import RoomRef
from detector.report import build_report, render_report
from detector.settings import DetectorSettings
from softplace.storage.base import Store
from tests.detector.helpers import (
    HOUR,
    LONDON,
    MIN,
    at,
    booking_sample,
    busy_weekdays,
    registry,
    scratch_store,
    site,
)
from tests.detector.test_idle_slots import FIRST_MON, WEEKS, _meet_intervals

MON = dt.date(2024, 3, 4)
MEET = RoomRef.of(site().room("meet"))


def _breach(day: dt.date, start: str, end: str) -> Breach:
    lo, hi = at(day, start), at(day, end)
    return Breach(MEET, day, lo, hi, hi - lo, 4 * HOUR)


def _span(day: dt.date, start: str, end: str, use: BookedUse) -> BookedSpan:
    return BookedSpan("meet", at(day, start), at(day, end), use)


OPENING = [(at(MON, "09:00"), at(MON, "17:00"))]


def test_booked_breach_untouched_without_bookings() -> None:
    breach = _breach(MON, "10:00", "17:00")
    assert apply_to_breach(breach, OPENING, []) == [breach]
    other_room = BookedSpan("office", at(MON, "11:00"), at(MON, "12:00"), BookedUse.USED)
    assert apply_to_breach(breach, OPENING, [other_room]) == [breach]


def test_booked_used_booking_cuts_the_breach_and_each_piece_is_measured_again() -> None:
    breach = _breach(MON, "10:00", "17:00")
    (after,) = apply_to_breach(breach, OPENING, [_span(MON, "11:00", "12:00", BookedUse.USED)])
    assert (after.start_ms, after.end_ms, after.vacant_ms) == (
        at(MON, "12:00"), at(MON, "17:00"), 5 * HOUR)  # 10:00-11:00 is under the limit
    assert not after.ghost_booked
    assert apply_to_breach(breach, OPENING, [_span(MON, "10:00", "14:00", BookedUse.USED)]) == []


def test_booked_ghost_booking_keeps_the_breach_and_flags_it() -> None:
    breach = _breach(MON, "10:00", "17:00")
    (flagged,) = apply_to_breach(breach, OPENING, [_span(MON, "11:00", "12:00", BookedUse.GHOST)])
    assert flagged.ghost_booked and flagged.vacant_ms == breach.vacant_ms
    # unknown and ahead bookings change nothing: the sensors decide
    for use in (BookedUse.UNKNOWN, BookedUse.AHEAD):
        assert apply_to_breach(breach, OPENING, [_span(MON, "11:00", "12:00", use)]) == [breach]


def test_booked_breach_cut_keeps_closed_time_out_of_the_vacancy() -> None:
    lunch = [(at(MON, "09:00"), at(MON, "12:00")), (at(MON, "13:00"), at(MON, "17:00"))]
    breach = Breach(MEET, MON, at(MON, "09:00"), at(MON, "17:00"), 7 * HOUR, 3 * HOUR)
    (piece,) = apply_to_breach(breach, lunch, [_span(MON, "09:00", "10:30", BookedUse.USED)])
    # 10:30-12:00 and 13:00-17:00 are vacant, the lunch hour is not counted
    assert (piece.start_ms, piece.end_ms, piece.vacant_ms) == (
        at(MON, "10:30"), at(MON, "17:00"), int(5.5 * HOUR))


def _meet_slots(booked: list[BookedSpan]) -> list[tuple[str, str, int, int]]:
    placed = site().room("meet")
    return [(s.start_text, s.end_text, s.weeks_vacant, s.ghost_weeks) for s in find_idle_slots(
        MEET, _meet_intervals(), name="Meeting", hours=placed.opening_hours, tz=LONDON,
        start=FIRST_MON, end=FIRST_MON + dt.timedelta(weeks=WEEKS),
        settings=DetectorSettings(), booked=booked)]


def test_booked_idle_slots_used_booking_is_not_idle_and_ghost_booking_still_is() -> None:
    assert _meet_slots([]) == [("14:00", "17:00", 9, 0)]
    week5 = FIRST_MON + dt.timedelta(weeks=5)
    used = _span(week5, "14:00", "15:00", BookedUse.USED)
    assert _meet_slots([used]) == [("15:00", "17:00", 9, 0)]  # 14:00-15:00 now 8 of 10
    ghost = _span(week5, "14:00", "15:00", BookedUse.GHOST)
    assert _meet_slots([ghost]) == [("14:00", "17:00", 9, 1)]


def test_booked_ahead_leaves_the_slot_feed_for_that_week() -> None:
    placed = site().room("meet")
    slots = find_idle_slots(
        MEET, _meet_intervals(), name="Meeting", hours=placed.opening_hours, tz=LONDON,
        start=FIRST_MON, end=FIRST_MON + dt.timedelta(weeks=WEEKS), settings=DetectorSettings())
    first = dt.date(2024, 3, 11)
    ahead = _span(first + dt.timedelta(weeks=1), "14:30", "15:30", BookedUse.AHEAD)
    calendar = Calendar.from_ical(to_ical(slots, LONDON, first, 4,
                                          dt.datetime(2024, 3, 10, tzinfo=dt.UTC), [ahead]))
    (event,) = calendar.walk("VEVENT")
    exdate: Any = event["EXDATE"]
    excluded = [d.dt for d in exdate.dts]
    assert excluded == [dt.datetime(2024, 3, 18, 14, 0, tzinfo=LONDON)]
    plain = Calendar.from_ical(to_ical(slots, LONDON, first, 4,
                                       dt.datetime(2024, 3, 10, tzinfo=dt.UTC)))
    assert "EXDATE" not in plain.walk("VEVENT")[0]


def _store() -> Store:
    """meet: busy 09:30-10:00 each weekday, so vacant 10:00-17:00 (a 7 h breach)."""
    store = busy_weekdays(scratch_store(), MON, {"meet": ("09:30", "10:00")})
    tue, wed = MON + dt.timedelta(days=1), MON + dt.timedelta(days=2)
    store.write([
        booking_sample(MON, "10:00", "14:00", BookedUse.USED),  # the rest is under the limit
        booking_sample(tue, "11:00", "12:00", BookedUse.GHOST),
        booking_sample(wed, "11:00", "12:00", BookedUse.USED),
        booking_sample(MON + dt.timedelta(days=3), "11:00", "12:00", BookedUse.UNKNOWN),
    ])
    return store


def test_booked_report_flags_ghosts_and_counts_booked_and_used_hours() -> None:
    store = _store()
    end = MON + dt.timedelta(days=4)
    report = build_report(store, registry(), "s1", MON, end, source="recompute")
    meet = {b.date: b for b in report.breaches if b.room == "meet"}
    assert MON not in meet  # booked and used 10:00-14:00: no longer idle long enough
    assert meet[MON + dt.timedelta(days=1)].ghost_booked  # ghost-booked: still a breach
    assert meet[MON + dt.timedelta(days=2)].start.hour == 12  # cut at the used booking
    assert not meet[MON + dt.timedelta(days=3)].ghost_booked  # unknown changes nothing
    b = report.bookings
    assert (b.booked, b.used, b.ghost, b.unknown, b.ahead) == (4, 2, 1, 1, 0)
    assert (b.booked_h, b.used_h) == (7.0, 5.0)
    assert b.rule == BOOKED_TIME_RULE
    slots = {s.weekday: s for s in report.idle_slots if s.room == "meet"}
    assert slots["tue"].ghost_weeks == 1 and slots["fri"].ghost_weeks == 0
    assert slots["mon"].start == "14:00"  # 10:00-14:00 was booked and used
    # the stored results read back the same way
    run_batch(store, registry(), "s1", MON, end + dt.timedelta(days=1))
    stored = build_report(store, registry(), "s1", MON, end)
    assert stored.source == "stored"
    assert stored.model_dump(exclude={"source"}) == report.model_dump(exclude={"source"})
    console = Console(record=True, width=160)
    render_report(stored, console)
    text = console.export_text()
    assert "ghost-booked" in text
    assert "Bookings: 4 over (7.0 h): 2 used (5.0 h booked and used), 1 ghost" in text


@settings(max_examples=200, deadline=None)
@given(
    cuts=st.lists(st.tuples(st.integers(0, 10 * 60), st.integers(1, 240),
                            st.sampled_from(list(BookedUse))), max_size=5),
    limit_min=st.integers(30, 6 * 60),
)
def test_booked_breach_pieces_are_vacant_outside_used_bookings_and_over_the_limit(
    cuts: list[tuple[int, int, BookedUse]], limit_min: int,
) -> None:
    lunch = [(at(MON, "08:00"), at(MON, "12:00")), (at(MON, "13:00"), at(MON, "18:00"))]
    breach = Breach(MEET, MON, at(MON, "08:00"), at(MON, "18:00"), 9 * HOUR, limit_min * MIN)
    booked = [BookedSpan("meet", at(MON, "08:00") + a * MIN, at(MON, "08:00") + (a + n) * MIN,
                         use) for a, n, use in cuts]
    used = [b for b in booked if b.use is BookedUse.USED]
    pieces = apply_to_breach(breach, lunch, booked)
    for p in pieces:
        assert breach.start_ms <= p.start_ms < p.end_ms <= breach.end_ms
        assert not any(u.overlaps(p.start_ms, p.end_ms) for u in used)
        inside = sum(max(0, min(p.end_ms, b) - max(p.start_ms, a)) for a, b in lunch)
        assert p.vacant_ms == inside > breach.limit_ms
        assert p.ghost_booked == any(g.overlaps(p.start_ms, p.end_ms) for g in booked
                                     if g.use is BookedUse.GHOST)
    assert all(a.end_ms <= b.start_ms for a, b in itertools.pairwise(pieces))
    # idempotent: the report applies the rule again to breaches stored under it
    assert apply_to_breaches(pieces, lambda _: lunch, booked) == pieces
    if not used:
        assert [(p.start_ms, p.end_ms, p.vacant_ms) for p in pieces] == [
            (breach.start_ms, breach.end_ms, breach.vacant_ms)]
