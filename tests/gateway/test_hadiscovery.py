"""Home Assistant discovery payloads: checked against Home Assistant's documented discovery
schema (topic layout, unique_id, device, availability), published retained on the real
mosquitto and read back, and their templates rendered with Jinja on real payloads."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import jinja2
import jsonschema
import paho.mqtt.client as paho
import pytest
import yaml

from devkit.services import Mosquitto
from devkit.virtual_sensor import VirtualSensor, firmware_config
from gateway import hadiscovery
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from softplace import topics
from softplace.messages import DeviceStatus, RoomReading
from softplace.mqtt import QOS_AT_LEAST_ONCE, connect_async, make_client
from softplace.registry import SAMPLE_REGISTRY, Site, load_registry
from tests.e2e.stack import wait_for

TIMEOUT_S = 20
SITE = load_registry(None).sites[0]
ROOMS = list(SITE.placed_rooms())
# <discovery_prefix>/<component>/[<node_id>/]<object_id>/config, ids in [a-zA-Z0-9_-]
TOPIC = re.compile(r"^homeassistant/(binary_sensor|sensor)/(?:[a-zA-Z0-9_-]+/)?([a-zA-Z0-9_-]+)"
                   r"/config$")
AVAILABILITY = {
    "type": "object",
    "required": ["topic"],
    "properties": {
        "topic": {"type": "string", "minLength": 1},
        "payload_available": {"type": "string"},
        "payload_not_available": {"type": "string"},
        "value_template": {"type": "string"},
    },
    "additionalProperties": False,
}
# the part of Home Assistant's MQTT binary_sensor / sensor discovery options we use
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "unique_id", "state_topic", "device", "origin"],
    "properties": {
        "name": {"type": "string"},
        "unique_id": {"type": "string", "pattern": r"^[a-zA-Z0-9_-]+$"},
        "state_topic": {"type": "string", "pattern": r"^[^#+]+$"},
        "value_template": {"type": "string"},
        "qos": {"enum": [0, 1, 2]},
        "device_class": {"enum": ["occupancy"]},
        "payload_on": {"type": "string"}, "payload_off": {"type": "string"},
        "state_class": {"enum": ["measurement"]},
        "unit_of_measurement": {"type": "string"},
        "icon": {"type": "string", "pattern": r"^mdi:"},
        "availability": {"type": "array", "minItems": 1, "items": AVAILABILITY},
        "availability_mode": {"enum": ["all", "any", "latest"]},
        "device": {
            "type": "object",
            "required": ["identifiers", "name"],
            "properties": {
                "identifiers": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "name": {"type": "string"}, "manufacturer": {"type": "string"},
                "model": {"type": "string"}, "sw_version": {"type": "string"},
                "suggested_area": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "origin": {
            "type": "object", "required": ["name"],
            "properties": {"name": {"type": "string"}, "sw_version": {"type": "string"}},
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}


def _render(template: str, payload: str) -> str:
    return jinja2.Environment(autoescape=False).from_string(template).render(
        value_json=json.loads(payload), value=payload)


def test_hadiscovery_payloads_follow_the_documented_schema() -> None:
    messages = hadiscovery.site_messages(SITE, sw_version="0.1.0")
    assert len(messages) == 2 * len(ROOMS)
    unique_ids = set()
    for message in messages:
        assert message.payload is not None
        match = TOPIC.match(message.topic)
        assert match, message.topic
        jsonschema.validate(message.payload, SCHEMA)
        assert match[2] == message.payload["unique_id"]  # object_id = unique_id
        kind = "binary_sensor" if message.payload.get("device_class") == "occupancy" \
            else "sensor"
        assert match[1] == kind
        unique_ids.add(message.payload["unique_id"])
    assert len(unique_ids) == len(messages)


def test_hadiscovery_room_level_only_and_availability_from_its_sensors() -> None:
    placed = next(p for p in ROOMS if len(p.room.devices) >= 1)
    occupancy, people = hadiscovery.room_messages(placed)
    assert occupancy.payload is not None and people.payload is not None
    assert occupancy.payload["state_topic"] == topics.room(SITE.id, placed.room.id)
    assert occupancy.payload["device"]["suggested_area"] == (placed.room.name or placed.room.id)
    assert occupancy.payload["device"] == people.payload["device"]  # one HA device per room
    assert [a["topic"] for a in occupancy.payload["availability"]] == [
        topics.device_status(SITE.id, d) for d in placed.room.devices]
    assert occupancy.payload["availability_mode"] == "any"
    text = occupancy.encoded().decode()
    outside_availability = json.dumps({k: v for k, v in occupancy.payload.items()
                                       if k != "availability"})
    for device in placed.room.devices:  # a device id appears only as a status topic
        assert text.count(device) == 1
        assert device not in outside_availability


def test_hadiscovery_templates_render_on_real_payloads() -> None:
    occupancy, people = hadiscovery.room_messages(ROOMS[0])
    assert occupancy.payload is not None and people.payload is not None
    busy = RoomReading(site=SITE.id, room=ROOMS[0].room.id, ts=1.0, count=3, sources=1)
    empty = busy.model_copy(update={"count": 0})
    assert _render(occupancy.payload["value_template"], busy.model_dump_json()) == "ON"
    assert _render(occupancy.payload["value_template"], empty.model_dump_json()) == "OFF"
    assert _render(people.payload["value_template"], busy.model_dump_json()) == "3"
    availability = occupancy.payload["availability"][0]
    for state in ("online", "offline"):
        status = DeviceStatus(state=state, device=ROOMS[0].room.devices[0])
        rendered = _render(availability["value_template"], status.model_dump_json())
        assert rendered == availability[f"payload_{'' if state == 'online' else 'not_'}available"]


def test_hadiscovery_removals_empty_every_topic() -> None:
    gone = hadiscovery.removals(SITE)
    assert {m.topic for m in gone} == {m.topic for m in hadiscovery.site_messages(SITE)}
    assert all(m.encoded() == b"" for m in gone)


def _read_retained(mosquitto: Mosquitto, expected: int, name: str) -> dict[str, bytes]:
    got: dict[str, bytes] = {}
    lock = threading.Lock()
    reader = make_client(mosquitto.settings, f"ha-reader-{name}", persistent=False)

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        if message.retain:
            with lock:
                got[message.topic] = bytes(message.payload)

    reader.on_message = on_message
    reader.on_connect = lambda client, *_: client.subscribe(
        f"{hadiscovery.DEFAULT_PREFIX}/#", QOS_AT_LEAST_ONCE)
    connect_async(reader, mosquitto.settings, persistent=False)
    try:
        wait_for(lambda: len(got) >= expected, TIMEOUT_S,
                 f"only {len(got)} of {expected} retained configs came back")
    finally:
        reader.disconnect()
        reader.loop_stop()
    return got


@pytest.mark.services
def test_hadiscovery_retained_configs_read_back_from_the_broker(mosquitto: Mosquitto) -> None:
    messages = hadiscovery.site_messages(SITE, sw_version="0.1.0")
    publisher = make_client(mosquitto.settings, "ha-publisher", persistent=False)
    connect_async(publisher, mosquitto.settings, persistent=False)
    wait_for(publisher.is_connected, TIMEOUT_S, "the publisher never connected")
    try:
        for info in [publisher.publish(m.topic, m.encoded(), qos=QOS_AT_LEAST_ONCE, retain=True)
                     for m in messages]:
            info.wait_for_publish(TIMEOUT_S)
        got = _read_retained(mosquitto, len(messages), "after-publish")
        assert set(got) == {m.topic for m in messages}
        for topic, payload in got.items():
            jsonschema.validate(json.loads(payload), SCHEMA)
            assert TOPIC.match(topic)
        for info in [publisher.publish(m.topic, m.encoded(), qos=QOS_AT_LEAST_ONCE, retain=True)
                     for m in hadiscovery.removals(SITE)]:
            info.wait_for_publish(TIMEOUT_S)
    finally:
        publisher.disconnect()
        publisher.loop_stop()


def _site_registry(path: Path, home_assistant: bool) -> Site:
    data = yaml.safe_load(SAMPLE_REGISTRY.read_text())
    data["sites"] = [s for s in data["sites"] if s["id"] == SITE.id]
    data["sites"][0]["home_assistant"] = home_assistant
    path.write_text(yaml.safe_dump(data))
    return load_registry(path).site(SITE.id)


@pytest.mark.services
def test_hadiscovery_gateway_publishes_configs_and_room_state_then_removes_them(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """The real gateway: configs on connect while the site asks for Home Assistant, each
    room's state retained on its room topic, and the configs removed once it stops asking."""
    settings = GatewaySettings(site=SITE.id, state_dir=tmp_path / "state")
    site = _site_registry(tmp_path / "on.yaml", home_assistant=True)
    expected = len(hadiscovery.site_messages(site))
    gateway = Gateway(site, mosquitto.settings, settings)
    placed = ROOMS[0]
    sensor: VirtualSensor | None = None
    try:
        gateway.start()
        marker = tmp_path / "state" / f"{SITE.id}.home-assistant"
        wait_for(marker.exists, TIMEOUT_S, "the gateway never published its configs")
        time.sleep(0.5)  # they reach the broker; a reader subscribed earlier sees no retain
        got = _read_retained(mosquitto, expected, "gateway-on")
        assert set(got) == {m.topic for m in hadiscovery.site_messages(site)}
        assert all(payload for payload in got.values())
        sensor = VirtualSensor(site.id, placed.room.devices[0], mosquitto.settings,
                               config=firmware_config(site=site.id, heartbeat_s=60, hold_s=10,
                                                      debounce_ms=0))
        start = time.time() - 120
        sensor.connect(now_ts=start)
        sensor.observe(0, start, 2)
        room_topic = topics.room(site.id, placed.room.id)
        wait_for(lambda: gateway.counts.accepted >= 1, TIMEOUT_S, gateway.summary())
        time.sleep(0.5)  # published after the outbox commit
        state = _read_retained_topic(mosquitto, room_topic)  # subscribed after: retained
        assert RoomReading.model_validate_json(state).count == 2
    finally:
        if sensor is not None:
            sensor.close()
        gateway.stop()
    off = Gateway(_site_registry(tmp_path / "off.yaml", home_assistant=False),
                  mosquitto.settings, settings)
    try:
        off.start()
        wait_for(lambda: not marker.exists(), TIMEOUT_S, "the gateway never removed its configs")
        time.sleep(0.5)  # the empty retained payloads reach the broker
        assert _read_retained(mosquitto, 0, "gateway-off") == {}
    finally:
        off.stop()


def _read_retained_topic(mosquitto: Mosquitto, topic: str) -> bytes:
    """What is (or, once it arrives, was) published on ``topic``; retained, it is there for
    any later subscriber too."""
    got: list[bytes] = []
    reader = make_client(mosquitto.settings, "ha-room-reader", persistent=False)
    reader.on_message = lambda _c, _u, m: got.append(bytes(m.payload))
    reader.on_connect = lambda client, *_: client.subscribe(topic, QOS_AT_LEAST_ONCE)
    connect_async(reader, mosquitto.settings, persistent=False)
    try:
        wait_for(lambda: bool(got), TIMEOUT_S, f"nothing retained on {topic}")
    finally:
        reader.disconnect()
        reader.loop_stop()
    return got[-1]
