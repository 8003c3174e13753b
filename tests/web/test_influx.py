"""The app on InfluxDB: the same report as ``build_report`` on that store."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from detector.report import Report, build_report
from softplace.registry import load_registry
from softplace.storage.influx import InfluxStore
from softplace_cli.settings import load_settings
from tests.web.conftest import HTTP_TIMEOUT_S, login
from tests.web.fixtures import CHEAP_HASHER, FIRST, LAST, NOW, PASSWORD, SITE, write_week
from web.app import create_app
from web.server import BackgroundServer
from web.users import Role, UserStore

pytestmark = pytest.mark.services


def test_influx_report_api_is_the_cli_report(influx_store: InfluxStore, tmp_path: Path) -> None:
    config = tmp_path / "softplace.yaml"
    config.write_text(
        "storage:\n  backend: influxdb\n"
        f"influxdb:\n  url: {influx_store.settings.url}\n"
        f"  database: {influx_store.settings.database}\n"
        "web:\n  secure_cookies: false\n", encoding="utf-8")
    settings = load_settings(config, environ={})
    registry = load_registry(settings.registry)
    write_week(influx_store, registry)
    expected = build_report(influx_store, registry, SITE, FIRST, LAST,
                            settings=settings.detector)
    with UserStore(tmp_path / "web-users.sqlite", CHEAP_HASHER) as users:
        users.add("ana", Role.MANAGER, PASSWORD)
    app = create_app(settings, registry, config=config, clock=NOW.timestamp,
                     hasher=CHEAP_HASHER)
    with BackgroundServer(app) as server, httpx.Client(
            base_url=server.url, timeout=HTTP_TIMEOUT_S) as client:
        assert login(client, "ana", PASSWORD).status_code == 303
        body = client.get(f"/api/sites/{SITE}/report?start={FIRST}&end={LAST}").json()
        page = client.get(f"/report?start={FIRST}&end={LAST}")
    assert expected.source == "stored" and expected.rooms
    assert Report.model_validate(body["report"]) == expected
    assert page.status_code == 200 and f"{expected.total_idle_m2h:,.0f} m²·h" in page.text
