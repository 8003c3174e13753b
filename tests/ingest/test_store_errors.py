"""Ingest tells a store that is unavailable (retry the batch) from a store that refuses one
message's points for good (dead-letter that message, let the rest land), on the real
influxd and mosquitto."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from devkit.embedded_broker import free_port
from devkit.services import Influxd, Mosquitto
from ingest.service import Ingest
from ingest.settings import IngestSettings
from softplace import topics
from softplace.errors import RejectedWriteError, StorageError
from softplace.messages import INTERNAL_ERROR, BatchAck, RoomReading, RoomReadingBatch
from softplace.mqtt import QOS_AT_LEAST_ONCE
from softplace.registry import load_registry
from softplace.schema import DeadletterField, RoomCountField, SeriesName, series
from softplace.settings import InfluxSettings, MqttSettings
from softplace.storage.base import Sample
from softplace.storage.influx import InfluxStore
from softplace.timeutil import s_to_ms
from tests.e2e.stack import wait_for, write_registry
from tests.recorder import TopicRecorder

pytestmark = pytest.mark.services
SITE = "conflict-site"
TIMEOUT_S = 30.0
DAY_S = 86_400
CONFLICT = "field type conflict"
STORE_TIMEOUT_S = 0.5


class Acks(TopicRecorder[BatchAck]):
    """The gateway's side of the hop: publishes batches, collects ingest's BatchAcks."""

    def __init__(self, broker: MqttSettings, client_id: str) -> None:
        super().__init__(broker, client_id, topics.batch_ack(SITE), BatchAck)

    def batches(self) -> list[str]:
        return [ack.batch for ack in self.messages()]

    def send(self, batch: RoomReadingBatch) -> None:
        info = self.client.publish(topics.batch(SITE), batch.model_dump_json(),
                                   qos=QOS_AT_LEAST_ONCE)
        info.wait_for_publish(TIMEOUT_S)


@pytest.fixture
def ingest_for(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Callable[[InfluxStore], Ingest]]:
    """Starts the real ingest service on the session broker for a given store."""
    started: list[Ingest] = []

    def start(store: InfluxStore) -> Ingest:
        registry = tmp_path / "registry.yaml"
        write_registry(registry, SITE, rooms=2)
        ingest = Ingest(load_registry(registry), store, mosquitto.settings,
                        IngestSettings(client_id=f"ingest-{tmp_path.name}", heartbeat_s=0,
                                       batch_interval_s=0.2, max_backoff_s=0.2),
                        sites=[SITE])
        ingest.start()
        started.append(ingest)
        assert ingest.subscribed.wait(TIMEOUT_S), "ingest never subscribed"
        return ingest

    yield start
    for ingest in started:
        ingest.stop()


def write_as_string(store: InfluxStore, tags: dict[str, str], time_ms: int) -> None:
    """A room count whose ``count`` is a string, straight to influxd (SoftPlace's own
    samples are typed): from then on influxd answers an integer ``count`` in that shard
    with 400 "partial write: field type conflict"."""
    tag_text = ",".join(f"{k}={v}" for k, v in sorted(tags.items()))
    response = httpx.post(
        f"{store.settings.url}/write",
        params={"db": store.settings.database,
                "rp": series(SeriesName.ROOM_COUNT).family.value, "precision": "ms"},
        content=f'{SeriesName.ROOM_COUNT},{tag_text} {RoomCountField.COUNT}="x" {time_ms}',
        timeout=TIMEOUT_S)
    assert response.status_code == 204, response.text


def reading(room: str, ts: int, count: int) -> RoomReading:
    return RoomReading(site=SITE, room=room, ts=ts, count=count, sources=1)


def test_ingest_dead_letters_a_batch_influxd_refuses_a_point_of_and_stores_the_rest(
    influx_store: InfluxStore, mosquitto: Mosquitto, ingest_for: Callable[[InfluxStore], Ingest],
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    now = int(time.time())
    bad_ts = now - 3 * DAY_S  # another shard than today's: only this point conflicts
    tags = {"site": SITE, "building": "b1", "floor": "f0", "room": "room-0"}
    write_as_string(influx_store, tags, s_to_ms(bad_ts))
    good = [reading(f"room-{i % 2}", now - 600 + 10 * i, i % 3) for i in range(20)]
    mixed = RoomReadingBatch(site=SITE, batch="mixed", readings=[*good[:10],
                                                                  reading("room-0", bad_ts, 2)])
    clean = RoomReadingBatch(site=SITE, batch="clean", readings=good[10:])
    gateway = Acks(mosquitto.settings, f"gw-{tmp_path.name}")
    try:
        ingest = ingest_for(influx_store)
        gateway.send(mixed)
        gateway.send(clean)
        wait_for(lambda: sorted(gateway.batches()) == ["clean", "mixed"], TIMEOUT_S,
                 "batches never acknowledged", describe=ingest.summary)
    finally:
        gateway.close()

    stored = influx_store.query(SeriesName.ROOM_COUNT, s_to_ms(now - DAY_S), s_to_ms(now + 1))
    assert sorted((s.tags["room"], s.time_ms, s.fields[RoomCountField.COUNT]) for s in stored) \
        == sorted((r.room, s_to_ms(r.ts), r.count) for r in good)
    (letter,) = influx_store.query(SeriesName.DEADLETTER, 0, s_to_ms(now + DAY_S))
    assert letter.tags["reason"] == INTERNAL_ERROR
    assert letter.fields[DeadletterField.TOPIC] == topics.batch(SITE)
    assert CONFLICT in caplog.text
    counts = ingest.counts
    assert (counts.failed, counts.dead_lettered, counts.dropped) == (1, 1, 0)
    assert counts.isolations >= 1
    assert counts.persist_retries == 0 and ingest.accepting  # never taken for an outage


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers (a hung server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


def test_ingest_takes_an_unreachable_slow_or_missing_store_for_an_outage(
    influxd: Influxd, influx_store: InfluxStore, silent_port: int, tmp_path: Path,
) -> None:
    registry = tmp_path / "registry.yaml"
    write_registry(registry, SITE, rooms=1)
    ingest = Ingest(load_registry(registry), influx_store, MqttSettings(url="mqtt://127.0.0.1:1"),
                    IngestSettings(client_id=f"ingest-{tmp_path.name}"))
    point = Sample(SeriesName.ROOM_COUNT, {"site": SITE, "room": "room-0"},
                   {RoomCountField.COUNT: 1}, s_to_ms(time.time()))
    stores = {
        "refused": InfluxStore(InfluxSettings(url=f"http://127.0.0.1:{free_port()}",
                                              timeout_s=STORE_TIMEOUT_S)),
        "timeout": InfluxStore(InfluxSettings(url=f"http://127.0.0.1:{silent_port}",
                                              timeout_s=STORE_TIMEOUT_S)),
        "no database": InfluxStore(influxd.settings_for("not_created_yet")),
    }
    errors: dict[str, Exception] = {}
    for name, store in stores.items():
        with pytest.raises(StorageError) as caught:
            store.write([point])
        errors[name] = caught.value
        store.close()
    write_as_string(influx_store, dict(point.tags), point.time_ms)
    with pytest.raises(RejectedWriteError) as refused:
        influx_store.write([point])
    assert CONFLICT in str(refused.value)
    try:
        assert {name: ingest.transient(err) for name, err in errors.items()} == dict.fromkeys(
            stores, True)
        assert not ingest.transient(refused.value)
        assert not ingest.transient(TypeError("a bug in a point"))
    finally:
        ingest.stop()  # never started, but its MQTT client holds sockets
