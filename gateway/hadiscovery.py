"""Home Assistant MQTT discovery: the retained config messages that make each room of a site
appear in Home Assistant, built from the registry. Pure: no I/O; the caller publishes.

Per room, two entities grouped under one Home Assistant device (the room, with its name and
area): an occupancy ``binary_sensor`` (on while the room's count is above zero) and a people
``sensor`` (the count). Both read the room reading the gateway already publishes
(``softplace/v1/<site>/room/<room>``: site, room, time, count, sources; no device identity).

Availability is the room's sensors: each sensor's retained status topic is listed with
``availability_mode: any``, so the room is available while at least one of its sensors is
online. That is the only place a device id reaches Home Assistant, and only as a topic name
it needs to follow sensor health.

Off by default, per site: the registry's site flag (``Site.home_assistant``, added with the
wiring) decides whether the gateway publishes these at all; ``removals`` gives the empty
retained payloads that make Home Assistant forget a site's rooms when the flag is turned off.

Topic layout per Home Assistant's documented discovery schema:
``<discovery_prefix>/<component>/<object_id>/config`` with ``object_id`` the entity's
``unique_id`` (characters ``[a-zA-Z0-9_-]``), payload a JSON object with ``unique_id``,
``device`` (``identifiers``, ``name``, ``suggested_area``, ...), ``availability`` (a list of
``topic`` / ``payload_available`` / ``payload_not_available`` / ``value_template``) and
``origin``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from softplace import topics
from softplace.registry import PlacedRoom, Site

DEFAULT_PREFIX = "homeassistant"
BINARY_SENSOR = "binary_sensor"
SENSOR = "sensor"
CONFIG_LEAF = "config"
MANUFACTURER = "SoftPlace"
ORIGIN_NAME = "softplace"
ONLINE = "online"
OFFLINE = "offline"
# the sensors' status payload is JSON: {"v": 1, "state": "online" | "offline", ...}
STATE_TEMPLATE = "{{ value_json.state }}"
COUNT_TEMPLATE = "{{ value_json.count }}"
OCCUPIED_TEMPLATE = "{{ 'ON' if value_json.count | int > 0 else 'OFF' }}"
_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass(frozen=True, slots=True)
class DiscoveryMessage:
    """One retained message to publish: ``payload`` None means the empty removal payload."""

    topic: str
    payload: dict[str, Any] | None

    def encoded(self) -> bytes:
        if self.payload is None:
            return b""
        return json.dumps(self.payload, sort_keys=True, separators=(",", ":")).encode()


def _safe(text: str) -> str:
    """Home Assistant's object ids allow only ``[a-zA-Z0-9_-]``; our ids also allow dots."""
    return _UNSAFE.sub("_", text)


def room_key(placed: PlacedRoom) -> str:
    return _safe(f"softplace_{placed.site.id}_{placed.room.id}")


def _device(placed: PlacedRoom, sw_version: str) -> dict[str, Any]:
    room = placed.room
    area = room.name or room.id
    return {
        "identifiers": [room_key(placed)],
        "name": area,
        "manufacturer": MANUFACTURER,
        "model": f"room ({room.kind.value})",
        "sw_version": sw_version,
        "suggested_area": area,
    }


def _availability(placed: PlacedRoom) -> list[dict[str, str]]:
    return [
        {
            "topic": topics.device_status(placed.site.id, device),
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "value_template": STATE_TEMPLATE,
        }
        for device in placed.room.devices
    ]


def _entity(placed: PlacedRoom, sw_version: str) -> dict[str, Any]:
    base: dict[str, Any] = {
        "state_topic": topics.room(placed.site.id, placed.room.id),
        "device": _device(placed, sw_version),
        "origin": {"name": ORIGIN_NAME, "sw_version": sw_version},
        "qos": 1,
    }
    availability = _availability(placed)
    if availability:  # a room without sensors is never "unavailable", just never updated
        base["availability"] = availability
        base["availability_mode"] = "any"
    return base


def _topic(prefix: str, component: str, unique_id: str) -> str:
    return f"{prefix}/{component}/{unique_id}/{CONFIG_LEAF}"


def room_messages(placed: PlacedRoom, *, prefix: str = DEFAULT_PREFIX,
                  sw_version: str = "0") -> list[DiscoveryMessage]:
    key = room_key(placed)
    occupancy_id, people_id = f"{key}_occupancy", f"{key}_people"
    occupancy = {
        **_entity(placed, sw_version),
        "name": "Occupancy",
        "unique_id": occupancy_id,
        "device_class": "occupancy",
        "value_template": OCCUPIED_TEMPLATE,
        "payload_on": "ON",
        "payload_off": "OFF",
    }
    people = {
        **_entity(placed, sw_version),
        "name": "People",
        "unique_id": people_id,
        "state_class": "measurement",
        "unit_of_measurement": "people",
        "icon": "mdi:account-group",
        "value_template": COUNT_TEMPLATE,
    }
    return [
        DiscoveryMessage(_topic(prefix, BINARY_SENSOR, occupancy_id), occupancy),
        DiscoveryMessage(_topic(prefix, SENSOR, people_id), people),
    ]


def site_messages(site: Site, *, prefix: str = DEFAULT_PREFIX,
                  sw_version: str = "0") -> list[DiscoveryMessage]:
    """Every room's discovery configs, to publish retained at QoS 1 (on every connect)."""
    return [message for placed in site.placed_rooms()
            for message in room_messages(placed, prefix=prefix, sw_version=sw_version)]


def removals(site: Site, *, prefix: str = DEFAULT_PREFIX) -> list[DiscoveryMessage]:
    """Empty retained payloads on the same topics: Home Assistant removes the entities."""
    return [DiscoveryMessage(m.topic, None) for m in site_messages(site, prefix=prefix)]
