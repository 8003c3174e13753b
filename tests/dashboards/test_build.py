"""The committed dashboard JSON is what the code generates, and is well formed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from dashboards import build
from dashboards.panels import DASHBOARDS
from dashboards.spec import DATASOURCE_UID, Dashboard, Panel, Query
from softplace.schema import SERIES
from softplace_cli import cli

PROVISIONING = Path(build.__file__).with_name("provisioning")
_FROM = re.compile(r'FROM\s+"(\w+)"\."(\w+)"')


def test_build_committed_json_equals_generated() -> None:
    assert build.stale() == [], "run: softplace dashboards build"


def test_build_is_deterministic() -> None:
    assert build.render_all() == build.render_all()


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
