"""The provisioned alert rules: each rule's query run against the real influxd on data that
must fire it and data that must not, and, for the rules that alert on no data, on silence.
The condition is read from the generated rule (its reduce and threshold expressions, its
no-data state), so the test checks what Grafana will evaluate, not a copy of it. The
optional Prometheus rules are evaluated by the real promtool."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from grafana_foundation_sdk.models import alerting as alerting_model

from dashboards import alerts
from dashboards.grafana_expand import Expansion, TimeRange, expand
from detector.batch import run_batch
from detector.booked import BookedUse
from softplace.storage.base import Sample
from softplace.storage.influx import InfluxStore
from tests.detector.helpers import LONDON, at, booking_sample, count_samples, registry, site

MIN_MS = 60_000
HOUR_MS = 60 * MIN_MS
Rows = Callable[[int], list[Sample]]


def _models(alert: alerts.Alert) -> dict[str, dict[str, Any]]:
    return {q["refId"]: q["model"] for q in alerts.rule_json(alert)["data"]}


REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "last": lambda v: v[-1], "max": max, "min": min, "sum": sum,
    "mean": lambda v: sum(v) / len(v), "count": lambda v: float(len(v)),
}


def _reduce(values: list[float], reducer: str) -> float:
    return REDUCERS[reducer](values)


def _fires(value: float, evaluator: dict[str, Any]) -> bool:
    params = [float(p) for p in evaluator["params"]]
    if evaluator["type"] == "outside_range":  # Grafana: x < low or x > high
        return value < params[0] or value > params[1]
    return value > params[0] if evaluator["type"] == "gt" else value < params[0]


NO_DATA: tuple[str, ...] = ()  # the label set of an alert fired by no data at all


def _firing(store: InfluxStore, alert: alerts.Alert, now_ms: int) -> set[tuple[str, ...]]:
    """The label sets the rule fires for: query A on influxd over the rule's relative time
    range, reduced by B, held to C; no series at all is the rule's noDataState."""
    models = _models(alert)
    window_min = alerts.rule_json(alert)["data"][0]["relativeTimeRange"]["from"] // 60
    query = expand(models[alerts.QUERY]["query"],
                   Expansion({}, TimeRange(f"now-{window_min}m", "now"), now_ms))
    response = httpx.get(f"{store.settings.url}/query", timeout=30, params={
        "db": store.settings.database, "q": query, "epoch": "ms"})
    assert response.status_code == 200, response.text
    result = response.json()["results"][0]
    assert "error" not in result, f"{query}: {result}"
    fired = set()
    if not result.get("series") and alerts.rule_json(alert)["noDataState"] == "Alerting":
        fired.add(NO_DATA)
    for series in result.get("series", []):
        values = [float(row[1]) for row in series["values"] if row[1] is not None]
        if not values:
            continue
        reduced = _reduce(values, models[alerts.REDUCED]["reducer"])
        if _fires(reduced, models[alerts.CONDITION]["conditions"][0]["evaluator"]):
            fired.add(tuple(sorted(series.get("tags", {}).values())))
    return fired


def _health(device: str, online: int, battery: float, t: int) -> Sample:
    return Sample("sensor_health", {"site": "s1", "device": device, "room": "r1"},
                  {"online": online, "last_seen": t / 1000, "battery_pct": battery}, t)


def _breach(room: str, t: int) -> Sample:
    return Sample("breach", {"site": "s1", "building": "b", "floor": "f", "room": room,
                             "kind": "office"},
                  {"duration_s": 5 * 3600.0, "limit_s": 4 * 3600.0, "end_ms": t + 5 * HOUR_MS},
                  t)


def _deadletters(n: int, now: int) -> list[Sample]:
    return [Sample("deadletter", {"site": "s1", "reason": "unknown_device"},
                   {"n": 1, "topic": "softplace/v1/s1/dev/x/reading"}, now - (i + 1) * 1000)
            for i in range(n)]


def _gateway(site: str, backlog_s: float, t: int) -> Sample:
    return Sample("gateway_status", {"site": site}, {"backlog_s": backlog_s, "upstream": 1}, t)


def _detector(site: str, lag_s: float, t: int) -> Sample:
    return Sample("detector_status", {"site": site},
                  {"lag_s": lag_s, "checkpoint_age_s": 10.0, "late_readings": 0}, t)


