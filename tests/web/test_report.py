"""The branch report in the app carries the numbers ``softplace report`` computes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from icalendar import Calendar

from detector.intervals import Interval, State
from detector.report import Report
from softplace.storage.sqlite import SqliteStore
from softplace.timeutil import MS_PER_H, datetime_to_ms
from tests.web.conftest import Served
from tests.web.fixtures import FIRST, LAST, LIVE_COUNTS, SITE, WebData
from web import data
from web.charts import bar_chart, fill_for
from web.users import Role

Q = f"start={FIRST}&end={LAST}"
PARIS = ZoneInfo("Europe/Paris")


def test_report_api_is_the_cli_report(served: Served, expected: Report) -> None:
    with served.login(Role.MANAGER) as client:
        body = client.get(f"/api/sites/{SITE}/report?{Q}").json()
    assert Report.model_validate(body["report"]) == expected
    assert expected.rooms and expected.breaches and expected.under_used
    assert [h["room"] for h in body["heatmaps"]] == [
        p.room.id for p in served.data.registry.site(SITE).placed_rooms()]
    assert all(len(h["cells"]) == 168 for h in body["heatmaps"])


def test_report_weeks_sum_to_the_period(served: Served, expected: Report) -> None:
    with served.login(Role.MANAGER) as client:
        weeks = client.get(f"/api/sites/{SITE}/report?{Q}").json()["weeks"]
    assert [w["week"] for w in weeks] == ["2026-W47"]
    assert sum(w["idle_m2h"] for w in weeks) == pytest.approx(expected.total_idle_m2h)


def _values(html: str, chart: str) -> dict[str, float]:
    svg = re.search(rf'<svg id="{chart}".*?</svg>', html, re.S)
    assert svg is not None, chart
    return {k: float(v) for k, v in
            re.findall(r'data-key="([^"]+)" data-value="([^"]+)"', svg[0])}


def test_report_page_charts_show_the_report_numbers(served: Served, expected: Report) -> None:
    with served.login(Role.MANAGER) as client:
        html = client.get(f"/report?{Q}").text
    assert _values(html, "chart-rooms") == {r.room: r.utilisation_rate for r in expected.rooms}
    assert _values(html, "chart-floors") == {
        f"{s.level}:{s.space}": s.utilisation_rate for s in expected.rollups}
    for breach in expected.breaches:
        assert f"<td>{breach.start:%H:%M}</td><td>{breach.end:%H:%M}</td>" in html


def test_report_csv_rows_are_the_report_rows(served: Served, expected: Report) -> None:
    with served.login(Role.MANAGER) as client:
        response = client.get(f"/report.csv?{Q}")
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    rooms = {r["room"]: r for r in rows if r["section"] == "room"}
    assert {k: float(v["utilisation_rate"]) for k, v in rooms.items()} == {
        r.room: r.utilisation_rate for r in expected.rooms}
    assert sum(r["section"] == "breach" for r in rows) == len(expected.breaches)
    assert sum(r["section"] == "idle_slot" for r in rows) == len(expected.idle_slots)
    assert {r["room"] for r in rows if r["under_used"] == "1"} == {
        r.room for r in expected.under_used}


def test_report_slots_as_json_and_icalendar(served: Served, expected: Report) -> None:
    with served.login(Role.MANAGER) as client:
        slots = client.get(f"/api/sites/{SITE}/slots?{Q}").json()
        ics = client.get(f"/api/sites/{SITE}/slots.ics?{Q}&weeks=2")
    assert slots == [s.model_dump(mode="json") for s in expected.idle_slots]
    assert ics.headers["content-type"].startswith("text/calendar")
    events: list[Any] = Calendar.from_ical(ics.content).walk("VEVENT")
    assert len(events) == len(expected.idle_slots)
    assert {e["rrule"]["count"][0] for e in events} == {2}
    assert {e.decoded("dtstart").strftime("%H:%M") for e in events} == {
        s.start for s in expected.idle_slots}


def test_report_intervals_cover_each_room(served: Served) -> None:
    with served.login(Role.MANAGER) as client:
        rows = client.get(f"/api/sites/{SITE}/intervals?{Q}").json()
    assert {r["state"] for r in rows} >= {"occupied", "vacant"}
    assert all(r["start"] < r["end"] for r in rows)


def test_report_refuses_a_period_ending_before_it_starts(served: Served) -> None:
    with served.login(Role.MANAGER) as client:
        response = client.get(f"/api/sites/{SITE}/report?start={LAST}&end={FIRST}")
    assert response.status_code == 422


def test_report_unknown_site_is_404(served: Served) -> None:
    with served.login(Role.MANAGER) as client:
        assert client.get(f"/api/sites/nowhere/report?{Q}").status_code == 404


def _ms(hour: int, minute: int = 0) -> int:
    return datetime_to_ms(dt.datetime(2026, 11, 16, hour, minute, tzinfo=PARIS))


def test_heatmap_splits_an_interval_across_local_hours() -> None:
    intervals = [
        Interval("r", _ms(9, 30), _ms(10, 30), State.OCCUPIED, 2, 0),
        Interval("r", _ms(10, 30), _ms(11), State.VACANT, 0, 0),
        Interval("r", _ms(11), _ms(12), State.UNKNOWN, 0, 0),
    ]
    cells = {(c.weekday, c.hour): c.occupied_share for c in data.heatmap(intervals, PARIS)["r"]}
    assert cells[(0, 9)] == 1.0
    assert cells[(0, 10)] == 0.5
    assert cells[(0, 11)] is None  # unknown time is no evidence either way
    assert cells[(1, 9)] is None


def test_weeks_of_clips_iso_weeks_to_the_period() -> None:
    weeks = data.weeks_of(dt.date(2026, 11, 18), dt.date(2026, 11, 30))
    assert [(w, a.isoformat(), b.isoformat()) for w, a, b in weeks] == [
        ("2026-W47", "2026-11-18", "2026-11-22"), ("2026-W48", "2026-11-23", "2026-11-29"),
        ("2026-W49", "2026-11-30", "2026-11-30"),
    ]


def test_charts_scale_bars_and_colour_cells() -> None:
    chart = bar_chart([("a", "A", 0.5, "50 %"), ("b", "B", 1.0, "100 %")], max_value=1.0)
    assert chart.bars[1].width == 2 * chart.bars[0].width == chart.plot_width
    assert fill_for(None) != fill_for(0.0) != fill_for(1.0)


def test_live_api_states_each_room_now(served: Served) -> None:
    with served.login(Role.FACILITIES) as client:
        live = client.get(f"/api/sites/{SITE}/live").json()
    states = {r["room"]: r["state"] for r in live["rooms"]}
    expected = {room: "occupied" if n else "vacant" for room, n in LIVE_COUNTS.items()}
    assert states == {**expected, "meeting-b": "unknown", "office-3": "unknown",
                      "flat": "unknown"}
    meeting_b = next(r for r in live["rooms"] if r["room"] == "meeting-b")
    assert meeting_b["sensors"][0]["online"] is False
    # a state, never a head count
    assert {key for r in live["rooms"] for key in r} == {"room", "name", "state", "since",
                                                         "sensors"}


def test_live_state_unknown_when_stale_or_all_offline(web_data: WebData) -> None:
    store = SqliteStore(web_data.store_path)
    try:
        site = web_data.registry.site(SITE)
        end = datetime_to_ms(dt.datetime.combine(LAST + dt.timedelta(days=1), dt.time(0), PARIS))
        settings = web_data.settings.detector
        fresh = data.live_state(store, site, end, settings)
        stale = data.live_state(store, site, end + 2 * MS_PER_H, settings)
    finally:
        store.close()
    assert {r.state for r in fresh.rooms if r.sensors} <= {"occupied", "vacant"}
    assert {r.state for r in stale.rooms} == {"unknown"}
    assert fresh.sensors_online == sum(len(r.sensors) for r in fresh.rooms)
    hall = next(r for r in fresh.rooms if r.room == "hall")
    assert [(s.device, s.online, s.battery_pct) for s in hall.sensors] == [
        ("lyon-hall-door", True, 80.0), ("lyon-hall-radar", True, 79.0)]
