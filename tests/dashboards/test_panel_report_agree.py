"""Grafana's utilisation panels and the report give the same figure for the same stored
measures: both a ratio of sums (person-hours over seat-hours observed), on the real influxd.

A week with a closed weekend is where a mean of daily rates and the ratio part: closed
days count 0 % in the mean and nothing in the ratio."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from dashboards.grafana_expand import Expansion, TimeRange, Variable, expand
from dashboards.panels import BRANCH
from detector.batch import run_site_batch
from detector.report import build_report
from softplace.storage.influx import InfluxStore
from tests.detector.helpers import LONDON, count_samples, minutely, registry, site

pytestmark = pytest.mark.services


def _monday_weeks_ago(weeks: int) -> dt.date:
    today = dt.datetime.now(LONDON).date()
    return today - dt.timedelta(days=today.weekday() + 7 * weeks)


def _panel_query(title: str) -> str:
    panel = next(p for p in BRANCH.panels if p.title == title)
    return panel.queries[0].text


def _run(store: InfluxStore, query: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{store.settings.url}/query", timeout=30,
                         params={"db": store.settings.database, "q": query, "epoch": "ms"})
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert "error" not in result, f"{query}: {result['error']}"
    rows = []
    for series in result.get("series", []):
        for values in series["values"]:
            rows.append({**series.get("tags", {}),
                         **dict(zip(series["columns"], values, strict=True))})
    return rows


def test_panel_utilisation_per_room_equals_the_report(influx_store: InfluxStore) -> None:
    s1 = site()
    monday = _monday_weeks_ago(2)
    start_ms = int(dt.datetime.combine(monday, dt.time(), LONDON).timestamp() * 1000)
    end_ms = start_ms + 7 * 86_400_000

    def busy(ms: int) -> int:  # mornings busy on Monday to Wednesday, the rest quiet
        local = dt.datetime.fromtimestamp(ms / 1000, LONDON)
        return 2 if local.weekday() < 3 and 9 <= local.hour < 12 else 0

    for room in ("meet", "office"):
        influx_store.write(count_samples(s1, room, minutely(start_ms, end_ms, busy)))
    run_site_batch(influx_store, s1, monday, monday + dt.timedelta(days=7))
    report = build_report(influx_store, registry(), "s1", monday,
                          monday + dt.timedelta(days=6), source="stored")
    expected = {r.room: r.utilisation_rate for r in report.rooms
                if r.available_h - r.unknown_h > 0}
    assert expected and all(0 < rate < 1 for rate in expected.values())

    variables = {
        "site": Variable("site", ("s1",)), "building": Variable("building", ("b1",)),
        "room": Variable("room", tuple(expected)),
        "band": Variable("band", ("opening",), multi=False, include_all=False),
    }
    context = Expansion(variables=variables, time_range=TimeRange(start_ms, end_ms),
                        now_ms=end_ms + 86_400_000)
    for title, column in (("Utilisation per room", "utilisation"),
                          ("Under-use ranking", "utilisation")):
        rows = _run(influx_store, expand(_panel_query(title), context))
        got = {row["room"]: row[column] for row in rows}
        assert got.keys() == expected.keys(), title
        for room, rate in expected.items():
            assert got[room] == pytest.approx(rate, abs=1e-9), (title, room)
    # per floor: the report's floor rollup and the panel over space_measure
    floors = {r.space: r.utilisation_rate for r in report.rollups if r.level == "floor"}
    assert floors
    rows = _run(influx_store, expand(_panel_query("Utilisation per floor"), context))
    (value_column,) = {k for row in rows for k in row} - {"building", "floor", "time"}
    got_floors = {f"s1/{row['building']}/{row['floor']}": row[value_column] for row in rows}
    assert got_floors == pytest.approx(floors, abs=1e-9)
    # and the mean of daily rates, the old query, would not have agreed
    mean_query = expand(
        'SELECT mean("utilisation_rate") AS "utilisation" FROM "derived"."room_measure"'
        ' WHERE "site" =~ /^$site$/ AND "room" =~ /^$room$/ AND "band" = \'opening\''
        ' AND $timeFilter GROUP BY "room"', context)
    means = {row["room"]: row["utilisation"] for row in _run(influx_store, mean_query)}
    assert any(abs(means[room] - rate) > 0.01 for room, rate in expected.items())
