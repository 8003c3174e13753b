"""The committed dashboard JSON is what the code generates, and is well formed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from click.testing import CliRunner
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import dashboard as sdk_model

from dashboards import build
from dashboards.panels import DASHBOARDS
from dashboards.sdk import InfluxQLQuery, to_plain
from dashboards.spec import (
    DATASOURCE_UID,
    Dashboard,
    Override,
    Panel,
    PanelType,
    Query,
    Transform,
    ValueText,
)
from softplace.schema import SERIES
from softplace_cli import cli

PROVISIONING = Path(build.__file__).with_name("provisioning")
_FROM = re.compile(r'FROM\s+"(\w+)"\."(\w+)"')


def test_build_committed_json_equals_generated() -> None:
    assert build.stale() == [], "run: softplace dashboards build"


def test_build_is_deterministic() -> None:
    assert build.render_all() == build.render_all()


def _committed_bytes() -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in build.JSON_DIR.glob("*.json")}


def test_build_twice_writes_the_committed_bytes(tmp_path: Path) -> None:
    for run in ("first", "second"):
        build.write(tmp_path / run)
        assert {p.name: p.read_bytes() for p in (tmp_path / run).iterdir()} == (
            _committed_bytes()), run


@pytest.mark.slow  # two fresh interpreters
def test_build_in_fresh_interpreters_writes_the_committed_bytes(tmp_path: Path) -> None:
    """Nothing depends on hash seeds or on what an earlier build left in the SDK's state."""
    script = ("import sys, pathlib; from dashboards import build;"
              " build.write(pathlib.Path(sys.argv[1]))")
    for seed in ("1", "2"):
        out = tmp_path / seed
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, timeout=120,
                       env={**os.environ, "PYTHONHASHSEED": seed})
        assert {p.name: p.read_bytes() for p in out.iterdir()} == _committed_bytes(), seed


