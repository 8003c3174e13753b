"""MQTT topic names, versioned. One place builds and parses every topic.

Device side (site broker), device -> gateway:
    softplace/v1/<site>/dev/<device>/reading
    softplace/v1/<site>/dev/<device>/status    (retained; last will "offline")
    softplace/v1/<site>/dev/<device>/config    (retained; installer -> device)
    softplace/v1/<site>/dev/<device>/ack       (gateway -> device: kept up to (boot, seq))
Gateway -> upstream (no device identity in room readings):
    softplace/v1/<site>/room/<room>
    softplace/v1/<site>/health/<device>         (sensor health: no counts)
    softplace/v1/<site>/deadletter              (rejected input with the reason)
    softplace/v1/<site>/gateway                 (the gateway's own status, once a minute)
    softplace/v1/<site>/batch                   (the gateway's outbox batches: all four)
Ingest -> gateway:
    softplace/v1/<site>/batch/ack               (a batch is in the store)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "softplace/v1"
SHARED_GROUP_PREFIX = "$share"
DEVICE_LEAVES = frozenset({"reading", "status", "config", "ack"})
_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class TopicKind(StrEnum):
    """The fourth topic segment: what a topic carries."""

    DEV = "dev"
    ROOM = "room"
    HEALTH = "health"
    DEADLETTER = "deadletter"  # the topic; the stored series is schema.SeriesName.DEADLETTER
    GATEWAY = "gateway"  # messages.GatewayStatus
    BATCH = "batch"  # messages.RoomReadingBatch; its leaf "ack" carries messages.BatchAck


ACK_LEAF = "ack"


def check_segment(value: str, what: str) -> str:
    """A topic segment: no wildcards, separators or empty strings."""
    if not _SEGMENT.match(value):
        raise ValueError(f"{what} {value!r} must match {_SEGMENT.pattern}")
    return value


def device_reading(site: str, device: str) -> str:
    return f"{PREFIX}/{site}/{TopicKind.DEV}/{device}/reading"


def device_status(site: str, device: str) -> str:
    return f"{PREFIX}/{site}/{TopicKind.DEV}/{device}/status"


def device_config(site: str, device: str) -> str:
    return f"{PREFIX}/{site}/{TopicKind.DEV}/{device}/config"


def device_ack(site: str, device: str) -> str:
    """QoS 1, never retained: the gateway's ``DeviceAck`` once readings are in its outbox."""
    return f"{PREFIX}/{site}/{TopicKind.DEV}/{device}/ack"


def room(site: str, room_id: str) -> str:
    return f"{PREFIX}/{site}/{TopicKind.ROOM}/{room_id}"


def health(site: str, device: str) -> str:
    return f"{PREFIX}/{site}/{TopicKind.HEALTH}/{device}"


def deadletter(site: str) -> str:
    return f"{PREFIX}/{site}/{TopicKind.DEADLETTER}"


def gateway_status(site: str) -> str:
    return f"{PREFIX}/{site}/{TopicKind.GATEWAY}"


def batch(site: str) -> str:
    return f"{PREFIX}/{site}/{TopicKind.BATCH}"


def batch_ack(site: str) -> str:
    return f"{PREFIX}/{site}/{TopicKind.BATCH}/{ACK_LEAF}"


def all_device_readings(site: str) -> str:
    return f"{PREFIX}/{site}/{TopicKind.DEV}/+/reading"


def all_device_statuses(site: str) -> str:
    return f"{PREFIX}/{site}/{TopicKind.DEV}/+/status"


def upstream_filters(site: str = "+") -> list[str]:
    """What ingest subscribes to: batches, and single room readings, sensor health and dead
    letters (still accepted from other producers)."""
    return [batch(site), room(site, "+"), health(site, "+"), deadletter(site)]


def shared(group: str | None, topic_filter: str) -> str:
    """An MQTT 5 shared subscription filter, or the plain filter when no group is set."""
    return f"{SHARED_GROUP_PREFIX}/{group}/{topic_filter}" if group else topic_filter


def parse_kind(topic: str) -> str | None:
    """The fourth segment of a SoftPlace topic (a TopicKind, unchecked), without parsing
    the rest: the cheap test for a hot path."""
    parts = topic.split("/", 4)
    return parts[3] if len(parts) > 3 and topic.startswith(PREFIX + "/") else None


@dataclass(frozen=True, slots=True)
class ParsedTopic:
    site: str
    kind: str  # a TopicKind
    subject: str | None  # device or room id
    leaf: str | None  # one of DEVICE_LEAVES for device topics


def parse(topic: str) -> ParsedTopic:
    """Split a SoftPlace topic; raises ValueError for anything else."""
    parts = topic.split("/")
    if len(parts) < 4 or "/".join(parts[:2]) != PREFIX:
        raise ValueError(f"not a {PREFIX} topic: {topic!r}")
    site, kind, rest = parts[2], parts[3], parts[4:]
    if kind == TopicKind.DEV and len(rest) == 2 and rest[1] in DEVICE_LEAVES:
        return ParsedTopic(site, kind, rest[0], rest[1])
    if kind in {TopicKind.ROOM, TopicKind.HEALTH} and len(rest) == 1:
        return ParsedTopic(site, kind, rest[0], None)
    if kind in {TopicKind.DEADLETTER, TopicKind.GATEWAY} and not rest:
        return ParsedTopic(site, kind, None, None)
    if kind == TopicKind.BATCH and rest in ([], [ACK_LEAF]):
        return ParsedTopic(site, kind, None, rest[0] if rest else None)
    raise ValueError(f"unknown topic layout: {topic!r}")
