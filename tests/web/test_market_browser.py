"""The marketplace end to end in chromium, on the real chain: a requester finds the offered
room and books a slot, the operator accepts, the slot disappears for others, a virtual
sensor (firmware core -> mosquitto -> gateway -> ingest, real processes -> influxd) sees the
room empty all through it, and the branch report lists the ghost booking."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from click.testing import CliRunner
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from detector.batch import run_batch
from devkit.services import Mosquitto
from devkit.virtual_sensor import VirtualSensor, firmware_config
from softplace.registry import load_registry
from softplace.schema import RoomCountField, SeriesName
from softplace.storage.base import Sample
from softplace.storage.influx import InfluxStore
from softplace.timeutil import datetime_to_ms
from softplace_cli import cli
from softplace_cli.settings import load_settings
from tests.e2e.stack import Stack, wait_for
from tests.web.browser import axe_violations, chromium, log_in, wait_until
from tests.web.conftest import Clock
from tests.web.fixtures import CHEAP_HASHER, PASSWORD, USERS
from web.app import create_app
from web.server import BackgroundServer
from web.users import Role, UserStore

pytestmark = [pytest.mark.services, pytest.mark.slow]
SITE = "market-site"
ROOM = "room-0"
DEVICE = "dev-0-0"
PARIS = ZoneInfo("Europe/Paris")
STEP = dt.timedelta(minutes=10)
SENSOR_STEP_S = 300
CHAIN_TIMEOUT_S = 60.0


def _registry(path: Path) -> None:
    day = ["00:00-24:00"]
    path.write_text(yaml.safe_dump({"version": 1, "sites": [{
        "id": SITE, "name": "Market site", "district": "d1", "timezone": "Europe/Paris",
        "opening_hours": dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), day),
        "buildings": [{"id": "b1", "floors": [{"id": "f0", "rooms": [{
            "id": ROOM, "name": "Room 0", "kind": "meeting", "area_m2": 30, "capacity": 12,
            "devices": [DEVICE],
            "offer": {"name": "Community room", "description": "Ground floor, by the door.",
                      "amenity_feature": ["step_free_access", "tables", "wifi"],
                      "maximum_attendee_capacity": 12, "email": "rooms@example.org"},
        }]}]}],
    }]}))


@pytest.fixture
def stack(tmp_path: Path, mosquitto: Mosquitto, influx_store: InfluxStore) -> Iterator[Stack]:
    registry = tmp_path / "registry.yaml"
    _registry(registry)
    running = Stack(tmp_path, SITE, registry, mosquitto.settings, influx_store)
    running.start("ingest", "ingest", ready="ingest subscribed")
    running.start("gateway", "gateway", ready="connected to the site broker")
    yield running
    running.stop_all()


def _local(moment: dt.datetime) -> str:
    return moment.astimezone(PARIS).strftime("%Y-%m-%dT%H:%M")


def _fill(driver: WebDriver, start: dt.datetime, end: dt.datetime, name: str) -> None:
    for field, value in (("start", _local(start)), ("end", _local(end)),
                         ("attendance", "6"), ("name", name), ("organisation", "Voisins"),
                         ("email", "ada@example.org"), ("purpose", "Neighbourhood meeting")):
        element = driver.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)


def test_market_browser_booking_accepted_then_ghosted_through_the_real_chain(
    stack: Stack, mosquitto: Mosquitto, influx_store: InfluxStore, tmp_path: Path,
) -> None:
    real = dt.datetime.fromtimestamp(time.time() // SENSOR_STEP_S * SENSOR_STEP_S, dt.UTC)
    start, end = real - dt.timedelta(minutes=100), real - dt.timedelta(minutes=40)
    settings = load_settings(stack.config, environ={
        "SOFTPLACE_WEB__SECURE_COOKIES": "false",
        "SOFTPLACE_WEB__USERS_PATH": str(tmp_path / "users.sqlite"),
        "SOFTPLACE_BOOKINGS__PATH": str(tmp_path / "bookings.sqlite"),
    })
    registry = load_registry(settings.registry)
    # a vacant week before the booking, so the detector offers the room's idle slots
    today = (start - dt.timedelta(minutes=30)).astimezone(PARIS).date()
    first = today - dt.timedelta(days=8)
    when = dt.datetime.combine(first, dt.time(0), PARIS)
    tags = registry.site(SITE).room(ROOM).tags
    samples = []
    while when < start - dt.timedelta(hours=1):
        samples.append(Sample(SeriesName.ROOM_COUNT, tags,
                              {RoomCountField.COUNT: 0, RoomCountField.SOURCES: 1},
                              datetime_to_ms(when)))
        when += STEP
    influx_store.write(samples)
    run_batch(influx_store, registry, SITE, first, today)
    with UserStore(tmp_path / "users.sqlite", CHEAP_HASHER) as users:
        users.add(USERS[Role.MANAGER], Role.MANAGER, PASSWORD)
    clock = Clock((start - dt.timedelta(minutes=30)).timestamp())
    app = create_app(settings, registry, config=stack.config, clock=clock, hasher=CHEAP_HASHER)
    sensor = VirtualSensor(SITE, DEVICE, mosquitto.settings, config=firmware_config(
        site=SITE, heartbeat_s=SENSOR_STEP_S, hold_s=10, debounce_ms=0))
    with BackgroundServer(app) as server, chromium(tmp_path) as driver:
        base = server.url
        try:
            # the requester finds the space and asks for the slot
            driver.get(f"{base}/offers")
            assert axe_violations(driver) == []
            driver.find_element(By.LINK_TEXT, "Community room").click()
            assert driver.find_element(By.ID, "limit").text.startswith("up to 12")
            assert axe_violations(driver) == []
            _fill(driver, start, end, "Ada Lovelace")
            driver.find_element(By.CSS_SELECTOR, "form.booking button").click()
            wait_until(lambda: "/booking/" in driver.current_url,
                       f"no status page: {driver.find_element(By.TAG_NAME, 'main').text}")
            status_url = driver.current_url
            assert driver.find_element(By.ID, "status").text == "pending"
            assert axe_violations(driver) == []
            assert "Ada" not in driver.page_source
            # the operator accepts it
            log_in(driver, base, Role.MANAGER)
            driver.get(f"{base}/manage/bookings")
            driver.find_element(By.CSS_SELECTOR, "tr[data-status=pending] button.accept").click()
            wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "tr[data-status=accepted]"),
                       "the booking was not accepted")
            assert "Ada Lovelace" in driver.page_source  # the operator sees who asked
            driver.delete_all_cookies()
            driver.get(status_url)
            assert driver.find_element(By.ID, "status").text == "accepted"
            # the slot is gone for the next requester
            driver.get(f"{base}/offers/{SITE}/{ROOM}")
            rows = driver.find_elements(By.CSS_SELECTOR, "#windows tbody tr")
            spans = [(r.get_attribute("data-start"), r.get_attribute("data-end")) for r in rows]
            assert spans and not any(str(a) < _local(end) and _local(start) < str(b)
                                     for a, b in spans), spans
            # and a second requester who types it in anyway is refused
            _fill(driver, start, end, "Bob Booker")
            driver.find_element(By.CSS_SELECTOR, "form.booking button").click()
            refusal = wait_until(lambda: driver.find_elements(By.ID, "book-error"),
                                 "the second request for the booked slot was not refused")
            assert "not inside a window" in refusal[0].text or "overlaps" in refusal[0].text
            assert "/booking/" not in driver.current_url
            # the sensor sees nobody through the booking, through the whole chain
            sensor.connect(now_ts=real.timestamp())
            sim_ms = 0
            moment = start - dt.timedelta(minutes=10)
            while moment <= real:
                sensor.observe(sim_ms, moment.timestamp(), 0)
                sim_ms += SENSOR_STEP_S * 1000
                moment += dt.timedelta(seconds=SENSOR_STEP_S)
            lo, hi = datetime_to_ms(start), datetime_to_ms(end)
            wait_for(lambda: len(influx_store.query(SeriesName.ROOM_COUNT, lo, hi,
                                                    {"room": ROOM})) >= 10,
                     CHAIN_TIMEOUT_S, f"the chain never delivered: {stack.log('ingest')[-2000:]}")
            seen = influx_store.query(SeriesName.ROOM_COUNT, lo, hi, {"room": ROOM})
            assert {s.fields[RoomCountField.COUNT] for s in seen} == {0}  # empty all through
            # after the slot: the report lists the ghost booking
            clock.now = real.timestamp()
            log_in(driver, base, Role.MANAGER)
            day_start = start.astimezone(PARIS).date()
            driver.get(f"{base}/report?site={SITE}&start={day_start}&end={real.astimezone(PARIS).date()}")
            summary = driver.find_element(By.ID, "booked-summary")
            assert summary.get_attribute("data-ghost") == "1", summary.text
            row = driver.find_element(By.CSS_SELECTOR, f'#ghosts tr[data-room="{ROOM}"]')
            assert "ghost booking" in row.text
            # the operator's daily reconcile stores it (no requester) for the detector's
            # report and the regulator's releases
            env = {"SOFTPLACE_BOOKINGS__PATH": str(tmp_path / "bookings.sqlite")}
            runner = CliRunner()
            done = runner.invoke(cli, ["--config", str(stack.config), "bookings", "reconcile"],
                                 env=env)
            assert done.exit_code == 0, done.output
            (point,) = influx_store.query(SeriesName.BOOKING, lo - 1, hi, {"room": ROOM})
            assert point.fields["ghost"] == 1 and "Ada" not in repr(point)
            shown = runner.invoke(cli, [
                "--config", str(stack.config), "report", "--site", SITE, "--from",
                str(day_start), "--to", str(real.astimezone(PARIS).date()), "--format", "json",
            ], env=env)
            assert shown.exit_code == 0, shown.output
            booked = json.loads(shown.output)["bookings"]
            assert (booked["booked"], booked["ghost"], booked["used_h"]) == (1, 1, 0.0)
        finally:
            sensor.close()
