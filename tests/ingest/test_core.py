from __future__ import annotations

import json
from typing import Any

from ingest.core import IngestCore, Rejected
from softplace import topics
from softplace.messages import (
    BatchAck,
    DeadLetter,
    GatewayStatus,
    RoomReading,
    RoomReadingBatch,
    SensorHealth,
)
from softplace.registry import load_registry
from softplace.storage.base import Sample

SITE = "branch-lyon-part-dieu"


def core() -> IngestCore:
    return IngestCore(load_registry())


def test_ingest_room_reading_gets_registry_tags() -> None:
    payload = RoomReading(site=SITE, room="meeting-a", ts=1_700_000_000.25, count=4,
                          sources=1).to_json()
    sample = core().samples_for(topics.room(SITE, "meeting-a"), payload)
    assert sample == Sample("room_count", {"site": SITE, "building": "main", "floor": "first",
                                           "room": "meeting-a", "kind": "meeting"},
                            {"count": 4, "sources": 1}, 1_700_000_000_250)


def test_ingest_health_keeps_only_known_fields() -> None:
    payload = SensorHealth(site=SITE, device="d1", room="hall", ts=1_700_000_000, online=True,
                           rssi_dbm=-70).to_json()
    sample = core().samples_for(topics.health(SITE, "d1"), payload)
    assert isinstance(sample, Sample)
    assert sample.fields == {"online": 1, "rssi_dbm": -70}


def test_ingest_deadletter_stores_reason_not_payload() -> None:
    letter = DeadLetter.of(site=SITE, topic="softplace/v1/x/dev/d/reading", payload=b"secret",
                           reason="malformed_json", detail="x", received_at=1_700_000_000)
    sample = core().samples_for(topics.deadletter(SITE), letter.to_json())
    assert isinstance(sample, Sample)
    assert sample.tags == {"site": SITE, "reason": "malformed_json"}
    assert "secret" not in repr(sample)


def test_ingest_rejects_unknown_room_and_bad_json() -> None:
    unknown = RoomReading(site=SITE, room="nowhere", ts=1.0, count=1, sources=1).to_json()
    assert isinstance(core().samples_for(topics.room(SITE, "nowhere"), unknown), Rejected)
    bad = core().samples_for(topics.room(SITE, "hall"), b"{")
    assert bad == Rejected("malformed_json", bad.detail if isinstance(bad, Rejected) else "")


def _batch(readings: list[RoomReading], **extra: Any) -> bytes:
    return RoomReadingBatch(site=SITE, batch="e1-7", readings=readings, **extra).to_json()


def test_ingest_batch_gives_every_point_and_its_ack() -> None:
    readings = [RoomReading(site=SITE, room="meeting-a", ts=1_700_000_000 + i, count=i,
                            sources=1) for i in range(3)]
    health = SensorHealth(site=SITE, device="d1", room="hall", ts=1_700_000_000, online=True)
    result = core().batch_for(_batch(readings, health=[health]))
    assert result.ack == BatchAck(site=SITE, batch="e1-7")
    assert [s.series for s in result.samples] == ["room_count"] * 3 + ["sensor_health"]
    assert result.rejected == []


def test_ingest_batch_thins_repeats_with_a_heartbeat() -> None:
    readings = [RoomReading(site=SITE, room="meeting-a", ts=1_700_000_000 + i, count=2,
                            sources=1) for i in range(5)]
    result = IngestCore(load_registry(), heartbeat_s=300).batch_for(_batch(readings))
    # the last one too: the gateway sends it again as a prev if a silence follows
    assert [s.time_ms for s in result.samples] == [1_700_000_000_000]
    assert (result.readings, result.thinned) == (5, 4)


def test_ingest_batch_keeps_its_valid_items_when_one_is_bad() -> None:
    good = RoomReading(site=SITE, room="meeting-a", ts=1_700_000_000, count=1, sources=1)
    unknown = RoomReading(site=SITE, room="nowhere", ts=1_700_000_000, count=1, sources=1)
    payload = _batch([good, unknown]).replace(b'"sources":1}]', b'"sources":1},{"v":1}]')
    result = core().batch_for(payload)
    assert result.ack == BatchAck(site=SITE, batch="e1-7")
    assert len(result.samples) == 1
    assert sorted(r.reason for r in result.rejected) == ["invalid_payload", "unknown_device"]


def test_ingest_batch_without_a_usable_id_is_rejected_unacknowledged() -> None:
    result = core().batch_for(b'{"v": 1, "site": "x", "readings": []}')
    assert result.ack is None
    assert [r.reason for r in result.rejected] == ["invalid_payload"]
    assert core().batch_for(b"[").rejected[0].reason == "malformed_json"


def test_ingest_batch_stores_the_gateway_status() -> None:
    status = GatewayStatus(site=SITE, ts=1_700_000_040, backlog_s=120.0, upstream=False)
    result = core().batch_for(_batch([], status=[status]))
    assert result.samples == [Sample("gateway_status", {"site": SITE},
                                     {"backlog_s": 120.0, "upstream": 0}, 1_700_000_040_000)]
    # a bad status is rejected on its own, the rest of the batch kept
    raw = json.loads(_batch([], status=[status]))
    raw["status"].append({"v": 1, "site": SITE, "ts": 1, "backlog_s": -1, "upstream": True})
    result = core().batch_for(json.dumps(raw).encode())
    assert len(result.samples) == 1 and result.rejected[0].detail.startswith("status[1]")
