"""The forwarder's batching, pure: outbox rows in order -> ``RoomReadingBatch`` payloads.

A batch's JSON is put together from the rows' own JSON (no decoding, no re-encoding), at
most ``BATCH_BYTES``. Each batch carries the ``prev`` context of ingest's change-only
thinning (``softplace.thinning``): for each room in it, the room reading sent just before
its first one here. A sensor going offline drops its room's context (its next reading is
stored: the detector's unknown state ends there), and a room quiet for ``TAIL_FLUSH_S``
has its last reading sent as a ``prev`` on its own, which ingest stores (the last reading
before a silence). The context lives in memory: after a restart every room starts afresh.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gateway.core import Outgoing
from softplace import topics

# the deploy broker's max_packet_size is 65536; a batch stays under it with its envelope
BATCH_BYTES = 60_000
TAIL_FLUSH_S = 300.0
_LISTS = ((topics.TopicKind.ROOM, b"readings"), (topics.TopicKind.HEALTH, b"health"),
          (topics.TopicKind.DEADLETTER, b"deadletters"), (topics.TopicKind.GATEWAY, b"status"))
_LIST_OF: dict[str, bytes] = {str(kind): key for kind, key in _LISTS}


@dataclass(frozen=True, slots=True)
class Batch:
    batch_id: str
    ids: list[int]  # its outbox rows (none for a batch of tails only)
    payload: bytes


@dataclass(slots=True)
class Built:
    batches: list[Batch] = field(default_factory=list)
    foreign: list[int] = field(default_factory=list)  # rows on no upstream topic


@dataclass(slots=True)
class _Tail:
    payload: bytes
    sent_at: float
    flushed: bool = False


@dataclass(slots=True)
class _Open:
    lists: dict[bytes, list[bytes]] = field(default_factory=dict)
    prev: list[bytes] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    rooms: set[str] = field(default_factory=set)
    size: int = 0


class Batcher:
    def __init__(self, site_id: str, device_room: Mapping[str, str], epoch: str,
                 max_bytes: int = BATCH_BYTES, tail_flush_s: float = TAIL_FLUSH_S) -> None:
        self.site_id = site_id
        self.device_room = device_room
        self.epoch = epoch
        self.max_bytes = max_bytes
        self.tail_flush_s = tail_flush_s
        self._tails: dict[str, _Tail] = {}
        self._serial = 0

    def build(self, rows: Sequence[tuple[int, Outgoing]], now: float) -> Built:
        """Rows in outbox order; ``now`` (monotonic seconds) dates the tails. Tail flushes
        due join the first batch, or make one of their own."""
        built = Built()
        batch = _Open()
        for outbox_id, message in rows:
            parts = message.topic.split("/")
            kind = parts[3] if len(parts) == 5 or len(parts) == 4 else ""
            key = _LIST_OF.get(kind)
            if key is None:
                built.foreign.append(outbox_id)
                continue
            if batch.ids and batch.size + len(message.payload) > self.max_bytes:
                self._close(batch, built, now)
                batch = _Open()
            if kind == topics.TopicKind.ROOM:
                room = parts[-1]
                tail = self._tails.get(room)
                if room not in batch.rooms and tail is not None:
                    batch.prev.append(tail.payload)
                    batch.size += len(tail.payload) + 1
                batch.rooms.add(room)
                if tail is None:
                    self._tails[room] = _Tail(message.payload, now)
                else:  # in place: the same as a new _Tail, and the rooms keep their order
                    tail.payload, tail.sent_at, tail.flushed = message.payload, now, False
            elif kind == topics.TopicKind.HEALTH:
                self._health(parts[-1], message.payload, batch)
            batch.lists.setdefault(key, []).append(message.payload)
            batch.ids.append(outbox_id)
            batch.size += len(message.payload) + 1
        self._close(batch, built, now)
        return built

    def _health(self, device: str, payload: bytes, batch: _Open) -> None:
        room = self.device_room.get(device)
        if room is None or json.loads(payload).get("online", True):
            return
        tail = self._tails.pop(room, None)
        if tail is not None and room not in batch.rooms:
            batch.prev.append(tail.payload)  # ingest stores it: the sensor's last word
            batch.size += len(tail.payload) + 1
        batch.rooms.add(room)

    def _close(self, batch: _Open, built: Built, now: float) -> None:
        if not built.batches:
            for room, tail in self._tails.items():
                if batch.size + len(tail.payload) > self.max_bytes:
                    break  # the rest next time
                quiet = now - tail.sent_at >= self.tail_flush_s
                if quiet and not tail.flushed and room not in batch.rooms:
                    batch.prev.append(tail.payload)
                    batch.size += len(tail.payload) + 1
                    tail.flushed = True
        if batch.ids or batch.prev:
            built.batches.append(self._envelope(batch))

    def _envelope(self, batch: _Open) -> Batch:
        self._serial += 1
        batch_id = f"{self.epoch}-{self._serial}"
        head = b'{"v":1,"site":"%s","batch":"%s"' % (self.site_id.encode(), batch_id.encode())
        body = b"".join(b',"%s":[%s]' % (key, b",".join(batch.lists[key]))
                        for _, key in _LISTS if key in batch.lists)
        end = b',"prev":[%s]}' % b",".join(batch.prev) if batch.prev else b"}"
        return Batch(batch_id, batch.ids, head + body + end)