def test_build_writes_and_removes_stale_files(tmp_path: Path) -> None:
    (tmp_path / "gone.json").write_text("{}")
    build.write(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(build.render_all())
    assert build.stale(tmp_path) == []
    (tmp_path / "branch.json").write_text("{}")
    assert build.stale(tmp_path) == ["branch.json"]


def test_build_command_writes_and_checks(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "json"
    result = runner.invoke(cli, ["dashboards", "build", "--check", "--out", str(out)])
    assert result.exit_code != 0
    assert "stale dashboards" in result.output
    assert runner.invoke(cli, ["dashboards", "build", "--out", str(out)]).exit_code == 0
    result = runner.invoke(cli, ["dashboards", "build", "--check", "--out", str(out)])
    assert result.exit_code == 0, result.output


def test_build_four_dashboards_with_stable_uids() -> None:
    committed = build.load_committed()
    assert {model["uid"] for model in committed.values()} == {
        "softplace-facilities", "softplace-branch", "softplace-privacy", "softplace-regulator"}
    for model in committed.values():
        assert "id" not in model  # Grafana numbers provisioned dashboards itself
        names = [v["name"] for v in model["templating"]["list"]]
        assert names[:3] == ["site", "building", "room"]
        ids = [panel["id"] for panel in model["panels"]]
        assert len(set(ids)) == len(ids)


def _queries() -> list[tuple[Dashboard, Panel, Query]]:
    return [(d, p, q) for d in DASHBOARDS for p in d.panels for q in p.queries]


@pytest.mark.parametrize(("dashboard", "panel", "query"), _queries(),
                         ids=lambda v: getattr(v, "key", None) or getattr(v, "uid", "q"))
def test_build_queries_name_a_known_series_in_its_retention_policy(
    dashboard: Dashboard, panel: Panel, query: Query
) -> None:
    if query.text.startswith("SHOW RETENTION POLICIES"):
        return
    found = _FROM.findall(query.text)
    assert found, f"{dashboard.uid}/{panel.key}: FROM must name the retention policy"
    for family, name in found:
        assert name in SERIES, name
        assert SERIES[name].family.value == family, f"{name} lives in {SERIES[name].family}"
    aliases = set(re.findall(r'AS "(\w+)"', query.text))
    selected = {ident for clause in re.findall(r"SELECT (.*?) FROM", query.text)
                for ident in re.findall(r'"(\w+)"', re.sub(r'AS "\w+"', "", clause))}
    known = {field for _, name in found for field in SERIES[name].fields}
    assert selected - aliases <= known, f"{panel.key}: unknown fields {selected - known}"


def test_build_variables_chain_site_building_room() -> None:
    for model in build.load_committed().values():
        variables = {v["name"]: v for v in model["templating"]["list"]}
        assert 'WITH KEY = "site"' in variables["site"]["query"]
        assert '"site" =~ /^$site$/' in variables["building"]["query"]
        assert '"building" =~ /^$building$/' in variables["room"]["query"]
        for variable in variables.values():
            assert variable["type"] == "query"
            assert variable["datasource"]["uid"] == DATASOURCE_UID


def test_build_panels_use_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load((PROVISIONING / "datasources" / "softplace.yaml").read_text())
    uid = provisioned["datasources"][0]["uid"]
    assert uid == DATASOURCE_UID
    for model in build.load_committed().values():
        for panel in model["panels"]:
            targets: list[dict[str, Any]] = panel["targets"]
            assert panel["datasource"]["uid"] == uid
            assert all(t["datasource"]["uid"] == uid and t["rawQuery"] for t in targets)


def test_build_every_panel_sets_its_options() -> None:
    """A panel written with ``"options": null`` is one Grafana cannot display."""
    for name, model in build.load_committed().items():
        for panel in model["panels"]:
            assert isinstance(panel["options"], dict) and panel["options"], (
                f"{name}: {panel['title']}")


def _without_empty_custom(model: Any) -> Any:
    if isinstance(model, dict):
        return {k: _without_empty_custom(v) for k, v in model.items()
                if not (k == "custom" and v == {})}
    if isinstance(model, list):
        return [_without_empty_custom(v) for v in model]
    return model


def test_build_sdk_reads_the_committed_json_back_unchanged() -> None:
    """grafana-foundation-sdk's own models load every committed dashboard; written out again
    it is the same JSON (the SDK's decoder only adds an empty ``custom`` field config)."""
    register_default_plugins()
    for name, committed in build.load_committed().items():
        loaded = sdk_model.Dashboard.from_json(committed)
        assert _without_empty_custom(to_plain(loaded)) == committed, name
        targets = [t for panel in loaded.panels or [] if isinstance(panel, sdk_model.Panel)
                   for t in panel.targets or []]
        assert targets and all(isinstance(t, InfluxQLQuery) for t in targets), name


def _one_panel(**row: Any) -> dict[str, Any]:
    panel = Panel("probe", "Probe", queries=(Query("SELECT 1", alias="one"),), **row)
    dashboard = Dashboard("softplace-probe", "Probe", "", variables=(), panels=(panel,))
    result: dict[str, Any] = build.dashboard_json(dashboard)["panels"][0]
    return result


@pytest.mark.parametrize("panel_type", get_args(PanelType))
def test_build_every_panel_type_has_a_builder(panel_type: PanelType) -> None:
    assert _one_panel(type=panel_type)["type"] == panel_type


def test_build_row_fields_reach_the_panel_json() -> None:
    bars = _one_panel(type="bargauge", display="basic", calc="sum", unit="h", decimals=1,
                      min=0, max=5, thresholds=((None, "green"), (3, "red")))
    assert bars["options"]["displayMode"] == "basic"
    assert bars["options"]["reduceOptions"]["calcs"] == ["sum"]
    defaults = bars["fieldConfig"]["defaults"]
    assert (defaults["unit"], defaults["decimals"], defaults["min"], defaults["max"]) == (
        "h", 1, 0, 5)
    assert defaults["thresholds"]["steps"] == [{"color": "green", "value": None},
                                               {"color": "red", "value": 3}]
    assert defaults["color"]["mode"] == "thresholds"
    series = _one_panel(type="timeseries", draw="bars", stacking="normal", min_interval="1m",
                        time_from="7d")
    assert series["fieldConfig"]["defaults"]["custom"] == {"drawStyle": "bars",
                                                           "stacking": {"mode": "normal"}}
    assert (series["interval"], series["timeFrom"]) == ("1m", "7d")
    assert series["fieldConfig"]["defaults"]["color"]["mode"] == "palette-classic"
    assert _one_panel(type="heatmap", scheme="Blues")["options"]["color"]["scheme"] == "Blues"
    cells = _one_panel(type="table",
                       overrides=(Override("ok", texts=(ValueText("1", "pass", "green"),
                                                        ValueText("0", "fail", "red"))),
                                  Override("t", unit="dateTimeAsIso")),
                       transformations=(Transform("sortBy", {"sort": [{"field": "t"}]}),))
    ok, when = cells["fieldConfig"]["overrides"]
    assert ok["matcher"] == {"id": "byName", "options": "ok"}
    assert ok["properties"] == [
        {"id": "mappings", "value": [{"type": "value", "options": {
            "1": {"text": "pass", "color": "green", "index": 0},
            "0": {"text": "fail", "color": "red", "index": 1}}}]},
        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
    ]
    assert when["properties"] == [{"id": "unit", "value": "dateTimeAsIso"}]
    assert cells["transformations"] == [{"id": "sortBy", "options": {"sort": [{"field": "t"}]}}]
    assert cells["targets"] == [{
        "alias": "one", "datasource": {"type": "influxdb", "uid": DATASOURCE_UID},
        "query": "SELECT 1", "rawQuery": True, "refId": "A", "resultFormat": "time_series"}]


def test_build_layout_fits_the_grid() -> None:
    for model in build.load_committed().values():
        cells: set[tuple[int, int]] = set()
        for panel in model["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= build.GRID_WIDTH
            area = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"])
                    for y in range(pos["y"], pos["y"] + pos["h"])}
            assert not cells & area, f"{panel['title']} overlaps"
            cells |= area


def test_build_provider_points_where_compose_mounts_the_json() -> None:
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "softplace.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((Path(build.__file__).parents[1] / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert any(m.startswith("./dashboards/json:") and m.split(":")[1] == path for m in mounts)
