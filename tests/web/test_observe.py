"""The web app's /metrics and /readyz (issue 16): served apart from the app, on
``observe.port``, by the kernel's observe endpoint; route templates as labels, never ids."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from softplace import observe
from softplace.settings import StorageSettings
from tests.web.conftest import HTTP_TIMEOUT_S, Clock
from tests.web.fixtures import CHEAP_HASHER, SITE, WebData
from web.app import UNROUTED, create_app
from web.commands import ready_checks
from web.server import BackgroundServer

BOOKING_ID = "no-such-booking-0123456789"


@pytest.fixture
def measured(web_data: WebData) -> Iterator[tuple[str, observe.ObserveServer]]:
    registry = observe.new_registry(process=False)
    app = create_app(web_data.settings, web_data.registry, config=web_data.config,
                     clock=Clock(), hasher=CHEAP_HASHER, metrics=observe.web_metrics(registry))
    endpoint = observe.ObserveServer("127.0.0.1", 0, registry, ready_checks(web_data.settings))
    endpoint.start()
    try:
        with BackgroundServer(app) as server:
            yield server.url, endpoint
    finally:
        endpoint.stop()


def _requests(text: str) -> dict[tuple[str, str, str], float]:
    found: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "softplace_web_requests_total":
                labels = sample.labels
                found[(labels["route"], labels["method"], labels["status"])] = sample.value
    return found


def test_web_metrics_count_answers_by_route_template(
    measured: tuple[str, observe.ObserveServer],
) -> None:
    url, endpoint = measured
    with httpx.Client(base_url=url, timeout=HTTP_TIMEOUT_S) as client:
        for _ in range(3):
            assert client.get("/offers").status_code == 200
        assert client.get(f"/booking/{BOOKING_ID}").status_code == 404
        assert client.get("/nowhere").status_code == 404
        assert client.get(f"/api/sites/{SITE}/rooms").status_code == 401  # no session
    text = httpx.get(f"http://127.0.0.1:{endpoint.port}{observe.METRICS_PATH}",
                     timeout=HTTP_TIMEOUT_S).text
    counted = _requests(text)
    assert counted[("/offers", "GET", "200")] == 3
    assert counted[("/booking/{booking_id}", "GET", "404")] == 1
    assert counted[(UNROUTED, "GET", "404")] == 1
    assert counted[("/api/sites/{site}/rooms", "GET", "401")] == 1
    assert BOOKING_ID not in text and "nowhere" not in text
    assert "softplace_web_request_duration_seconds_bucket" in text
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool missing: install Debian's prometheus (scripts/test.sh does)",
                    pytrace=False)
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr


def test_web_readyz_follows_the_store(web_data: WebData, tmp_path: Path) -> None:
    assert observe.run_checks(ready_checks(web_data.settings)) == {"store": True}
    missing = web_data.settings.model_copy(update={"storage": StorageSettings(
        sqlite_path=tmp_path / "absent.sqlite")})
    assert observe.run_checks(ready_checks(missing)) == {"store": False}
    assert not (tmp_path / "absent.sqlite").exists()  # a ready check never creates a store


def test_web_metrics_need_no_session_on_the_app_port(
    measured: tuple[str, observe.ObserveServer],
) -> None:
    """/metrics is on observe.port only: the public app does not serve it."""
    url, _ = measured
    with httpx.Client(base_url=url, timeout=HTTP_TIMEOUT_S) as client:
        assert client.get(observe.METRICS_PATH).status_code == 404
