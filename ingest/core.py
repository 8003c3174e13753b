"""Ingest's pure core: an upstream MQTT message in, the points to store out.

The table ``_HANDLERS`` maps a topic kind to its message model and point builder: a new
upstream message is a new row. A gateway's ``RoomReadingBatch`` (``batch_for``) becomes
the points of all its messages, room counts thinned to their changes
(``softplace.thinning``), and the acknowledgement to send once they are stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from softplace import topics
from softplace.errors import MessageError
from softplace.messages import (
    SCHEMA_VERSION,
    BatchAck,
    BatchId,
    DeadLetter,
    GatewayStatus,
    Identifier,
    RoomReading,
    RoomReadingBatch,
    SensorHealth,
    decode_json_object,
    describe_validation_error,
    parse_message,
)
from softplace.registry import Registry
from softplace.schema import (
    DeadletterField,
    GatewayStatusField,
    RoomCountField,
    SensorHealthField,
    SeriesName,
)
from softplace.storage.base import FieldValue, Sample
from softplace.thinning import Held, thin_batch
from softplace.timeutil import s_to_ms

# a batch's lists, their item models (the slow path validates item by item)
_BATCH_LISTS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("readings", RoomReading), ("health", SensorHealth), ("deadletters", DeadLetter),
    ("prev", RoomReading), ("status", GatewayStatus),
)

# plain strings, as ``Sample(...)`` stores them
_ROOM_COUNT, _COUNT, _SOURCES = (
    str(name) for name in (SeriesName.ROOM_COUNT, RoomCountField.COUNT, RoomCountField.SOURCES))


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    detail: str


@dataclass(slots=True)
class BatchResult:
    """What one batch message gives: points, rejected items, and the ack once stored."""

    samples: list[Sample] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    ack: BatchAck | None = None  # None: no batch id to acknowledge (a broken envelope)
    readings: int = 0  # room readings in the batch
    thinned: int = 0  # of those, not stored: they repeat the point before them


class IngestCore:
    def __init__(self, registry: Registry, heartbeat_s: float = 0.0) -> None:
        self.heartbeat_ms = s_to_ms(heartbeat_s)
        self._room_tags: dict[tuple[str, str], dict[str, str]] = {
            (placed.site.id, placed.room.id): placed.tags for placed in registry.placed_rooms()
        }
        self._handlers: dict[str, Callable[[bytes], Sample]] = {
            topics.TopicKind.ROOM: self._room,
            topics.TopicKind.HEALTH: self._health,
            topics.TopicKind.DEADLETTER: self._deadletter,
        }

    def samples_for(self, topic: str, payload: bytes) -> Sample | Rejected:
        try:
            handler = self._handlers[topics.parse(topic).kind]
        except (ValueError, KeyError):
            return Rejected("unknown_topic", f"ingest does not handle {topic!r}")
        try:
            return handler(payload)
        except MessageError as err:
            return Rejected(err.reason, err.detail)

    # -- batches -------------------------------------------------------------------------
    def batch_for(self, payload: bytes) -> BatchResult:
        try:  # the hot path: one pass of pydantic's own JSON parser over the whole batch
            batch = RoomReadingBatch.model_validate_json(payload)
        except ValidationError:
            return self._batch_item_by_item(payload)
        return self._batch(batch, BatchResult(ack=BatchAck(site=batch.site, batch=batch.batch)))

    def _batch_item_by_item(self, payload: bytes) -> BatchResult:
        """A batch that failed validation: keep its valid items, reject the others."""
        try:
            raw = decode_json_object(payload)
        except MessageError as err:
            return BatchResult(rejected=[Rejected(err.reason, err.detail)])
        if raw.get("v") != SCHEMA_VERSION:
            return BatchResult(rejected=[Rejected(
                "unknown_schema_version",
                f"schema version {raw.get('v')!r}, expected {SCHEMA_VERSION}")])
        try:
            data = _Envelope.model_validate(raw)
        except ValidationError as err:
            return BatchResult(rejected=[Rejected("invalid_payload",
                                                  describe_validation_error(err))])
        result = BatchResult(ack=BatchAck(site=data.site, batch=data.batch))
        items: dict[str, list[Any]] = {}
        for name, model in _BATCH_LISTS:
            raw = getattr(data, name)
            valid = []
            for i, item in enumerate(raw):
                try:
                    valid.append(model.model_validate(item))
                except ValidationError as err:
                    result.rejected.append(Rejected(
                        "invalid_payload", f"{name}[{i}]: {describe_validation_error(err)}"))
            items[name] = valid
        batch = RoomReadingBatch.model_construct(
            site=data.site, batch=data.batch, readings=items["readings"],
            health=items["health"], deadletters=items["deadletters"], prev=items["prev"],
            status=items["status"])
        return self._batch(batch, result)

    def _batch(self, batch: RoomReadingBatch, result: BatchResult) -> BatchResult:
        samples = result.samples
        offline = {(batch.site, h.room) for h in batch.health if not h.online and h.room}
        readings = self._placed(batch.readings, result)
        prev = {key: (tags, held) for key, tags, held in self._placed(batch.prev, result)}
        thinned = thin_batch(
            {key: held for key, (_, held) in prev.items()},
            [(key, held) for key, _, held in readings], self.heartbeat_ms, offline,
        )
        samples.extend(_room_point(*prev[key]) for key in thinned.prev)
        samples.extend(_room_point(tags, held) for (_, tags, held), keep
                       in zip(readings, thinned.keep, strict=True) if keep)
        samples.extend(self._health_sample(h) for h in batch.health)
        samples.extend(self._deadletter_sample(d) for d in batch.deadletters)
        samples.extend(_status_sample(s) for s in batch.status)
        result.readings = len(readings)
        result.thinned = len(readings) - sum(thinned.keep)
        return result

    def _placed(self, readings: list[RoomReading], result: BatchResult,
                ) -> list[tuple[tuple[str, str], dict[str, str], Held]]:
        """(room key, its tags, what thinning looks at) of each reading of a room in the
        registry, in order; the others rejected. Each reading's time converted once."""
        tags_of = self._room_tags
        placed = []
        for reading in readings:
            key = (reading.site, reading.room)
            tags = tags_of.get(key)
            if tags is None:
                result.rejected.append(Rejected(
                    "unknown_device", f"room {reading.room!r} of site {reading.site!r} is not "
                                      "in the registry"))
                continue
            placed.append((key, tags, Held(s_to_ms(reading.ts), reading.count,
                                           reading.sources)))
        return placed

    # -- single messages -------------------------------------------------------------------
    def _room(self, payload: bytes) -> Sample:
        reading = parse_message(RoomReading, payload)
        tags = self._room_tags.get((reading.site, reading.room))
        if tags is None:
            raise MessageError("unknown_device", f"room {reading.room!r} of site "
                                                 f"{reading.site!r} is not in the registry")
        return self._room_sample(reading)

    def _room_sample(self, reading: RoomReading) -> Sample:
        # the hot path: the registry's tags, and ints the message model validated
        fields: dict[str, FieldValue] = {_COUNT: reading.count, _SOURCES: reading.sources}
        return Sample.checked_upstream(
            _ROOM_COUNT, self._room_tags[(reading.site, reading.room)], fields,
            s_to_ms(reading.ts))

    @classmethod
    def _health(cls, payload: bytes) -> Sample:
        return cls._health_sample(parse_message(SensorHealth, payload))

    @staticmethod
    def _health_sample(health: SensorHealth) -> Sample:
        tags = {"site": health.site, "device": health.device}
        if health.room:
            tags["room"] = health.room
        fields: dict[str, FieldValue] = {SensorHealthField.ONLINE: int(health.online)}
        optional = {
            SensorHealthField.LAST_SEEN: health.last_seen,
            SensorHealthField.BATTERY_PCT: health.battery_pct,
            SensorHealthField.RSSI_DBM: health.rssi_dbm,
        }
        fields.update({k: v for k, v in optional.items() if v is not None})
        return Sample(SeriesName.SENSOR_HEALTH, tags, fields, s_to_ms(health.ts))

    @classmethod
    def _deadletter(cls, payload: bytes) -> Sample:
        return cls._deadletter_sample(parse_message(DeadLetter, payload))

    @staticmethod
    def _deadletter_sample(letter: DeadLetter) -> Sample:
        # the original payload stays on the site broker: only the reason is stored
        return Sample(SeriesName.DEADLETTER, {"site": letter.site, "reason": letter.reason},
                      {DeadletterField.N: 1, DeadletterField.TOPIC: letter.topic},
                      s_to_ms(letter.received_at))


class _Envelope(BaseModel):
    """A batch with its items left unchecked, so the valid ones can still be kept."""

    v: int
    site: Identifier
    batch: BatchId
    readings: list[Any] = []
    health: list[Any] = []
    deadletters: list[Any] = []
    prev: list[Any] = []
    status: list[Any] = []


def _status_sample(status: GatewayStatus) -> Sample:
    return Sample(SeriesName.GATEWAY_STATUS, {"site": status.site},
                  {GatewayStatusField.BACKLOG_S: status.backlog_s,
                   GatewayStatusField.UPSTREAM: int(status.upstream)}, s_to_ms(status.ts))


def _room_point(tags: dict[str, str], held: Held) -> Sample:
    # the hot path: the registry's tags, and ints the message model validated
    fields: dict[str, FieldValue] = {_COUNT: held.count, _SOURCES: held.sources}
    return Sample.checked_upstream(_ROOM_COUNT, tags, fields, held.time_ms)
