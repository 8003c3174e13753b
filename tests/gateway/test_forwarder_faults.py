"""The forwarder's outbox delete failing for real: rows sent upstream, the disk filled, then
ingest's ack. The acknowledged rows must be deleted once the disk has room again, never sent
again, never lost, and the forwarder must go on forwarding (real mosquitto, real tmpfs)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from pathlib import Path

import pytest

from devkit.services import Mosquitto
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from softplace import topics
from softplace.messages import BatchAck, RoomReadingBatch
from softplace.mqtt import QOS_AT_LEAST_ONCE
from softplace.registry import load_registry
from softplace.settings import MqttSettings
from tests.e2e.stack import wait_for, write_registry

# clock and small_disk are fixtures: imported so pytest finds them here
from tests.gateway.test_delivery import (  # noqa: F401
    STEP_S,
    Devices,
    FakeClock,
    clock,
    fill,
    small_disk,
)
from tests.recorder import TopicRecorder

pytestmark = pytest.mark.services
SITE = "ack-site"  # the site the shared virtual sensors speak for
ROOMS = 2
TIMEOUT_S = 30.0
NEVER_RESEND_S = 3600.0  # no time-out re-send during the test: any repeat would be a bug
DISK_FULL = "database or disk is full"


class Upstream(TopicRecorder[RoomReadingBatch]):
    """Ingest's side of the hop, by hand: records every batch, acknowledges on demand."""

    def __init__(self, broker: MqttSettings, client_id: str) -> None:
        super().__init__(broker, client_id, topics.batch(SITE), RoomReadingBatch)

    def batches(self) -> list[RoomReadingBatch]:
        return self.messages()

    def readings(self) -> int:
        return sum(len(b.readings) for b in self.batches())

    def ack(self, batches: list[RoomReadingBatch]) -> None:
        for batch in batches:
            info = self.client.publish(topics.batch_ack(SITE),
                                       BatchAck(site=SITE, batch=batch.batch).to_json(),
                                       qos=QOS_AT_LEAST_ONCE)
            info.wait_for_publish(TIMEOUT_S)


def test_forwarder_retries_an_outbox_delete_the_full_disk_refused_and_goes_on(
    mosquitto: Mosquitto, tmp_path: Path, clock: FakeClock, small_disk: Path,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = tmp_path / "registry.yaml"
    names = write_registry(registry, SITE, rooms=ROOMS)
    settings = GatewaySettings(site=SITE, state_dir=small_disk, client_id=f"gw-{tmp_path.name}",
                               upstream_ack_timeout_s=NEVER_RESEND_S)
    gateway = Gateway(load_registry(registry).site(SITE), mosquitto.settings, settings)
    upstream = Upstream(mosquitto.settings, f"ingest-{tmp_path.name}")
    caplog.set_level(logging.INFO)
    gateway.start()
    devices = Devices(names, mosquitto.settings, clock, boot=1)
    try:
        assert gateway.subscribed.wait(TIMEOUT_S), "gateway never subscribed"
        devices.play(40)
        wait_for(lambda: upstream.readings() == 40 * ROOMS, TIMEOUT_S, gateway.summary())
        sent = upstream.batches()
        rows = gateway.outbox.size()
        assert gateway.inflight_rows() == rows > 0

        filler = fill(small_disk)  # after the send, before the ack
        upstream.ack(sent)
        wait_for(lambda: DISK_FULL in caplog.text, TIMEOUT_S, "the delete never failed")
        wait_for(lambda: gateway.forwarded == rows, TIMEOUT_S, gateway.summary())
        time.sleep(3.5)  # the forwarder's next rounds, still on a full disk
        assert gateway.outbox.size() == rows  # the acknowledged rows are still there
        assert gateway.inflight_rows() == 0  # and are no longer waiting for an ack

        filler.unlink()
        wait_for(lambda: gateway.outbox.size() == 0, TIMEOUT_S, gateway.summary())
        # the forwarder lives on: what comes next is sent and deleted as usual
        devices.play(10)
        wait_for(lambda: upstream.readings() == 50 * ROOMS, TIMEOUT_S, gateway.summary())
        upstream.ack(upstream.batches()[len(sent):])
        wait_for(lambda: gateway.outbox.size() == 0, TIMEOUT_S, gateway.summary())
    finally:
        devices.close()
        upstream.close()
        gateway.stop()

    # one error for the whole outage, naming the file and the reason, and its end
    failed = [r for r in caplog.records if "forwarding from" in r.getMessage()
              and r.levelno == logging.ERROR]
    assert len(failed) == 1 and DISK_FULL in failed[0].getMessage()
    assert str(small_disk) in failed[0].getMessage()
    assert "forwarding from" in caplog.text and "works again" in caplog.text
    batches = upstream.batches()
    assert len({b.batch for b in batches}) == len(batches)  # no batch sent twice
    readings = Counter((r.room, r.ts) for b in batches for r in b.readings)
    expected = {(f"room-{room}", devices.start_ts + step * STEP_S)
                for room in range(ROOMS) for step in range(50)}
    assert set(readings) == expected and set(readings.values()) == {1}
