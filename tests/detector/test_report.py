"""The report: under-use ranking, breaches and idle slots; stored equals recomputed."""

from __future__ import annotations

import datetime as dt

from rich.console import Console

from detector.batch import run_batch
from detector.report import build_report, render_report
from detector.settings import DetectorSettings
from softplace.storage.base import Store
from tests.detector.helpers import (
    HOUR,
    at,
    busy_weekdays,
    count_samples,
    registry,
    scratch_store,
    site,
)

MON = dt.date(2024, 3, 4)


def _store() -> Store:
    return busy_weekdays(scratch_store(), MON,
                         {"meet": ("09:30", "10:00"), "office": ("09:00", "17:00")})


def test_report_ranks_under_used_rooms_and_lists_breaches() -> None:
    report = build_report(_store(), registry(), "s1", MON, MON + dt.timedelta(days=4))
    assert report.source == "recomputed"
    assert [r.room for r in report.under_used] == ["meet"]  # office is full all day
    meet = report.under_used[0]
    assert meet.idle_m2h == 20 * 7.5 * 5
    assert len(report.breaches) == 5  # meet, 10:00-17:00 every day
    assert all(b.room == "meet" and b.vacant_h == 7 for b in report.breaches)
    assert {s.weekday for s in report.idle_slots if s.room == "meet"} == {
        "mon", "tue", "wed", "thu", "fri"}
    assert "flat" not in {r.room for r in report.under_used}  # housing excluded


def test_report_from_stored_results_equals_recomputed() -> None:
    store = _store()
    end = MON + dt.timedelta(days=4)
    recomputed = build_report(store, registry(), "s1", MON, end, source="recompute")
    run_batch(store, registry(), "s1", MON, end + dt.timedelta(days=1))
    stored = build_report(store, registry(), "s1", MON, end)
    assert stored.source == "stored"
    assert stored.model_dump(exclude={"source"}) == recomputed.model_dump(exclude={"source"})


def test_report_renders_text_and_json() -> None:
    report = build_report(_store(), registry(), "s1", MON, MON + dt.timedelta(days=4),
                          settings=DetectorSettings(breach_limit_h=2))
    console = Console(record=True, width=140)
    render_report(report, console)
    text = console.export_text()
    assert "Under-used rooms (1)" in text and "Breaches (5)" in text and "2 h" in text
    assert '"under_used"' in report.model_dump_json()
    assert "warning" not in text  # full coverage


def test_report_warns_when_sensors_were_mostly_silent() -> None:
    store = scratch_store()
    start = at(MON)
    # one reading at 09:00 on Monday, then silence for the rest of the week
    store.write(count_samples(site(), "meet", [(start + 9 * HOUR, 0)]))
    report = build_report(store, registry(), "s1", MON, MON + dt.timedelta(days=4))
    console = Console(record=True, width=140)
    render_report(report, console)
    assert "warning: sensors were offline or silent" in console.export_text()
