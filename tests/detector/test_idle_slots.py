"""Idle-slot offers: reliable weekly vacancy, as iCalendar and JSON."""

from __future__ import annotations

import datetime as dt
import json

from icalendar import Calendar

from detector.idle_slots import IdleSlot, find_idle_slots, to_ical, to_json
from detector.intervals import Interval, State
from detector.measures import RoomRef
from detector.settings import DetectorSettings
from tests.detector.helpers import LONDON, at, site

FIRST_MON = dt.date(2024, 1, 1)
WEEKS = 10


def _meet_intervals() -> list[Interval]:
    """Mondays 14:00-17:00 vacant in 9 of 10 weeks; busy otherwise during opening hours."""
    intervals = []
    for week in range(WEEKS):
        day = FIRST_MON + dt.timedelta(weeks=week)
        for weekday in range(5):
            date = day + dt.timedelta(days=weekday)
            if weekday == 0 and week != 3:
                intervals += [Interval("meet", at(date, "09:00"), at(date, "14:00"),
                                       State.OCCUPIED, 2, 0),
                              Interval("meet", at(date, "14:00"), at(date, "17:00"),
                                       State.VACANT, 0, 0)]
            else:
                intervals.append(Interval("meet", at(date, "09:00"), at(date, "17:00"),
                                          State.OCCUPIED, 2, 0))
    return intervals


def _slots(min_share: float = 0.9) -> list[IdleSlot]:
    placed = site().room("meet")
    return list(find_idle_slots(
        RoomRef.of(placed), _meet_intervals(), name="Meeting", hours=placed.opening_hours,
        tz=LONDON, start=FIRST_MON, end=FIRST_MON + dt.timedelta(weeks=WEEKS),
        settings=DetectorSettings(idle_slot_min_share=min_share),
    ))


def test_idle_slots_reliable_weekly_window_is_offered() -> None:
    (slot,) = _slots()
    assert (slot.weekday, slot.start_text, slot.end_text) == (0, "14:00", "17:00")
    assert (slot.weeks_vacant, slot.weeks) == (9, 10)


def test_idle_slots_below_the_share_is_not_offered() -> None:
    assert _slots(min_share=0.95) == []


def test_idle_slots_ical_is_rfc5545_weekly_recurring_in_site_time() -> None:
    slots = _slots()
    data = to_ical(slots, LONDON, dt.date(2024, 3, 11), 4, dt.datetime(2024, 3, 10, tzinfo=dt.UTC))
    calendar = Calendar.from_ical(data)
    (event,) = calendar.walk("VEVENT")
    rule = event.decoded("rrule")  # a vRecur: a dict of lists
    assert rule["FREQ"] == ["WEEKLY"] and rule["BYDAY"] == ["MO"]
    assert event.decoded("dtstart") == dt.datetime(2024, 3, 11, 14, 0, tzinfo=LONDON)
    assert event.decoded("dtend") == dt.datetime(2024, 3, 11, 17, 0, tzinfo=LONDON)
    assert calendar.walk("VTIMEZONE")[0]["tzid"] == "Europe/London"
    assert b"UID:s1.meet.MO.14:00@softplace" in data


def test_idle_slots_json_names_room_day_and_share() -> None:
    (entry,) = json.loads(to_json(_slots(), "Europe/London"))["idle_slots"]
    assert entry["room"] == "meet" and entry["weekday"] == "mon"
    assert (entry["start"], entry["end"], entry["share_vacant"]) == ("14:00", "17:00", 0.9)
