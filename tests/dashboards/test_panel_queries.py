"""Every panel and variable query of the committed dashboards, run against a real influxd.

No Grafana here: the queries are taken from ``dashboards/json/*.json``, expanded the way
Grafana's InfluxDB data source expands them (``dashboards.grafana_expand``) for several
selections and time ranges, and sent to influxd's HTTP API. Each must answer without
error, with rows, and with the column types the panel expects.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dashboards.build import load_committed
from dashboards.grafana_expand import ALL, Expansion, TimeRange, Variable, expand
from dashboards.panels import DASHBOARDS
from dashboards.spec import Query
from softplace.schema import SERIES
from softplace.storage.influx import InfluxStore
from tests.dashboards.demo_data import SELECTED, all_samples

pytestmark = pytest.mark.services

PROVISIONING = Path(__file__).parents[2] / "dashboards" / "provisioning"
PIXELS_PER_COLUMN = 1920 // 24  # Grafana's maxDataPoints defaults to the panel's width


def _datasource_min_interval() -> str:
    data = yaml.safe_load((PROVISIONING / "datasources" / "softplace.yaml").read_text())
    return str(data["datasources"][0]["jsonData"]["timeInterval"])


def _specs() -> dict[tuple[str, str, str], Query]:
    specs = {}
    for dashboard in DASHBOARDS:
        for panel in dashboard.panels:
            for index, query in enumerate(panel.queries):
                specs[dashboard.uid, panel.title, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[index]] = query
    return specs


@dataclass(frozen=True)
class Selection:
    name: str
    values: Mapping[str, tuple[str, ...]]  # variable -> selected values; missing = All
    absolute: bool = False


SELECTIONS = (
    Selection("all", {}),
    Selection("one-room", {k: (v,) for k, v in SELECTED.items()}, absolute=True),
    Selection("two-sites", {"site": ("branch.lyon", "nantes")}),
)


def _influxql(store: InfluxStore, query: str) -> dict[str, Any]:
    response = httpx.get(
        f"{store.settings.url}/query",
        params={"db": store.settings.database, "q": query, "epoch": "ms"},
        timeout=30,
    )
    assert response.status_code == 200, f"{query}\n-> HTTP {response.status_code}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


def _rows(body: Mapping[str, Any]) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
    for series in body["results"][0].get("series", []):
        for values in series["values"]:
            yield series.get("tags", {}), dict(zip(series["columns"], values, strict=True))


def _type_ok(value: Any, kind: str) -> bool:
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    return isinstance(value, bool)


def result_problems(body: Mapping[str, Any], query: Query) -> list[str]:
    """What is wrong with an InfluxDB answer for this panel query (empty list: fine)."""
    result = body["results"][0]
    if "error" in result:
        return [f"error: {result['error']}"]
    rows = list(_rows(body))
    if not rows:
        return ["no rows"]
    problems = []
    filled: set[str] = set()
    columns: set[str] = set()
    for tags, row in rows:
        for name, kind in query.columns.items():
            if name in tags and not _type_ok(tags[name], kind):
                problems.append(f"tag {name}={tags[name]!r} is not a {kind}")
        if query.text.startswith("SELECT") and not isinstance(row.get("time"), int):
            problems.append(f"time {row.get('time')!r} is not epoch ms")
        for name, value in row.items():
            if name == "time":
                continue
            columns.add(name)
            kind = query.columns.get(name, "number")
            if value is not None:
                filled.add(name)
                if not _type_ok(value, kind):
                    problems.append(f"column {name}={value!r} is not a {kind}")
    problems += [f"column {name} is always null" for name in sorted(columns - filled)]
    tag_names = {name for tags, _ in rows for name in tags}
    problems += [f"expected column {name} is missing" for name in query.columns
                 if name not in columns | tag_names]
    return sorted(set(problems))


def _variables(model: Mapping[str, Any], selection: Selection) -> dict[str, Variable]:
    result = {}
    for item in model["templating"]["list"]:
        # the SDK leaves out "current" and "allValue" when unset, as Grafana reads them
        current = item.get("current") or {}
        default = (current["value"],) if current.get("value") else (ALL,)
        result[item["name"]] = Variable(
            name=item["name"],
            values=selection.values.get(item["name"], default),
            multi=item["multi"], include_all=item["includeAll"],
            all_value=item.get("allValue"),
        )
    return result


def _range(model: Mapping[str, Any], panel: Mapping[str, Any], selection: Selection,
           now_ms: int) -> TimeRange:
    start = f"now-{panel['timeFrom']}" if panel.get("timeFrom") else model["time"]["from"]
    end = model["time"]["to"]
    if selection.absolute:
        relative = TimeRange(start, end)
        low, high = relative.bounds_ms(now_ms)
        return TimeRange(low, high)
    return TimeRange(start, end)


@pytest.fixture
def loaded_store(influx_store: InfluxStore) -> tuple[InfluxStore, int]:
    now_ms = int(time.time() * 1000)
    influx_store.write(all_samples(now_ms))
    return influx_store, now_ms


COMMITTED = load_committed()


@pytest.mark.parametrize("filename", sorted(COMMITTED))
def test_panel_queries_answer_with_typed_rows(
    filename: str, loaded_store: tuple[InfluxStore, int]
) -> None:
    store, now_ms = loaded_store
    model = COMMITTED[filename]
    specs = _specs()
    min_interval = _datasource_min_interval()
    failures = []
    ran = 0
    for selection in SELECTIONS:
        variables = _variables(model, selection)
        for panel in model["panels"]:
            for target in panel["targets"]:
                spec = specs[model["uid"], panel["title"], target["refId"]]
                assert target["query"] == spec.text, "committed JSON is stale"
                context = Expansion(
                    variables=variables,
                    time_range=_range(model, panel, selection, now_ms),
                    now_ms=now_ms,
                    max_data_points=panel["gridPos"]["w"] * PIXELS_PER_COLUMN,
                    min_interval=panel.get("interval") or min_interval,
                )
                query = expand(target["query"], context)
                assert not re.search(r"\$\w|\$\{|\[\[", query), f"unexpanded: {query}"
                ran += 1
                for problem in result_problems(_influxql(store, query), spec):
                    failures.append(f"[{selection.name}] {panel['title']} {target['refId']}:"
                                    f" {problem}\n    {query}")
    assert ran > 0
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("filename", sorted(COMMITTED))
def test_variable_queries_chain_and_list_the_selected_values(
    filename: str, loaded_store: tuple[InfluxStore, int]
) -> None:
    store, now_ms = loaded_store
    model = COMMITTED[filename]
    selection = SELECTIONS[1]
    variables = _variables(model, selection)
    for item in model["templating"]["list"]:
        assert item["type"] == "query"
        context = Expansion(variables=variables, time_range=TimeRange("now-1h", "now"),
                            now_ms=now_ms)
        query = expand(item["query"], context)
        body = _influxql(store, query)
        assert "error" not in body["results"][0], f"{query}: {body}"
        values = {row["value"] for _, row in _rows(body)}
        assert SELECTED[item["name"]] in values, f"{query} -> {sorted(values)}"
        if item["name"] == "room":  # chained: only the selected site's and building's rooms
            assert values == {"hall", "meeting-a"}, values


def test_demo_data_covers_every_stored_series() -> None:
    written = {sample.series for sample in all_samples(int(time.time() * 1000))}
    assert written == set(SERIES), f"add demo points for {sorted(set(SERIES) - written)}"
