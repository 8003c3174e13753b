"""Idle-slot feeds: a VTIMEZONE that icalendar, vobject and recurring-ical-events expand
alike (and as zoneinfo does), no empty calendar, --weeks validated."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
import vobject
from dateutil.rrule import rrulestr

from detector.idle_slots import IdleSlot, to_ical
from detector.measures import RoomRef
from tests.detector.helpers import REGISTRY_YAML
from tests.honest_cli import softplace, store_env

REF = RoomRef("s", "b", "f", "r", "office", 20.0, 4, True)
STAMP = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _expansions(data: bytes) -> dict[str, list[dt.datetime]]:
    """Every occurrence's start in UTC, as each library reads the feed."""
    calendar: Any = icalendar.Calendar.from_ical(data)
    found: dict[str, list[dt.datetime]] = {}
    occurrences: list[Any] = recurring_ical_events.of(calendar).between(
        dt.date(2000, 1, 1), dt.date(2100, 1, 1))
    found["recurring-ical-events"] = sorted(
        event["DTSTART"].dt.astimezone(dt.UTC) for event in occurrences)
    parsed = vobject.readOne(data.decode())
    found["vobject"] = sorted(
        moment.astimezone(dt.UTC) for vevent in parsed.vevent_list
        for moment in vevent.getrruleset(addRDate=True))
    # icalendar's own reading of the VTIMEZONE (not zoneinfo's of the TZID)
    zone = calendar.walk("VTIMEZONE")[0].to_tz()
    events: list[Any] = calendar.walk("VEVENT")
    found["icalendar"] = sorted(
        moment.replace(tzinfo=zone).astimezone(dt.UTC)
        for event in events
        for moment in rrulestr(event["RRULE"].to_ical().decode(),
                               dtstart=event["DTSTART"].dt.replace(tzinfo=None)))
    return found


@pytest.mark.parametrize(("zone", "first_day"), [
    ("Europe/Paris", dt.date(2026, 3, 16)),  # spring forward inside the weeks offered
    ("Europe/Paris", dt.date(2026, 10, 12)),  # fall back
    ("America/New_York", dt.date(2026, 10, 19)),
    ("Australia/Sydney", dt.date(2026, 3, 23)),  # southern hemisphere: DST ends in April
    ("Asia/Tokyo", dt.date(2026, 3, 16)),  # no DST
])
def test_ical_vtimezone_expands_identically_in_three_libraries(
    zone: str, first_day: dt.date
) -> None:
    tz = ZoneInfo(zone)
    slots = [IdleSlot(REF, "R", 0, 9 * 60, 10 * 60, 8, 8),
             IdleSlot(REF, "R", 4, 14 * 60, 16 * 60, 8, 8)]
    data = to_ical(slots, tz, first_day, 6, STAMP)
    assert b"RRULE:FREQ=YEARLY" in data or zone == "Asia/Tokyo"
    assert b"RDATE" not in data
    truth = sorted(
        dt.datetime.combine(first_day + dt.timedelta(days=(s.weekday - first_day.weekday()) % 7
                                                     + 7 * week),
                            dt.time(s.start_minute // 60), tzinfo=tz).astimezone(dt.UTC)
        for s in slots for week in range(6))
    for library, starts in _expansions(data).items():
        assert starts == truth, library


def _slots_env(tmp_path: Path) -> dict[str, str]:
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY_YAML)
    from softplace.storage.sqlite import SqliteStore

    SqliteStore(tmp_path / "store.sqlite").close()  # a store without counts: no slot anywhere
    return store_env(tmp_path, SOFTPLACE_REGISTRY=str(registry))


def test_slots_without_any_slot_writes_no_calendar_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "feeds"
    outcome = softplace(capsys, _slots_env(tmp_path), "slots", "--site", "s1", "--from",
                        "2026-11-02", "--to", "2026-11-08", "--out", str(out))
    assert outcome.code == 0, outcome
    assert not list(out.glob("*.ics"))
    assert "no reliably idle slot, so no calendar, for: meet, office" in outcome.out


@pytest.mark.parametrize("weeks", ["0", "-3"])
def test_slots_refuses_weeks_below_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], weeks: str
) -> None:
    outcome = softplace(capsys, _slots_env(tmp_path), "slots", "--site", "s1", "--from",
                        "2026-11-02", "--to", "2026-11-08", "--out", str(tmp_path / "o"),
                        "--weeks", weeks)
    assert outcome.code == 2
    assert "--weeks" in outcome.err and ">=1" in outcome.err.replace(" ", "")