# uid -> (points that fire it, the label set expected, points that must not fire it)
CASES: dict[str, tuple[Rows, tuple[str, ...], Rows]] = {
    "softplace-sensor-offline": (
        lambda now: [_health("d-off", 0, 80, now - m * MIN_MS) for m in range(1, 40, 5)],
        ("d-off", "s1"),
        # came back online ten minutes ago: still within the window, so not offline throughout
        lambda now: [_health("d-back", 1 if m <= 10 else 0, 80, now - m * MIN_MS)
                     for m in range(1, 40, 5)],
    ),
    "softplace-battery-low": (
        lambda now: [_health("d-low", 1, 30, now - 2 * HOUR_MS),
                     _health("d-low", 1, 15, now - MIN_MS)],
        ("d-low", "s1"),
        # low long ago, since replaced: the last reading counts
        lambda now: [_health("d-new", 1, 10, now - 3 * HOUR_MS),
                     _health("d-new", 1, 95, now - MIN_MS)],
    ),
    "softplace-deadletters-high": (
        lambda now: _deadletters(alerts.DEADLETTERS_PER_HOUR + 5, now),
        ("s1",),
        lambda now: [*_deadletters(alerts.DEADLETTERS_PER_HOUR - 5, now),
                     *[Sample("deadletter", {"site": "s1", "reason": "schema"},
                              {"n": 1, "topic": "t"}, now - 2 * HOUR_MS - i * 1000)
                       for i in range(50)]],  # a burst two hours ago is outside the window
    ),
    "softplace-breach-today": (
        lambda now: [_breach("r-breach", now - 3 * HOUR_MS)],
        ("r-breach", "s1"),
        lambda now: [_breach("r-old", now - 30 * HOUR_MS)],  # yesterday's
    ),
    "softplace-outbox-growing": (
        # upstream was cut 20 min ago and is back: the queued statuses arrive, their backlog
        # growing one minute per minute up to the live one
        lambda now: [_gateway("s1", (20 - m) * 60.0, now - m * MIN_MS - 5000)
                     for m in range(14)],
        ("s1",),
        # a busy outbox that drains (a minute's backlog now and then), and an outage two
        # days ago
        lambda now: [*[_gateway("s1", 60.0 if m % 4 == 0 else 0.0, now - m * MIN_MS - 5000)
                       for m in range(14)],
                     _gateway("s1", 5000.0, now - 48 * HOUR_MS)],
    ),
    "softplace-detector-lag": (
        lambda now: [_detector("s1", 120.0 + 60 * (40 - m), now - m * MIN_MS - 5000)
                     for m in range(10)],
        ("s1",),
        # caught up again after a long catch-up
        lambda now: [_detector("s1", 5000.0, now - 9 * MIN_MS),
                     *[_detector("s1", 130.0, now - m * MIN_MS - 5000) for m in range(8)]],
    ),
}
INFLUX_ALERTS = [a for a in alerts.ALERTS if a.source == "influxdb"]
NO_DATA_ALERTS = [a for a in INFLUX_ALERTS if a.no_data == "Alerting"]


@pytest.mark.parametrize("path", list(alerts.FILES), ids=lambda p: p.name)
def test_alert_rules_committed_file_is_current_and_stable(path: Path) -> None:
    assert alerts.render(path) == alerts.render(path)
    assert not alerts.stale(path), "stale: run python -m dashboards.alerts"
    data = yaml.safe_load(path.read_text())
    rules = data["groups"][0]["rules"]
    assert [r["uid"] for r in rules] == [a.uid for a in alerts.FILES[path][0]]
    for provisioned in rules:
        assert provisioned["condition"] == alerts.CONDITION
        # Grafana interpolates $VARS in provisioned labels (not in the query model): none here
        loaded = alerting_model.Rule.from_json(provisioned)  # the SDK's typed model reads it
        assert loaded.uid == provisioned["uid"] and len(loaded.data) == 3
        outside_model = {k: v for k, v in provisioned.items() if k != "data"}
        assert "$" not in json.dumps(outside_model), provisioned["uid"]
        assert {q["refId"] for q in provisioned["data"]} == {"A", "B", "C"}


def test_alert_rules_provisioned_set_queries_only_influxdb() -> None:
    # compose deploys no Prometheus: a provisioned rule on one could never be evaluated
    assert list(alerts.ALERTS) == INFLUX_ALERTS
    assert not (alerts.PROVISIONING_FILE.parent.parent / "datasources" / "prometheus.yaml"
                ).exists()
    assert {a.source for a in alerts.PROMETHEUS_ALERTS} == {"prometheus"}
    assert {a.uid for a in NO_DATA_ALERTS} == {"softplace-outbox-growing",
                                                "softplace-detector-lag"}


def test_alert_rules_every_influx_rule_has_a_case() -> None:
    assert {a.uid for a in INFLUX_ALERTS} == set(CASES)


@pytest.mark.services
@pytest.mark.parametrize("alert", INFLUX_ALERTS, ids=lambda a: a.uid)
def test_alert_rules_influx_query_fires_on_its_fault_only(
    influx_store: InfluxStore, alert: alerts.Alert,
) -> None:
    fire, labels, quiet = CASES[alert.uid]
    now_ms = int(time.time() * 1000)
    influx_store.write(quiet(now_ms))
    assert _firing(influx_store, alert, now_ms) == set()
    influx_store.write(fire(now_ms))
    assert _firing(influx_store, alert, now_ms) == {labels}


