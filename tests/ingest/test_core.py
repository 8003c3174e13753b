from __future__ import annotations

from ingest.core import IngestCore, Rejected
from softplace import topics
from softplace.messages import DeadLetter, RoomReading, SensorHealth
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
