"""The fault matrix, on real processes: a broker killed -9 before and after its autosave,
on either hop, and the gateway killed -9. The other cases of the matrix (ingest killed -9,
influxd stopped, the upstream link cut) are in ``test_pipeline.py``; every case ends with
``tally``'s line: sent, landed, lost, doubled, dead-lettered, and lost = doubled = 0.

Broker durability is an optimisation here, not the guarantee: the gateway forgets a row
only on ingest's acknowledgement that it is stored, and re-sends after every reconnect."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.services import Mosquitto
from softplace.storage.influx import InfluxStore
from tests.e2e.stack import Stack, wait_for, write_registry
from tests.e2e.test_pipeline import SITE, Fleet, _outbox_size, landed, tally

pytestmark = [pytest.mark.services, pytest.mark.slow]
NO_AUTOSAVE_S = 3600  # within the test: the broker never saved anything when killed
AUTOSAVE_S = 1


def _broker(workdir: Path, autosave_s: int) -> Mosquitto:
    broker = Mosquitto(workdir)
    broker.config.write_text(broker.config.read_text().replace(
        "autosave_interval 1", f"autosave_interval {autosave_s}"))
    broker.start()
    return broker


@pytest.fixture
def upstream_before(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = _broker(tmp_path / "upstream", NO_AUTOSAVE_S)
    yield broker
    broker.stop()


@pytest.fixture
def upstream_after(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = _broker(tmp_path / "upstream", AUTOSAVE_S)
    yield broker
    broker.stop()


def _upstream_broker_killed(tmp_path: Path, site_broker: Mosquitto, upstream: Mosquitto,
                            influx_store: InfluxStore, saved: bool) -> None:
    """Batches queued on the upstream broker for a stopped ingest when it dies."""
    registry = tmp_path / "registry.yaml"
    write_registry(registry, SITE, rooms=4)
    stack = Stack(tmp_path, SITE, registry, site_broker.settings, influx_store,
                  upstream=upstream.settings)
    fleet = Fleet([f"dev-{r}-0" for r in range(4)], site_broker.settings)
    up_env = {"SOFTPLACE_MQTT__URL": upstream.settings.url}
    try:
        fleet.connect()
        stack.start("ingest", "ingest", env=up_env, ready="ingest subscribed")
        stack.start("gateway", "gateway", ready="connected upstream")
        fleet.play(20)
        wait_for(lambda: sum(landed(influx_store, fleet.start_ts * 1000).values()) >= 80, 30,
                 "nothing landed before the fault")
        stack.kill("ingest")
        fleet.play(30)
        fleet.wait_sent()
        # sent upstream (the gateway keeps the rows until ingest acknowledges them)
        wait_for(lambda: _outbox_size(tmp_path) >= 120,
                 30, "the gateway held nothing for the stopped ingest")
        time.sleep(AUTOSAVE_S + 1.5 if saved else 0.5)
        upstream.kill()
        upstream.start()
        stack.start("ingest", "ingest", env=up_env, ready="ingest subscribed")
        fleet.play(10)
        tally(f"upstream mosquitto killed -9 {'after' if saved else 'before'} its autosave",
              influx_store, fleet)
    finally:
        fleet.close()
        stack.stop_all()


def test_faults_upstream_broker_killed_before_its_autosave_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, upstream_before: Mosquitto, influx_store: InfluxStore
) -> None:
    _upstream_broker_killed(tmp_path, mosquitto, upstream_before, influx_store, saved=False)


def test_faults_upstream_broker_killed_after_its_autosave_loses_nothing(
    tmp_path: Path, mosquitto: Mosquitto, upstream_after: Mosquitto, influx_store: InfluxStore
) -> None:
    _upstream_broker_killed(tmp_path, mosquitto, upstream_after, influx_store, saved=True)


def test_faults_gateway_killed_mid_stream_loses_and_doubles_nothing(
    tmp_path: Path, mosquitto: Mosquitto, influx_store: InfluxStore
) -> None:
    """One broker for both hops (the gateway's single connection serves both sides)."""
    registry = tmp_path / "registry.yaml"
    write_registry(registry, SITE, rooms=4)
    stack = Stack(tmp_path, SITE, registry, mosquitto.settings, influx_store)
    fleet = Fleet([f"dev-{r}-0" for r in range(4)], mosquitto.settings)
    try:
        fleet.connect()
        stack.start("ingest", "ingest", ready="ingest subscribed")
        stack.start("gateway", "gateway", ready="connected to the site broker")
        fleet.play(30)
        player = threading.Thread(target=fleet.play, args=(100, 0.01))
        player.start()
        time.sleep(0.4)
        stack.kill("gateway")  # SIGKILL mid-stream: outbox rows and site sessions survive
        player.join()
        fleet.wait_sent()
        stack.start("gateway", "gateway", ready="connected to the site broker")
        tally("gateway killed -9", influx_store, fleet)
    finally:
        fleet.close()
        stack.stop_all()


@pytest.mark.parametrize("saved", [False, True], ids=["before-autosave", "after-autosave"])
def test_faults_site_broker_killed_loses_nothing_with_device_acks(
    tmp_path: Path, influx_store: InfluxStore, saved: bool
) -> None:
    """Readings queued on the site broker for a stopped gateway when it dies: the virtual
    sensors keep each reading until the gateway's device ack covers it, and re-send the
    rest after reconnecting (and after ACK_RESEND_S)."""
    site_broker = _broker(tmp_path / "site", AUTOSAVE_S if saved else NO_AUTOSAVE_S)
    registry = tmp_path / "registry.yaml"
    write_registry(registry, SITE, rooms=4)
    stack = Stack(tmp_path, SITE, registry, site_broker.settings, influx_store)
    fleet = Fleet([f"dev-{r}-0" for r in range(4)], site_broker.settings)
    try:
        fleet.connect()
        stack.start("ingest", "ingest", ready="ingest subscribed")
        stack.start("gateway", "gateway", ready="connected to the site broker")
        fleet.play(20)
        wait_for(lambda: sum(landed(influx_store, fleet.start_ts * 1000).values()) >= 80, 30,
                 "nothing landed before the fault")
        stack.kill("gateway")
        fleet.play(30)
        fleet.wait_sent()  # PUBACKed by the broker, not yet acknowledged by the gateway
        time.sleep(AUTOSAVE_S + 1.5 if saved else 0.5)
        site_broker.kill()
        site_broker.start()  # ingest, still running, reconnects by itself
        stack.start("gateway", "gateway", ready="connected to the site broker")
        fleet.play(10)
        tally(f"site mosquitto killed -9 {'after' if saved else 'before'} its autosave",
              influx_store, fleet, timeout=120)
    finally:
        fleet.close()
        stack.stop_all()
        site_broker.stop()
