"""The whole chain through the deploy broker (deploy/mosquitto: one account per device and
per service, client id forced to the username, the ACL of deploy/mosquitto/acl plus the
per-device entries `softplace device add` writes): virtual sensors on their own accounts,
the real gateway and ingest on theirs, readings stored and every one acknowledged back to
its device. Proves the services need nothing the ACL does not grant."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from devkit.virtual_sensor import VirtualSensor, firmware_config
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from ingest.service import Ingest
from ingest.settings import IngestSettings
from softplace.registry import load_registry
from softplace.schema import SeriesName
from softplace.settings import MqttSettings
from softplace.storage.sqlite import SqliteStore
from tests.deployed_broker import SERVICE_PASSWORD, deployed
from tests.e2e.stack import wait_for, write_registry

pytestmark = pytest.mark.services
SITE = "s"  # one of tests.deployed_broker.SITES: the ACL has its gateway account
READINGS = 20
TIMEOUT_S = 60


def _account(port: int, user: str, password: str) -> MqttSettings:
    return MqttSettings(url=f"mqtt://127.0.0.1:{port}", username=user, password=password)


def test_deploy_broker_carries_the_chain_with_one_account_each(tmp_path: Path) -> None:
    registry_path = tmp_path / "registry.yaml"
    devices = write_registry(registry_path, SITE, rooms=2)
    passwords = {device: f"pw-{device}" for device in devices}
    broker_run = deployed(tmp_path / "broker", {d: (SITE, pw) for d, pw in passwords.items()})
    broker = next(broker_run)
    registry = load_registry(registry_path)
    store_path = tmp_path / "store.sqlite"
    ingest = Ingest(registry, SqliteStore(store_path),
                    _account(broker.port, "softplace-ingest", SERVICE_PASSWORD),
                    IngestSettings(client_id="ignored-the-broker-uses-the-username"))
    gateway = Gateway(registry.site(SITE),
                      _account(broker.port, f"softplace-gateway-{SITE}", SERVICE_PASSWORD),
                      GatewaySettings(site=SITE, state_dir=tmp_path / "state"))
    sensors = [VirtualSensor(SITE, d, _account(broker.port, d, pw),
                             config=firmware_config(site=SITE, heartbeat_s=60, hold_s=10,
                                                    debounce_ms=0))
               for d, pw in passwords.items()]
    reader = SqliteStore(store_path)
    try:
        ingest.start()
        gateway.start()
        wait_for(lambda: ingest.counts.connections >= 1 and gateway.counts.connections >= 1,
                 TIMEOUT_S, "a service could not connect with its own account")
        start = time.time() - READINGS * 60  # a past stretch: nothing in the future
        for sensor in sensors:
            sensor.connect(now_ts=start)
        for i in range(READINGS):
            for sensor in sensors:
                sensor.observe(i * 60_000, start + i * 60, i % 3)

        def stored() -> int:
            return len(list(reader.query(SeriesName.ROOM_COUNT, 0, 2**53)))

        wait_for(lambda: stored() >= 2 and all(s.unacked() == 0 for s in sensors), TIMEOUT_S,
                 "readings were not stored and acknowledged",
                 describe=lambda: f"{gateway.summary()} / {ingest.summary()}; stored "
                                  f"{stored()}; unacked {[s.unacked() for s in sensors]}")
        wait_for(lambda: gateway.outbox.size() == 0, TIMEOUT_S,
                 "ingest's batch acknowledgements never reached the gateway")
        assert gateway.counts.dead_lettered == 0, gateway.summary()
        assert ingest.counts.dead_lettered == 0, ingest.summary()
        assert gateway.device_acks >= len(sensors)
        assert gateway.counts.connections == 1 and ingest.counts.connections == 1, (
            "a service was kicked off: its session was taken")
    finally:
        for sensor in sensors:
            sensor.close()
        gateway.stop()
        ingest.stop()
        reader.close()
        next(broker_run, None)
