"""The marketplace's pure rules: windows, validation, free-now and ghost bookings."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bookings.core import (
    BookingRefusedError,
    FreeNow,
    Reading,
    WeeklySlot,
    Window,
    booking_use,
    check_request,
    concrete_windows,
    free_now,
    subtract,
)

PARIS = ZoneInfo("Europe/Paris")
MIN = 60_000
MONDAY_9 = round(dt.datetime(2026, 11, 23, 9, 0, tzinfo=PARIS).timestamp() * 1000)
HOLD = 15 * MIN


def test_concrete_windows_lays_weekly_slots_on_coming_days_and_cuts_the_current_one() -> None:
    slots = [WeeklySlot("mon", "08:30", "12:00"), WeeklySlot("tue", "14:00", "15:00")]
    found = concrete_windows(slots, PARIS, MONDAY_9, days=8)
    assert found[0] == Window(MONDAY_9, MONDAY_9 + 180 * MIN)
    assert found[1].start_ms == MONDAY_9 + (24 + 5) * 60 * MIN
    assert len(found) == 4  # mon, tue, next mon, next tue


def test_concrete_windows_whole_days_merge_across_midnight() -> None:
    slots = [WeeklySlot(day, "00:00", "24:00") for day in ("mon", "tue")]
    found = concrete_windows(slots, PARIS, MONDAY_9, days=1)
    tuesday_end = dt.datetime(2026, 11, 25, 0, 0, tzinfo=PARIS).timestamp() * 1000
    assert found == [Window(MONDAY_9, round(tuesday_end))]


def test_concrete_windows_drops_slots_already_over() -> None:
    assert concrete_windows([WeeklySlot("mon", "07:00", "08:00")], PARIS, MONDAY_9, 0) == []


def test_subtract_cuts_busy_periods_out() -> None:
    free = subtract([Window(0, 100)], [Window(20, 30), Window(90, 120)])
    assert free == [Window(0, 20), Window(30, 90)]


def _check(window: Window, attendance: int = 2, accepted: tuple[Window, ...] = ()) -> None:
    check_request(window, attendance, limit=10, offered=[Window(MONDAY_9, MONDAY_9 + 180 * MIN)],
                  accepted=accepted, now_ms=MONDAY_9, min_minutes=30, max_minutes=480)


def test_check_request_accepts_a_fitting_request() -> None:
    _check(Window(MONDAY_9, MONDAY_9 + 60 * MIN))


@pytest.mark.parametrize(("window", "attendance", "accepted", "message"), [
    (Window(MONDAY_9 - MIN, MONDAY_9 + 60 * MIN), 2, (), "already started"),
    (Window(MONDAY_9, MONDAY_9 + 10 * MIN), 2, (), "minutes"),
    (Window(MONDAY_9, MONDAY_9 + 60 * MIN), 11, (), "at most 10"),
    (Window(MONDAY_9 + 150 * MIN, MONDAY_9 + 200 * MIN), 2, (), "not inside"),
    (Window(MONDAY_9, MONDAY_9 + 60 * MIN), 2,
     (Window(MONDAY_9 + 59 * MIN, MONDAY_9 + 90 * MIN),), "overlaps"),
])
def test_check_request_refuses(window: Window, attendance: int,
                               accepted: tuple[Window, ...], message: str) -> None:
    with pytest.raises(BookingRefusedError, match=message):
        _check(window, attendance, accepted)


def _readings(counts: list[int], start: int, step_min: int = 5) -> list[Reading]:
    return [Reading(start + i * step_min * MIN, c) for i, c in enumerate(counts)]


def test_booking_use_flags_an_empty_booking_as_ghost() -> None:
    window = Window(MONDAY_9, MONDAY_9 + 60 * MIN)
    use = booking_use(window, _readings([0] * 12, MONDAY_9), hold_ms=HOLD, first_minutes=15,
                      min_share=0.2)
    assert use.ghost is True
    assert use.used_share == 0


def test_booking_use_counts_a_late_but_long_presence_as_used() -> None:
    window = Window(MONDAY_9, MONDAY_9 + 60 * MIN)
    counts = [0] * 4 + [3] * 8  # nobody for 20 min, then 40 min
    use = booking_use(window, _readings(counts, MONDAY_9), hold_ms=HOLD, first_minutes=15,
                      min_share=0.2)
    assert use.ghost is False


def test_booking_use_counts_an_early_presence_as_used() -> None:
    window = Window(MONDAY_9, MONDAY_9 + 60 * MIN)
    counts = [0, 2] + [0] * 10  # someone at minute 5 only
    use = booking_use(window, _readings(counts, MONDAY_9), hold_ms=HOLD, first_minutes=15,
                      min_share=0.2)
    assert use.ghost is False


def test_booking_use_without_readings_is_unknown() -> None:
    use = booking_use(Window(MONDAY_9, MONDAY_9 + 60 * MIN), [], hold_ms=HOLD,
                      first_minutes=15, min_share=0.2)
    assert use.ghost is None


def test_free_now_reports_free_after_a_quiet_half_hour_at_the_last_step() -> None:
    now = MONDAY_9 + 7 * MIN
    state = free_now(_readings([0] * 12, MONDAY_9 - 50 * MIN), now, quiet_minutes=30,
                     step_minutes=15, hold_ms=HOLD)
    assert state.state is FreeNow.FREE
    assert state.as_of_ms == MONDAY_9  # floored to the step, never the present minute


def test_free_now_hides_a_recent_presence_and_a_gap_alike() -> None:
    busy = _readings([0] * 8 + [1] + [0] * 3, MONDAY_9 - 60 * MIN)
    silent = _readings([0], MONDAY_9 - 60 * MIN)
    for readings in (busy, silent):
        state = free_now(readings, MONDAY_9, quiet_minutes=30, step_minutes=15, hold_ms=HOLD)
        assert state.state is FreeNow.NOT_REPORTED


def test_free_now_changes_only_at_step_boundaries() -> None:
    readings = _readings([0] * 20, MONDAY_9 - 60 * MIN)
    states = {free_now(readings, MONDAY_9 + m * MIN, quiet_minutes=30, step_minutes=15,
                       hold_ms=HOLD).as_of_ms for m in range(15)}
    assert states == {MONDAY_9}
