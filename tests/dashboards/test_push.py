"""Push payloads, built purely, and push's create-or-update logic.

No Grafana server runs here, so the network call itself is not exercised: ``push`` is
driven through an in-memory stand-in for the three grafana-client elements it uses
(``datasource``, ``folder``, ``dashboard``), which raises grafana-client's own 404 error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_client.client import GrafanaClientError, GrafanaServerError

from dashboards import build
from dashboards.push import (
    InfluxTarget,
    PushError,
    all_dashboard_payloads,
    connect,
    dashboard_payload,
    datasource_payload,
    push,
)
from dashboards.settings import FOLDER_UID
from dashboards.spec import DATASOURCE_UID

TARGET = InfluxTarget("http://influxdb:8086", "softplace", "grafana", "s3cret")


def _not_found() -> GrafanaClientError:
    return GrafanaClientError(404, None, "Client Error 404: Not found")


class FakeGrafana:
    """Keeps what a Grafana would keep, keyed by uid; counts the calls."""

    def __init__(self) -> None:
        self.datasources: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, str] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.fail_dashboards = False

    # grafana-client exposes these as attributes holding element objects
    @property
    def datasource(self) -> FakeGrafana:
        return self

    @property
    def folder(self) -> FakeGrafana:
        return self

    @property
    def dashboard(self) -> FakeGrafana:
        return self

    def get_datasource_by_uid(self, datasource_uid: str) -> Any:
        if datasource_uid not in self.datasources:
            raise _not_found()
        return self.datasources[datasource_uid]

    def create_datasource(self, datasource: Any) -> Any:
        self.calls.append("create_datasource")
        self.datasources[datasource["uid"]] = datasource
        return {"id": 1}

    def update_datasource_by_uid(self, datasource_uid: str, datasource: Any) -> Any:
        self.calls.append("update_datasource")
        self.datasources[datasource_uid] = datasource
        return {"id": 1}

    def get_folder(self, uid: str) -> Any:
        if uid not in self.folders:
            raise _not_found()
        return {"uid": uid, "title": self.folders[uid]}

    def create_folder(self, title: str, uid: str | None = None) -> Any:
        self.calls.append("create_folder")
        assert uid is not None
        self.folders[uid] = title
        return {"uid": uid}

    def update_dashboard(self, dashboard: Any) -> Any:
        if self.fail_dashboards:
            raise GrafanaServerError(500, None, "Server Error 500: boom")
        uid = dashboard["dashboard"]["uid"]
        assert dashboard["overwrite"] is True
        assert dashboard["folderUid"] in self.folders
        self.dashboards[uid] = dashboard
        return {"uid": uid, "status": "success"}


def test_push_datasource_payload_matches_provisioning() -> None:
    path = Path(build.__file__).with_name("provisioning") / "datasources" / "softplace.yaml"
    provisioned = yaml.safe_load(path.read_text())["datasources"][0]
    payload = datasource_payload(TARGET)
    for key in ("uid", "name", "type", "access", "isDefault"):
        assert payload[key] == provisioned[key], key
    assert payload["jsonData"]["timeInterval"] == provisioned["jsonData"]["timeInterval"]
    assert payload["jsonData"]["version"] == provisioned["jsonData"]["version"] == "InfluxQL"
    assert payload["jsonData"]["dbName"] == "softplace"
    assert payload["user"] == "grafana"
    assert payload["secureJsonData"] == {"password": "s3cret"}


def test_push_datasource_payload_without_credentials() -> None:
    payload = datasource_payload(InfluxTarget("http://influxdb:8086", "softplace"))
    assert "user" not in payload
    assert "secureJsonData" not in payload


def test_push_dashboard_payload_overwrites_by_uid() -> None:
    model = {"id": 7, "uid": "softplace-branch", "title": "x"}
    payload = dashboard_payload(model, "f")
    assert payload == {"dashboard": {"id": None, "uid": "softplace-branch", "title": "x"},
                       "folderUid": "f", "message": "softplace dashboards push",
                       "overwrite": True}
    assert model["id"] == 7  # the caller's model is not touched


def test_push_payloads_are_the_committed_dashboards() -> None:
    committed = {m["uid"]: m for m in build.load_committed().values()}
    payloads = all_dashboard_payloads()
    assert {p["dashboard"]["uid"] for p in payloads} == set(committed)
    for payload in payloads:
        # the committed JSON has no id (provisioning numbers it); the push says null
        assert payload["dashboard"] == {**committed[payload["dashboard"]["uid"]], "id": None}


def test_push_creates_then_updates_idempotently() -> None:
    grafana = FakeGrafana()
    first = push(grafana, TARGET)
    state = (dict(grafana.datasources), dict(grafana.folders), dict(grafana.dashboards))
    second = push(grafana, TARGET)
    assert first == second == [p["dashboard"]["uid"] for p in all_dashboard_payloads()]
    assert (grafana.datasources, grafana.folders, grafana.dashboards) == state
    assert grafana.calls == ["create_datasource", "create_folder", "update_datasource"]
    assert set(grafana.datasources) == {DATASOURCE_UID}
    assert set(grafana.folders) == {FOLDER_UID}


def test_push_translates_grafana_errors() -> None:
    grafana = FakeGrafana()
    grafana.fail_dashboards = True
    with pytest.raises(PushError, match="refused the dashboard softplace-facilities"):
        push(grafana, TARGET)


def test_push_connect_builds_a_client_without_network() -> None:
    api = connect("https://grafana.example.org/sub", "token")
    assert api.client.url_host == "grafana.example.org"


def test_push_reports_an_unreachable_grafana() -> None:
    from devkit.embedded_broker import free_port

    api = connect(f"http://127.0.0.1:{free_port()}", "token", timeout_s=2)
    with pytest.raises(PushError, match="cannot reach grafana while pushing the data source"):
        push(api, TARGET)


def test_push_command_needs_a_url() -> None:
    from click.testing import CliRunner

    from softplace_cli import cli

    result = CliRunner().invoke(cli, ["dashboards", "push"], env={"GRAFANA_URL": ""})
    assert result.exit_code != 0
    assert "--url" in result.output


def test_push_command_takes_grafana_from_the_dashboards_section() -> None:
    from click.testing import CliRunner

    from devkit.embedded_broker import free_port
    from softplace_cli import cli

    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: the push must try it
    environment = {"GRAFANA_URL": "", "SOFTPLACE_DASHBOARDS__GRAFANA_URL": closed}
    result = CliRunner().invoke(cli, ["dashboards", "push"], env=environment)
    assert result.exit_code != 0
    assert isinstance(result.exception, PushError)
    assert "cannot reach grafana" in str(result.exception)
