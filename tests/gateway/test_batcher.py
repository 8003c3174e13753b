"""The forwarder's batching: outbox rows -> RoomReadingBatch payloads, with thinning's
context (prev), within the broker's packet limit."""

from __future__ import annotations

from gateway.batcher import Batcher
from gateway.core import Outgoing
from softplace import topics
from softplace.messages import DeadLetter, RoomReading, RoomReadingBatch, SensorHealth

SITE = "s1"


def _room(room: str, ts: float, count: int) -> Outgoing:
    return Outgoing(topics.room(SITE, room),
                    RoomReading(site=SITE, room=room, ts=ts, count=count, sources=1).to_json())


def _health(device: str, online: bool) -> Outgoing:
    return Outgoing(topics.health(SITE, device), SensorHealth(
        site=SITE, device=device, room="r1", ts=5, online=online).to_json())


def _batcher(max_bytes: int = 60_000, tail_flush_s: float = 300) -> Batcher:
    return Batcher(SITE, {"d1": "r1"}, "e", max_bytes=max_bytes, tail_flush_s=tail_flush_s)


def test_batcher_puts_each_family_in_its_list_in_outbox_order() -> None:
    letter = DeadLetter.of(site=SITE, topic="x", payload=b"?", reason="malformed_json",
                           detail="", received_at=1)
    rows = [(1, _room("r1", 1, 1)), (2, _health("d1", True)),
            (3, Outgoing(topics.deadletter(SITE), letter.to_json())), (4, _room("r2", 2, 0))]
    (batch,) = _batcher().build(rows, now=0).batches
    parsed = RoomReadingBatch.model_validate_json(batch.payload)
    assert batch.ids == [1, 2, 3, 4]
    assert [r.room for r in parsed.readings] == ["r1", "r2"]
    assert len(parsed.health) == 1 and len(parsed.deadletters) == 1
    assert parsed.prev == [] and parsed.batch == batch.batch_id == "e-1"


def test_batcher_gives_each_room_its_previous_reading_and_splits_by_size() -> None:
    batcher = _batcher(max_bytes=300)
    batcher.build([(1, _room("r1", 1, 1))], now=0)
    built = batcher.build([(i, _room("r1", i, i)) for i in range(2, 6)], now=1)
    parsed = [RoomReadingBatch.model_validate_json(b.payload) for b in built.batches]
    assert len(parsed) > 1 and all(len(b.payload) <= 300 + 120 for b in built.batches)
    assert [r.ts for b in parsed for r in b.readings] == [2, 3, 4, 5]
    assert [p.ts for p in parsed[0].prev] == [1]
    assert [p.ts for p in parsed[1].prev] == [parsed[0].readings[-1].ts]


def test_batcher_flushes_a_quiet_room_once_and_forgets_it_when_its_sensor_goes_offline() -> None:
    batcher = _batcher(tail_flush_s=60)
    batcher.build([(1, _room("r1", 1, 1))], now=0)
    assert batcher.build([], now=30).batches == []
    (flush,) = batcher.build([], now=61).batches
    assert flush.ids == [] and [p.ts for p in RoomReadingBatch.model_validate_json(
        flush.payload).prev] == [1]
    assert batcher.build([], now=200).batches == []
    (offline,) = batcher.build([(2, _health("d1", False))], now=201).batches
    assert [p.ts for p in RoomReadingBatch.model_validate_json(offline.payload).prev] == [1]
    (after,) = batcher.build([(3, _room("r1", 300, 1))], now=300).batches
    assert RoomReadingBatch.model_validate_json(after.payload).prev == []


def test_batcher_sets_aside_rows_on_no_upstream_topic() -> None:
    built = _batcher().build([(1, Outgoing("elsewhere/x", b"{}")), (2, _room("r1", 1, 1))], 0)
    assert built.foreign == [1] and built.batches[0].ids == [2]


def test_batcher_keeps_tail_flushes_under_the_size_limit() -> None:
    batcher = _batcher(max_bytes=400, tail_flush_s=60)
    batcher.build([(i, _room(f"r{i}", i, 1)) for i in range(1, 11)], now=0)
    first = batcher.build([], now=100).batches
    assert len(first) == 1 and len(first[0].payload) <= 400 + 120
    flushed = len(RoomReadingBatch.model_validate_json(first[0].payload).prev)
    assert 0 < flushed < 10
    rest = batcher.build([], now=101).batches
    assert len(RoomReadingBatch.model_validate_json(rest[0].payload).prev) == min(
        10 - flushed, flushed)
