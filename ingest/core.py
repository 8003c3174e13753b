"""Ingest's pure core: an upstream MQTT message in, the points to store out.

The table ``_HANDLERS`` maps a topic kind to its message model and point builder: a new
upstream message is a new row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from softplace import topics
from softplace.errors import MessageError
from softplace.messages import DeadLetter, RoomReading, SensorHealth, parse_message
from softplace.registry import Registry
from softplace.schema import DeadletterField, RoomCountField, SensorHealthField, SeriesName
from softplace.storage.base import FieldValue, Sample
from softplace.timeutil import s_to_ms


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    detail: str


class IngestCore:
    def __init__(self, registry: Registry) -> None:
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

    def _room(self, payload: bytes) -> Sample:
        reading = parse_message(RoomReading, payload)
        tags = self._room_tags.get((reading.site, reading.room))
        if tags is None:
            raise MessageError("unknown_device", f"room {reading.room!r} of site "
                                                 f"{reading.site!r} is not in the registry")
        fields: dict[str, FieldValue] = {
            RoomCountField.COUNT: reading.count, RoomCountField.SOURCES: reading.sources,
        }
        return Sample(SeriesName.ROOM_COUNT, tags, fields, s_to_ms(reading.ts))

    @staticmethod
    def _health(payload: bytes) -> Sample:
        health = parse_message(SensorHealth, payload)
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

    @staticmethod
    def _deadletter(payload: bytes) -> Sample:
        letter = parse_message(DeadLetter, payload)
        # the original payload stays on the site broker: only the reason is stored
        return Sample(SeriesName.DEADLETTER, {"site": letter.site, "reason": letter.reason},
                      {DeadletterField.N: 1, DeadletterField.TOPIC: letter.topic},
                      s_to_ms(letter.received_at))
