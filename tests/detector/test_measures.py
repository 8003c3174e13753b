"""Hand-computed SMG measures: a plain day, DST days, unknown hours, no opening hours."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from detector.core import Results, SiteDetector
from detector.measures import RoomMeasure, rollup_days, rollup_period
from detector.settings import DetectorSettings
from tests.detector.helpers import HOUR, MIN, at, site

MON = dt.date(2024, 3, 4)


def _day(
    site_id: str, day: dt.date, rooms: dict[str, Callable[[int], int | None]],
    settings: DetectorSettings | None = None,
) -> Results:
    """Run one local day with a reading a minute per room (None = no reading)."""
    s = site(site_id)
    detector = SiteDetector(s, settings or DetectorSettings(), at(day))
    start, end = at(day), at(day + dt.timedelta(days=1))
    for room, count_at in rooms.items():
        for ts in range(start, end, MIN):
            count = count_at(ts)
            if count is not None:
                detector.push_reading(room, ts, count)
    detector.advance(end + HOUR)
    return detector.drain()


def _measure(results: Results, room: str, band: str = "opening") -> RoomMeasure:
    (found,) = [m for m in results.measures if m.room.room == room and m.band == band]
    return found


def test_measures_hand_computed_meeting_room_day() -> None:
    # two people 10:00-12:00, empty otherwise; open 09:00-17:00; capacity 4, 20 m²
    results = _day("s1", MON, {"meet": lambda t: 2 if at(MON, "10:00") <= t < at(MON, "12:00")
                               else 0})
    day = _measure(results, "meet").tally
    assert day.available_ms == 8 * HOUR
    assert day.used_ms == 2 * HOUR
    assert day.frequency_rate == pytest.approx(0.25)
    assert day.occupancy_rate == pytest.approx(0.5)
    assert day.utilisation_rate == pytest.approx(0.125)
    assert day.peak_count == 2
    assert day.idle_m2h == pytest.approx(20 * 6)
    morning = _measure(results, "meet", "morning").tally  # 09:00-13:00
    assert (morning.available_ms, morning.used_ms) == (4 * HOUR, 2 * HOUR)
    afternoon = _measure(results, "meet", "afternoon").tally
    assert afternoon.used_ms == 0
    assert afternoon.idle_m2h == pytest.approx(20 * 4)


def test_measures_unknown_hours_are_neither_used_nor_vacant() -> None:
    # sensor silent 13:00-15:00 (heartbeat 15 min: unknown 13:14..15:00), occupied 1 person
    # 09:00-11:00
    def count_at(t: int) -> int | None:
        if at(MON, "13:00") <= t < at(MON, "15:00"):
            return None
        return 1 if at(MON, "09:00") <= t < at(MON, "11:00") else 0

    day = _measure(_day("s1", MON, {"meet": count_at}), "meet").tally
    unknown = at(MON, "15:00") - (at(MON, "12:59") + 15 * MIN)
    assert day.unknown_ms == unknown
    assert day.used_ms + day.vacant_ms + day.unknown_ms == day.available_ms
    assert day.frequency_rate == pytest.approx(2 * HOUR / (8 * HOUR - unknown))


def test_measures_count_above_capacity_counts_as_full() -> None:
    day = _measure(_day("s1", MON, {"meet": lambda t: 9}), "meet").tally
    assert day.occupancy_rate == 1.0
    assert day.peak_count == 9


def test_measures_room_without_opening_hours_has_zero_rates() -> None:
    day = _measure(_day("s1", MON, {"store": lambda t: 1}), "store").tally
    assert (day.available_ms, day.frequency_rate, day.occupancy_rate, day.utilisation_rate,
            day.idle_m2h) == (0, 0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("day", "hours"), [(dt.date(2024, 3, 31), 23), (dt.date(2024, 10, 27), 25)],
    ids=["spring-forward", "fall-back"],
)
def test_measures_daylight_saving_day_length(day: dt.date, hours: int) -> None:
    results = _day("always", day, {"hall": lambda t: 0})
    measure = _measure(results, "hall").tally
    assert measure.available_ms == hours * HOUR
    assert measure.vacant_ms == hours * HOUR
    (interval,) = [i for i in results.intervals if i.room == "hall" and i.start_ms < at(
        day + dt.timedelta(days=1))]
    assert interval.end_ms - interval.start_ms == hours * HOUR


def test_measures_rollup_is_seat_weighted_and_utilisation_is_frequency_times_occupancy() -> None:
    results = _day("s1", MON, {
        "meet": lambda t: 4 if at(MON, "09:00") <= t < at(MON, "13:00") else 0,  # cap 4
        "office": lambda t: 1,  # cap 2, open 7 h
    })
    rollups = [r for r in rollup_days(results.measures) if r.band == "opening"]
    site_level = next(r.tally for r in rollups if r.level == "site")
    seat_used = 4 * 4 * HOUR + 2 * 7 * HOUR
    seat_observed = 4 * 8 * HOUR + 2 * 7 * HOUR
    assert site_level.frequency_rate == pytest.approx(seat_used / seat_observed)
    assert site_level.utilisation_rate == pytest.approx(
        site_level.frequency_rate * site_level.occupancy_rate
    )
    # housing (flat) and the room without data do not dilute the rollup's rates
    assert site_level.rooms == 3  # meet, office, store (flat is housing)
    floor_f1 = next(r for r in rollups if r.level == "floor" and r.floor == "f1")
    assert floor_f1.tally.rooms == 2
    period = rollup_period(results.measures, "opening")
    assert next(p.level for p in period) == "site"
