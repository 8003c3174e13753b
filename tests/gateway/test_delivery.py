"""The device -> gateway hop acknowledged end to end (issue 17), on the real mosquitto: a
virtual sensor forgets a reading only once the gateway's DeviceAck says it is in the
outbox, so neither a broker crash nor a poisoned message nor a full disk loses one."""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devkit.services import Mosquitto
from devkit.virtual_sensor import VirtualSensor, firmware_config
from gateway.core import Decision
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from softplace import topics
from softplace.backoff import Backoff
from softplace.consumer import Handled, Outcome, Received
from softplace.messages import ACK_RESEND_S
from softplace.registry import load_registry
from softplace.settings import MqttSettings
from tests.e2e.stack import wait_for, write_registry

pytestmark = pytest.mark.services
SITE = "ack-site"
STEP_S = 10  # simulated seconds per step: the heartbeat makes every step one reading
TIMEOUT_S = 30
log = logging.getLogger(__name__)
Key = tuple[str, int, int]
AUTOSAVE_LINE = "autosave_interval 1"


class FakeClock:
    """The sensors' monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Devices:
    """Virtual sensors (the firmware's own core), each reading recorded by key."""

    def __init__(self, devices: list[str], broker: MqttSettings, clock: FakeClock,
                 boot: int, *, follows_acks: bool = True) -> None:
        config = firmware_config(site=SITE, heartbeat_s=STEP_S, hold_s=10, debounce_ms=0)
        self.sensors = [VirtualSensor(SITE, d, broker, config=config, clock=clock, boot=boot,
                                      follows_acks=follows_acks)
                        for d in devices]
        self.sent: list[Key] = []
        self.start_ts = int(time.time()) - 3600
        self.step = 0
        for sensor in self.sensors:
            sensor.connect(now_ts=self.start_ts)

    def play(self, steps: int) -> None:
        for _ in range(steps):
            ts = self.start_ts + self.step * STEP_S
            for r, sensor in enumerate(self.sensors):
                (reading,) = sensor.observe(self.step * STEP_S * 1000, ts,
                                            (self.step + r) % 4)
                self.sent.append((sensor.device, reading["boot"], reading["seq"]))
            self.step += 1

    def unacked(self) -> int:
        return sum(s.unacked() for s in self.sensors)

    def wait_sent(self) -> None:
        wait_for(lambda: all(s.pending() == 0 for s in self.sensors), TIMEOUT_S,
                 "the broker never acknowledged the readings")

    def close(self) -> None:
        for sensor in self.sensors:
            sensor.close()


class GatedGateway(Gateway):
    """The real gateway whose outbox writes wait for ``gate``; and whose core, for a
    reading of ``poison_device``, yields a dedupe key SQLite cannot store (the kind of
    hole issue 17 found: a seq of 2**63 made every write of its batch fail)."""

    gate: threading.Event | None = None
    poison_device: str | None = None

    def handle(self, message: Received) -> tuple[Outcome, Decision]:
        outcome, decision = super().handle(message)
        if (self.poison_device and decision.accepted is not None
                and decision.accepted[0] == self.poison_device):
            decision.accepted = (self.poison_device, 2**63, 0)
        return outcome, decision

    def persist(self, batch: list[Handled[Decision]]) -> None:
        if self.gate is not None:
            assert self.gate.wait(TIMEOUT_S), "the test never opened the gate"
        super().persist(batch)


def make_gateway(broker: MqttSettings, tmp_path: Path, rooms: int = 2,
                 state_dir: Path | None = None) -> tuple[GatedGateway, list[str]]:
    registry = tmp_path / "registry.yaml"
    devices = write_registry(registry, SITE, rooms=rooms)
    site = load_registry(registry).site(SITE)
    settings = GatewaySettings(site=SITE, state_dir=state_dir or tmp_path / "state",
                               client_id=f"gw-{tmp_path.name}")
    return GatedGateway(site, broker, settings), devices


def kept_keys(gateway: Gateway) -> set[Key]:
    return set(gateway.outbox.seen_keys(gateway.settings.dedupe_keys_per_device))


def resend_until_acked(devices: Devices, clock: FakeClock, rounds: int = 6) -> None:
    """Let ACK_RESEND_S pass on the sensors' clock, round after round, until every
    reading is acknowledged (bounded)."""
    for _ in range(rounds):
        with contextlib.suppress(AssertionError):
            wait_for(lambda: devices.unacked() == 0, TIMEOUT_S / rounds, "not yet")
            return
        clock.now += ACK_RESEND_S
        for sensor in devices.sensors:
            sensor.poll()
    assert devices.unacked() == 0, f"{devices.unacked()} readings never acknowledged"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_gateway_acks_readings_only_once_they_are_in_the_outbox(
    mosquitto: Mosquitto, tmp_path: Path, clock: FakeClock
) -> None:
    gateway, names = make_gateway(mosquitto.settings, tmp_path)
    gateway.gate = threading.Event()
    gateway.start()
    devices = Devices(names, mosquitto.settings, clock, boot=1)
    try:
        assert gateway.subscribed.wait(TIMEOUT_S), "gateway never subscribed"
        devices.play(5)
        wait_for(lambda: gateway.counts.received >= 10, TIMEOUT_S, gateway.summary())
        time.sleep(0.5)  # an ack published before the write would arrive meanwhile
        assert all(s.acks == 0 for s in devices.sensors)
        assert devices.unacked() == 10 and kept_keys(gateway) == set()
        gateway.gate.set()
        wait_for(lambda: devices.unacked() == 0, TIMEOUT_S, "never acknowledged")
        assert set(devices.sent) <= kept_keys(gateway)
        assert all(s.resent == 0 for s in devices.sensors)
    finally:
        gateway.gate.set()
        devices.close()
        gateway.stop()


@pytest.mark.parametrize("follows_acks", [True, False], ids=["acked", "legacy"])
def test_gateway_kill_9_of_mosquitto_before_its_autosave_loses_no_reading(
    tmp_path: Path, clock: FakeClock, follows_acks: bool
) -> None:
    """The issue's case: a backlog for a stopped gateway lives only in the broker's memory
    (autosave not yet due) when mosquitto is killed. A device that forgets on PUBACK
    (firmware without acks: "legacy") loses at least that backlog; one that keeps its
    readings until the gateway's ack loses nothing."""
    broker = Mosquitto(tmp_path / "broker")
    # the deploy config saves every 30 s; here never during the test
    broker.config.write_text(broker.config.read_text().replace(
        AUTOSAVE_LINE, "autosave_interval 3600"))
    broker.start()
    gateway, names = make_gateway(broker.settings, tmp_path)
    gateway.start()
    devices = Devices(names, broker.settings, clock, boot=1, follows_acks=follows_acks)
    try:
        assert gateway.subscribed.wait(TIMEOUT_S), "gateway never subscribed"
        devices.play(50)
        wait_for(lambda: gateway.counts.accepted >= 100, TIMEOUT_S, gateway.summary())
        gateway.stop()  # its session queues what comes next, in the broker's memory only
        devices.play(50)
        devices.wait_sent()
        backlog = set(devices.sent[-100:])
        broker.kill()
        devices.play(50)  # paho queues these while the broker is away
        broker.start()
        gateway, _ = make_gateway(broker.settings, tmp_path)
        gateway.start()
        wait_for(lambda: gateway.counts.connections >= 1, TIMEOUT_S, "gateway never back")
        if follows_acks:
            resend_until_acked(devices, clock)
        else:
            devices.wait_sent()
            time.sleep(1.0)  # whatever still reaches the gateway
        sent = set(devices.sent)
        lost = sent - kept_keys(gateway)
        resent = sum(s.resent for s in devices.sensors)
        log.warning("kill -9 of mosquitto, %s devices: sent %d, resent %d, lost %d",
                    "acked" if follows_acks else "legacy", len(sent), resent, len(lost))
        assert len(sent) == 300
        if follows_acks:
            assert lost == set()
        else:
            assert backlog <= lost  # what issue 17 measured (7,422 of 29,999 there)
    finally:
        devices.close()
        gateway.stop()
        broker.stop()


def test_gateway_isolates_a_message_its_outbox_cannot_store_and_goes_on(
    mosquitto: Mosquitto, tmp_path: Path, clock: FakeClock
) -> None:
    gateway, names = make_gateway(mosquitto.settings, tmp_path)
    gateway.poison_device = names[1]
    gateway.start()
    devices = Devices(names, mosquitto.settings, clock, boot=1)
    try:
        wait_for(lambda: gateway.counts.connections >= 1, TIMEOUT_S, "gateway not connected")
        time.sleep(0.5)
        devices.play(20)
        wait_for(lambda: devices.unacked() == 0, TIMEOUT_S,
                 f"stalled: {gateway.summary()}")
        good = {k for k in devices.sent if k[0] == names[0]}
        assert good <= kept_keys(gateway)
        assert gateway.counts.failed == 20 and gateway.counts.dead_lettered == 20
        assert gateway.counts.isolations >= 1
        letters = [m for _, m in gateway.outbox.pending(0, 10_000) if "deadletter" in m.topic]
        assert all(b"internal_error" in m.payload and b"OverflowError" in m.payload
                   for m in letters)
    finally:
        devices.close()
        gateway.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs (a size-limited file system of its own) mounted for the test."""
    if os.geteuid() != 0:
        pytest.fail("mounting a size-limited file system needs root: run the tests as root"
                    " (CI does) or under sudo", pytrace=False)
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out:  # unbuffered: close has nothing to flush
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC
    return filler


def test_gateway_with_a_full_outbox_disk_stops_accepting_and_resumes_by_itself(
    mosquitto: Mosquitto, tmp_path: Path, clock: FakeClock, small_disk: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    gateway, names = make_gateway(mosquitto.settings, tmp_path, state_dir=small_disk)
    gateway._retry = Backoff(base_s=0.05, cap_s=0.2)
    with caplog.at_level(logging.INFO):
        gateway.start()
        devices = Devices(names, mosquitto.settings, clock, boot=1)
        try:
            wait_for(lambda: gateway.counts.connections >= 1, TIMEOUT_S, "not connected")
            time.sleep(0.5)
            filler = fill(small_disk)
            devices.play(200)  # more than the pages SQLite had left
            wait_for(lambda: not gateway.accepting, TIMEOUT_S, gateway.summary())
            acknowledged = gateway.counts.acknowledged
            wait_for(lambda: gateway.counts.persist_retries >= 5, TIMEOUT_S, "no retries")
            assert gateway.counts.acknowledged == acknowledged  # nothing while full
            assert devices.unacked() > 0
            filler.unlink()
            wait_for(lambda: devices.unacked() == 0, TIMEOUT_S, gateway.summary())
            assert gateway.accepting
            assert set(devices.sent) <= kept_keys(gateway)
        finally:
            devices.close()
            gateway.stop()
    full = [r for r in caplog.records if "database or disk is full" in r.getMessage()]
    assert len(full) == 1 and str(small_disk) in full[0].getMessage()
    assert "works again" in caplog.text


def test_gateway_counts_a_read_only_outbox_as_unavailable_not_as_a_bad_message(
    tmp_path: Path,
) -> None:
    # A file system cannot be remounted read-only while the outbox holds it open for
    # writing (EBUSY), so this checks the error SQLite gives on a read-only database and
    # that the gateway waits it out like a full disk (same retry path as above).
    path = tmp_path / "ro.sqlite"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    readonly = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    with pytest.raises(sqlite3.OperationalError, match="readonly") as caught:
        readonly.execute("INSERT INTO t VALUES (1)")
    readonly.close()
    gateway, _ = make_gateway(MqttSettings(url="mqtt://127.0.0.1:1"), tmp_path)
    try:
        assert gateway.transient(caught.value)
        assert not gateway.transient(OverflowError("Python int too large to convert"))
        assert not gateway.transient(sqlite3.IntegrityError("NOT NULL constraint failed"))
    finally:
        gateway.stop()


def test_gateway_dead_letters_a_retained_reading_and_keeps_the_fresh_ones(
    mosquitto: Mosquitto, tmp_path: Path, clock: FakeClock
) -> None:
    """mosquitto cannot refuse a retained reading; the gateway must not take the broker's
    replay of it (at every subscribe) for a reading taken now."""
    gateway, names = make_gateway(mosquitto.settings, tmp_path)
    devices = Devices(names, mosquitto.settings, clock, boot=1, follows_acks=False)
    try:
        stale = devices.sensors[0]
        (reading,) = stale.observe(0, devices.start_ts, 2)
        retained = stale.client.publish(
            topics.device_reading(SITE, stale.device), json.dumps(reading), qos=1, retain=True)
        retained.wait_for_publish(TIMEOUT_S)
        gateway.start()
        # dead_letters is counted after the ack (after_ack), later than counts.dead_lettered
        wait_for(lambda: gateway.dead_letters.total() >= 1, TIMEOUT_S, gateway.summary())
        assert gateway.dead_letters["invalid_payload"] == 1, gateway.summary()
        devices.step = 1
        devices.play(3)
        wait_for(lambda: gateway.counts.accepted >= 6, TIMEOUT_S, gateway.summary())
        assert gateway.counts.dead_lettered == 1, gateway.summary()
    finally:
        devices.close()
        gateway.stop()