@pytest.mark.services
def test_alert_rules_breach_today_sees_breaches_under_the_booked_time_rule(
    influx_store: InfluxStore,
) -> None:
    """On the breaches the detector stores (the alert looks back from the real now, so the
    day is today, at a site open around the clock): a ghost-booked vacancy fires "breach
    today", the same vacancy booked and used does not (what it leaves is under the limit)."""
    today = dt.datetime.now(LONDON).date()
    lo = at(today)
    hall = site("always")
    influx_store.write(count_samples(hall, "hall", [
        (t, 2 if t < at(today, "00:30") else 0) for t in range(lo, lo + 24 * HOUR_MS + 30 * MIN_MS,
                                                              MIN_MS)]))
    alert = next(a for a in INFLUX_ALERTS if a.uid == "softplace-breach-today")
    now_ms = int(time.time() * 1000)
    for use, fired in ((BookedUse.GHOST, {("always", "hall")}), (BookedUse.USED, set())):
        influx_store.write([booking_sample(today, "00:30", "13:00", use, "hall", "always")])
        run_batch(influx_store, registry(), "always", today, today + dt.timedelta(days=1))
        assert _firing(influx_store, alert, now_ms) == fired, use


def _moved(samples: list[Sample], site: str, by_ms: int) -> list[Sample]:
    return [Sample(s.series, {**s.tags, "site": site}, s.fields, s.time_ms + by_ms)
            for s in samples]


@pytest.mark.services
@pytest.mark.parametrize("alert", NO_DATA_ALERTS, ids=lambda a: a.uid)
def test_alert_rules_status_silence_fires(influx_store: InfluxStore, alert: alerts.Alert) -> None:
    """A gateway cut from upstream (its statuses wait in its outbox) or a stopped detector:
    its statuses stopping is the alert, however healthy the last one was, for one site among
    others still reporting as for the only one."""
    quiet = CASES[alert.uid][2]
    now_ms = int(time.time() * 1000)
    assert _firing(influx_store, alert, now_ms) == {NO_DATA}  # nothing at all
    influx_store.write(quiet(now_ms))  # s1 reports
    assert _firing(influx_store, alert, now_ms) == set()
    influx_store.write(_moved(quiet(now_ms), "s2", -11 * MIN_MS))  # s2 stopped 11 min ago
    assert _firing(influx_store, alert, now_ms) == {("s2",)}


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool missing: install Debian's prometheus (scripts/test.sh does)",
                    pytrace=False)
    return found


# uid -> (series that fire it, series that must not), promtool's input_series notation
PROM_CASES: dict[str, tuple[str, str, dict[str, str]]] = {
    "softplace-prometheus-outbox-growing": ("0+10x40", "500+0x40", {"site": "s1"}),
    "softplace-prometheus-detector-lag": ("2000+0x40", "120+0x40", {}),  # max(): no label
}
PROM_METRICS = {"softplace-prometheus-outbox-growing": "softplace_outbox_messages",
                "softplace-prometheus-detector-lag": "softplace_detector_lag_seconds"}


@pytest.mark.services  # runs a subprocess
@pytest.mark.parametrize("alert", alerts.PROMETHEUS_ALERTS, ids=lambda a: a.uid)
def test_alert_rules_prometheus_query_fires_on_its_fault_only(
    tmp_path: Path, alert: alerts.Alert,
) -> None:
    models = _models(alert)
    evaluator = models[alerts.CONDITION]["conditions"][0]["evaluator"]
    op = {"gt": ">", "lt": "<"}[evaluator["type"]]
    rules = {"groups": [{"name": "softplace", "rules": [{
        "alert": alert.uid, "expr": f"({models[alerts.QUERY]['expr']}) {op} "
                                    f"{evaluator['params'][0]}", "for": alert.pending}]}]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    fire, quiet, labels = PROM_CASES[alert.uid]
    metric = PROM_METRICS[alert.uid]
    tests = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": [
        {"interval": "1m", "input_series": [{"series": f'{metric}{{site="s1"}}', "values": fire}],
         "alert_rule_test": [{"eval_time": "35m", "alertname": alert.uid,
                              "exp_alerts": [{"exp_labels": labels}]}]},
        {"interval": "1m", "input_series": [{"series": f'{metric}{{site="s1"}}', "values": quiet}],
         "alert_rule_test": [{"eval_time": "35m", "alertname": alert.uid, "exp_alerts": []}]},
    ]}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    done = subprocess.run([_promtool(), "test", "rules", "tests.yaml"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
