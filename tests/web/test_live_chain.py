"""The live view follows a reading through the real chain: a virtual sensor (the firmware's
core) -> mosquitto -> ``softplace gateway`` -> ``softplace ingest`` (real processes) ->
influxd -> the web app -> chromium, which updates the room without reloading the page."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from devkit.services import Mosquitto
from devkit.virtual_sensor import VirtualSensor, firmware_config
from softplace.registry import load_registry
from softplace.storage.influx import InfluxStore
from softplace_cli.settings import load_settings
from tests.e2e.stack import Stack, write_registry
from tests.web.browser import chromium, log_in, wait_until
from tests.web.fixtures import CHEAP_HASHER, PASSWORD, USERS
from web.app import create_app
from web.server import BackgroundServer
from web.users import Role, UserStore

pytestmark = [pytest.mark.services, pytest.mark.slow]
SITE = "live-site"
STEP_S = 10
CHAIN_TIMEOUT_S = 60.0


@pytest.fixture
def stack(tmp_path: Path, mosquitto: Mosquitto, influx_store: InfluxStore) -> Iterator[Stack]:
    registry = tmp_path / "registry.yaml"
    write_registry(registry, SITE, rooms=2)
    running = Stack(tmp_path, SITE, registry, mosquitto.settings, influx_store)
    running.start("ingest", "ingest", ready="ingest subscribed")
    running.start("gateway", "gateway", ready="connected to the site broker")
    yield running
    running.stop_all()


def _state(driver: WebDriver, room: str) -> str:
    cell = driver.find_element(By.CSS_SELECTOR, f'tr[data-room="{room}"] td.state')
    return str(cell.get_attribute("data-state"))


def test_live_view_follows_a_reading_through_the_real_chain(
    stack: Stack, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    settings = load_settings(stack.config, environ={
        "SOFTPLACE_WEB__SECURE_COOKIES": "false", "SOFTPLACE_WEB__LIVE_POLL_S": "1",
        "SOFTPLACE_WEB__USERS_PATH": str(tmp_path / "users.sqlite"),
    })
    with UserStore(tmp_path / "users.sqlite", CHEAP_HASHER) as users:
        users.add(USERS[Role.FACILITIES], Role.FACILITIES, PASSWORD)
    app = create_app(settings, load_registry(settings.registry), config=stack.config,
                     hasher=CHEAP_HASHER)
    config = firmware_config(site=SITE, heartbeat_s=STEP_S, hold_s=10, debounce_ms=0)
    sensor = VirtualSensor(SITE, "dev-0-0", mosquitto.settings, config=config, battery_pct=77.0)
    with BackgroundServer(app) as server, chromium(tmp_path) as driver:
        try:
            start = time.time()
            sensor.connect(now_ts=start)
            sensor.observe(0, start, 0)
            log_in(driver, server.url, Role.FACILITIES)
            driver.get(f"{server.url}/live?site={SITE}")
            assert _state(driver, "room-1") == "unknown"  # no sensor reports there
            driver.execute_script("window.softplaceMarker = 'same page';")
            wait_until(lambda: _state(driver, "room-0") == "vacant",
                       f"the first reading never showed: {stack.log('ingest')[-2000:]}",
                       CHAIN_TIMEOUT_S)
            sensor.observe(STEP_S * 1000, time.time(), 3)
            wait_until(lambda: _state(driver, "room-0") == "occupied",
                       f"the second reading never showed: {stack.log('ingest')[-2000:]}",
                       CHAIN_TIMEOUT_S)
            assert driver.execute_script("return window.softplaceMarker;") == "same page"
            sensors = driver.find_element(By.CSS_SELECTOR, 'tr[data-room="room-0"] td.sensors')
            # battery comes with the gateway's once-a-minute health point, which may or may not
            # have been due within this test
            shown = sensors.text
            assert re.fullmatch(r"dev-0-0: online(, battery 77 %)?, seen .+", shown), shown
            assert driver.find_element(By.ID, "sensors-online").text == "1"
        finally:
            sensor.close()
