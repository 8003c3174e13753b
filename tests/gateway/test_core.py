"""The gateway's pure core: every dead-letter reason, room counts, dedupe, status."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.core import GatewayCore, room_json
from gateway.dedupe import AckTracker, Deduper
from gateway.rooms import RoomCombiner
from gateway.settings import GatewaySettings
from softplace import topics
from softplace.messages import DeadLetter, RoomReading, SensorHealth
from softplace.registry import load_registry

SITE = "branch-lyon-part-dieu"
NOW = 1_795_000_000.0


def reading(device: str = "lyon-office-1", **changes: Any) -> dict[str, Any]:
    base = {"v": 1, "device": device, "boot": 3, "seq": 10, "ts": NOW - 5, "synced": True,
            "count": 2, "sensor": "vl53l1x", "battery_pct": 81.5, "rssi_dbm": -62}
    base.update(changes)
    return base


@pytest.fixture
def core() -> GatewayCore:
    return GatewayCore(load_registry().site(SITE), GatewaySettings())


def handle(core: GatewayCore, payload: dict[str, Any] | bytes, device: str = "lyon-office-1",
           now: float = NOW) -> tuple[list[RoomReading], DeadLetter | None]:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    decision = core.handle_reading(topics.device_reading(SITE, device), raw, now)
    rooms = [RoomReading.model_validate_json(o.payload) for o in decision.outgoing
             if "/room/" in o.topic]
    return rooms, decision.rejected


def test_core_valid_reading_becomes_a_room_reading_without_device_identity(
    core: GatewayCore,
) -> None:
    rooms, rejected = handle(core, reading())
    assert rejected is None
    assert rooms == [RoomReading(site=SITE, room="office-1", ts=NOW - 5, count=2, sources=1)]
    assert "lyon-office-1" not in rooms[0].model_dump_json()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "malformed_json"),
        (b"[1, 2]", "malformed_json"),
        (reading(v=2), "unknown_schema_version"),
        (reading(count="three"), "invalid_payload"),
        (reading(extra_field=1), "invalid_payload"),
        (reading(count=-1), "implausible_count"),
        (reading(count=3 * 2 + 3), "implausible_count"),  # capacity 3 x factor 2 + 2 = 8
        (reading(ts=NOW + 3600), "timestamp_in_future"),
        (reading(ts=NOW - 30 * 86400), "timestamp_too_old"),
        (reading(device="lyon-office-2"), "device_topic_mismatch"),
    ],
)
def test_core_rejects_bad_input_with_its_reason(
    core: GatewayCore, payload: dict[str, Any] | bytes, reason: str
) -> None:
    rooms, rejected = handle(core, payload)
    assert rooms == []
    assert rejected is not None
    assert rejected.reason == reason
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    assert rejected.payload == raw  # the original bytes travel with the reason


def test_core_rejects_unknown_device(core: GatewayCore) -> None:
    _, rejected = handle(core, reading(device="stranger"), device="stranger")
    assert rejected is not None and rejected.reason == "unknown_device"


def test_core_duplicate_is_acked_quietly_and_next_good_reading_accepted(
    core: GatewayCore,
) -> None:
    assert handle(core, reading())[1] is None
    raw = json.dumps(reading()).encode()  # a device re-send (no DUP flag): no dead letter
    decision = core.handle_reading(topics.device_reading(SITE, "lyon-office-1"), raw, NOW)
    assert decision.outgoing == [] and decision.rejected is None
    rooms, rejected = handle(core, reading(seq=11, count=1))
    assert rejected is None and rooms[0].count == 1


def test_core_readings_of_an_earlier_boot_are_not_duplicates(core: GatewayCore) -> None:
    assert handle(core, reading(boot=3, seq=10))[1] is None
    assert handle(core, reading(boot=2, seq=10, ts=NOW - 60))[1] is None  # replayed buffer


def test_core_unsynced_clock_is_replaced_by_the_gateway_clock(core: GatewayCore) -> None:
    rooms, rejected = handle(core, reading(ts=86400.0, synced=False))
    assert rejected is None and rooms[0].ts == NOW


def test_core_max_room_takes_the_largest_fresh_count(core: GatewayCore) -> None:
    handle(core, reading(device="lyon-hall-door", count=12), device="lyon-hall-door")
    rooms, _ = handle(core, reading(device="lyon-hall-radar", count=1, seq=1),
                      device="lyon-hall-radar")
    assert (rooms[0].count, rooms[0].sources) == (12, 2)


def test_core_sum_room_adds_its_zones(core: GatewayCore) -> None:
    handle(core, reading(device="lyon-cowork-west", count=3), device="lyon-cowork-west")
    rooms, _ = handle(core, reading(device="lyon-cowork-east", count=4),
                      device="lyon-cowork-east")
    assert (rooms[0].count, rooms[0].sources) == (7, 2)


def test_core_offline_sensor_stops_counting_in_its_room(core: GatewayCore) -> None:
    handle(core, reading(device="lyon-hall-door", count=12), device="lyon-hall-door")
    status = json.dumps({"v": 1, "state": "offline", "device": "lyon-hall-door"}).encode()
    decision = core.handle_status(topics.device_status(SITE, "lyon-hall-door"), status, NOW)
    assert decision.outgoing == []  # health says so at its next scheduled report
    reports = [SensorHealth.model_validate_json(o.payload) for o in core.scheduled_health(NOW)]
    (health,) = [h for h in reports if h.device == "lyon-hall-door"]
    assert health.online is False
    rooms, _ = handle(core, reading(device="lyon-hall-radar", count=1), device="lyon-hall-radar")
    assert (rooms[0].count, rooms[0].sources) == (1, 1)


def test_core_status_of_unknown_device_is_dead_lettered(core: GatewayCore) -> None:
    status = json.dumps({"v": 1, "state": "online"}).encode()
    decision = core.handle_status(topics.device_status(SITE, "stranger"), status, NOW)
    assert decision.rejected is not None and decision.rejected.reason == "unknown_device"


def test_combiner_stale_sensor_is_left_out() -> None:
    combiner = RoomCombiner("max", stale_s=600)
    combiner.update("a", 9, 1000.0)
    assert combiner.update("b", 2, 1000.0 + 601) == combiner.update("b", 2, 1000.0 + 601)
    assert combiner.update("b", 2, 1000.0 + 601).count == 2


def test_combiner_late_reading_does_not_replace_newer_state() -> None:
    combiner = RoomCombiner("sum", stale_s=600)
    combiner.update("a", 5, 2000.0)
    combiner.update("a", 1, 1900.0)  # late
    assert combiner.update("b", 1, 2001.0).count == 6


def test_deduper_forgets_oldest_beyond_its_bound() -> None:
    deduper = Deduper(keys_per_device=3)
    for seq in range(5):
        deduper.remember("d", 1, seq)
    assert not deduper.seen("d", 1, 0)
    assert deduper.seen("d", 1, 4)


def test_core_broker_redelivery_of_a_kept_reading_is_acknowledged_quietly(
    core: GatewayCore,
) -> None:
    handle(core, reading())
    raw = json.dumps(reading()).encode()
    decision = core.handle_reading(topics.device_reading(SITE, "lyon-office-1"), raw, NOW,
                                   redelivered=True)
    assert decision.outgoing == [] and decision.rejected is None and decision.accepted is None


def test_core_with_a_separate_upstream_the_rejected_payload_stays_on_site() -> None:
    from softplace.settings import MqttSettings

    settings = GatewaySettings(upstream=MqttSettings(url="mqtt://central:1883"))
    core = GatewayCore(load_registry().site(SITE), settings)
    decision = core.handle_reading(topics.device_reading(SITE, "lyon-office-1"),
                                   b'{"v":1,"device":"lyon-office-1","count":"x"}', NOW)
    (upstream,) = [DeadLetter.model_validate_json(o.payload) for o in decision.outgoing]
    (local,) = [DeadLetter.model_validate_json(o.payload) for o in decision.local]
    assert upstream.payload == b"" and upstream.payload_bytes == local.payload_bytes
    assert b"lyon-office-1" in local.payload
    assert upstream.payload_sha256 == local.payload_sha256


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (reading(count="3"), "invalid_payload"),
        (reading(ts=str(int(NOW))), "invalid_payload"),
        (reading(synced="true"), "invalid_payload"),
        (reading(v=True), "unknown_schema_version"),
        (reading(seq=2**63), "invalid_payload"),
        (reading(boot=2**64), "invalid_payload"),
        (reading(count=-(2**63)), "invalid_payload"),
        (reading(ts=1e300), "invalid_payload"),
        (b'{"v":1,"v":1,' + json.dumps(reading())[1:].encode(), "malformed_json"),
        (b" " * 60_000 + json.dumps(reading()).encode(), "malformed_json"),
        (b"[" * 100_000, "malformed_json"),
        (b'{"v":1,"a":' + b"[" * 20 + b"]" * 20 + b"}", "malformed_json"),
        (b'{"v":1,"seq":' + b"9" * 4301 + b"}", "malformed_json"),
        (b'{"v":1,"seq":NaN}', "malformed_json"),
        (b'{"v":1,"device":"\xff\xfe"}', "malformed_json"),
    ],
)
def test_core_strict_validation_refuses_without_coercion(
    core: GatewayCore, payload: dict[str, Any] | bytes, reason: str
) -> None:
    rooms, rejected = handle(core, payload)
    assert rooms == []
    assert rejected is not None and rejected.reason == reason, rejected


def test_core_strings_that_look_like_structure_do_not_count_as_nesting(
    core: GatewayCore,
) -> None:
    _, rejected = handle(core, reading(sensor="pir") | {"battery_pct": 50})
    assert rejected is None
    raw = json.dumps(reading(seq=11)).encode()[:-1] + b', "x": "[[[[[[[[[[{{{{{{{{"}'
    _, rejected = handle(core, raw)
    assert rejected is not None and rejected.reason == "invalid_payload"  # extra field


def test_core_dead_letters_at_the_same_instant_get_distinct_times(core: GatewayCore) -> None:
    letters = [handle(core, b"junk")[1] for _ in range(3)]
    times = [letter.received_at for letter in letters if letter is not None]
    assert len(set(times)) == 3 and times == sorted(times)
    assert times[0] == NOW


def test_core_unsynced_readings_at_the_same_instant_get_distinct_times(
    core: GatewayCore,
) -> None:
    stamps = [handle(core, reading(seq=s, ts=86400.0, synced=False))[0][0].ts
              for s in range(3)]
    assert stamps == [NOW, NOW + 0.001, NOW + 0.002]


def test_core_acks_every_reading_that_carries_a_key_even_refused_ones(
    core: GatewayCore,
) -> None:
    topic = topics.device_reading(SITE, "lyon-office-1")
    accepted = core.handle_reading(topic, json.dumps(reading(seq=0)).encode(), NOW)
    refused = core.handle_reading(topic, json.dumps(reading(seq=1, count=99)).encode(), NOW)
    garbage = core.handle_reading(topic, b"not json", NOW)
    again = core.handle_reading(topic, json.dumps(reading(seq=0)).encode(), NOW)
    assert accepted.ack == ("lyon-office-1", 3, 0)
    assert refused.rejected is not None and refused.ack == ("lyon-office-1", 3, 1)
    assert garbage.rejected is not None and garbage.ack is None
    assert again.ack == ("lyon-office-1", 3, 1)  # a duplicate learns the latest ack
    restarted = GatewayCore(load_registry().site(SITE), GatewaySettings())
    restarted.restore(core.state_rows([accepted, refused]))
    later = restarted.handle_reading(topic, json.dumps(reading(seq=2)).encode(), NOW)
    assert later.ack == ("lyon-office-1", 3, 2)


def test_ack_tracker_never_acks_past_a_hole_until_it_has_waited() -> None:
    tracker = AckTracker(gap_wait_s=75)
    assert tracker.reached(1, 0, 0.0) == (1, 0)
    assert tracker.reached(1, 2, 1.0) == (1, 0)  # (1, 1) never reached us (yet)
    assert tracker.reached(1, 3, 2.0) == (1, 0)
    assert tracker.reached(1, 1, 30.0) == (1, 3)  # the re-sent tail fills the hole
    assert tracker.reached(2, 0, 31.0) == (2, 0)  # a reboot moves on at once
    assert tracker.reached(2, 5, 32.0) == (2, 0)
    assert tracker.reached(2, 6, 32.0 + 74) == (2, 0)
    assert tracker.reached(2, 7, 32.0 + 75) == (2, 7)  # the device no longer has 1..4


def test_ack_tracker_first_seen_mid_boot_waits_then_starts_there() -> None:
    tracker = AckTracker(gap_wait_s=75)
    assert tracker.reached(4, 100, 0.0) is None
    assert tracker.reached(4, 101, 80.0) == (4, 101)


def test_core_room_combiner_is_rebuilt_from_its_state_rows(core: GatewayCore) -> None:
    west = core.handle_reading(topics.device_reading(SITE, "lyon-cowork-west"),
                               json.dumps(reading(device="lyon-cowork-west", count=3)).encode(),
                               NOW)
    rows = core.state_rows([west])
    restarted = GatewayCore(load_registry().site(SITE), GatewaySettings())
    restarted.restore(rows)
    rooms, _ = handle(restarted, reading(device="lyon-cowork-east", count=4),
                      device="lyon-cowork-east")
    assert (rooms[0].count, rooms[0].sources) == (7, 2)
    forgetful = GatewayCore(load_registry().site(SITE), GatewaySettings())
    rooms, _ = handle(forgetful, reading(device="lyon-cowork-east", count=4),
                      device="lyon-cowork-east")
    assert (rooms[0].count, rooms[0].sources) == (4, 1)  # what a restart did before


@pytest.mark.parametrize("ts", [0.0, 1e-5, 1.5, 1700000000.0, 1700000000.1234567,
                                123456789012.5, 253_402_300_799.0])
@pytest.mark.parametrize(("count", "sources"), [(0, 1), (7, 2), (2**63 - 1, 2**63 - 1)])
def test_core_room_json_is_the_room_reading_contract(ts: float, count: int,
                                                     sources: int) -> None:
    """The core writes room readings without pydantic: the same message, byte for byte
    where pydantic and repr write the float alike (all but ts < 1e-4)."""
    fields: dict[str, Any] = {"site": "branch-lyon_part.dieu-2", "room": "Office-1",
                              "ts": ts, "count": count, "sources": sources}
    written = room_json(**fields)
    assert RoomReading.model_validate_json(written) == RoomReading(**fields)
    if ts == 0 or ts >= 1e-4:
        assert written == RoomReading(**fields).to_json()
