"""The gateway's pure core: one device message in, what to publish out. No I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.dedupe import Deduper
from gateway.rooms import RoomCombiner
from gateway.settings import GatewaySettings
from softplace import topics
from softplace.errors import MessageError
from softplace.messages import (
    DeadLetter,
    DeadLetterReason,
    DeviceReading,
    DeviceStatus,
    RoomReading,
    SensorHealth,
    parse_message,
)
from softplace.plausibility import count_problem, too_far_ahead
from softplace.registry import PlacedRoom, Site

HEALTH_INTERVAL_S = 60.0


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: bytes
    retain: bool = False


@dataclass(slots=True)
class Decision:
    """What handling one message produced; ``accepted`` is the reading's dedupe key."""

    outgoing: list[Outgoing] = field(default_factory=list)  # upstream, via the outbox
    local: list[Outgoing] = field(default_factory=list)  # the site broker only
    accepted: tuple[str, int, int] | None = None
    rejected: DeadLetter | None = None


@dataclass(slots=True)
class _DeviceState:
    online: bool = False
    last_seen: float | None = None
    last_health_at: float | None = None
    battery_pct: float | None = None
    rssi_dbm: int | None = None


class GatewayCore:
    def __init__(
        self, site: Site, settings: GatewaySettings, deduper: Deduper | None = None
    ) -> None:
        self.site = site
        # with a separate upstream broker, a rejected payload (device id and count) stays
        # on the site broker; upstream learns the reason, the size and a hash
        self.payload_stays_on_site = settings.upstream is not None
        self.settings = settings
        self.deduper = deduper or Deduper(settings.dedupe_keys_per_device)
        self.rooms_by_device: dict[str, PlacedRoom] = site.device_rooms()
        self._combiners = {
            placed.room.id: RoomCombiner(placed.room.combine, settings.sensor_stale_s)
            for placed in site.placed_rooms()
        }
        self._devices: dict[str, _DeviceState] = {}

    # -- readings ------------------------------------------------------------------------
    def handle_reading(
        self, topic: str, payload: bytes, now: float, *, redelivered: bool = False
    ) -> Decision:
        """``redelivered``: the broker's DUP flag. A duplicate that is the broker redelivering
        what we already kept is acknowledged quietly; any other duplicate is dead-lettered."""
        try:
            reading, placed = self._validate(topic, payload, now)
        except MessageError as err:
            if err.reason == "duplicate" and redelivered:
                return Decision()
            return self._reject(topic, payload, err, now)
        if not reading.synced:
            # an unsynced clock counts from 2000 or from boot: the gateway's clock is better
            reading = reading.model_copy(update={"ts": now, "synced": True})
        combiner = self._combiners[placed.room.id]
        room_count = combiner.update(reading.device, reading.count, reading.ts)
        room_reading = RoomReading(
            site=self.site.id, room=placed.room.id, ts=reading.ts,
            count=room_count.count, sources=room_count.sources,
        )
        # remembered at once, so a copy later in the same batch is already a duplicate;
        # a batch that then fails to reach disk is never acknowledged, and the restarted
        # gateway reloads only the keys that did
        self.deduper.remember(*reading.key)
        decision = Decision(accepted=reading.key)
        decision.outgoing.append(
            Outgoing(topics.room(self.site.id, placed.room.id), room_reading.to_json())
        )
        state = self._devices.setdefault(reading.device, _DeviceState())
        was_online = state.online
        state.online = True
        state.last_seen = max(state.last_seen or 0.0, reading.ts)
        if reading.battery_pct is not None:
            state.battery_pct = reading.battery_pct
        if reading.rssi_dbm is not None:
            state.rssi_dbm = reading.rssi_dbm
        due = state.last_health_at is None or now - state.last_health_at >= HEALTH_INTERVAL_S
        if due or not was_online:
            decision.outgoing.append(self._health(reading.device, state, now))
        return decision

    def _validate(
        self, topic: str, payload: bytes, now: float
    ) -> tuple[DeviceReading, PlacedRoom]:
        try:
            parsed = topics.parse(topic)
        except ValueError as err:
            raise MessageError("unknown_topic", str(err)) from err
        reading = parse_message(DeviceReading, payload)
        if parsed.subject != reading.device:
            raise MessageError(
                "device_topic_mismatch",
                f"payload device {reading.device!r} published on {parsed.subject!r}'s topic",
            )
        placed = self.rooms_by_device.get(reading.device)
        if placed is None:
            raise MessageError("unknown_device", f"device {reading.device!r} is in no room of "
                                                 f"site {self.site.id!r}")
        implausible = count_problem(reading.count, placed.room.capacity,
                                    self.settings.count_bound_factor)
        if implausible is not None:
            raise MessageError("implausible_count", implausible)
        if reading.synced and too_far_ahead(reading.ts, now, self.settings.max_future_s):
            raise MessageError("timestamp_in_future",
                               f"ts {reading.ts:.0f} is {reading.ts - now:.0f} s ahead")
        if reading.synced and reading.ts < now - self.settings.max_age_s:
            raise MessageError("timestamp_too_old",
                               f"ts {reading.ts:.0f} is {now - reading.ts:.0f} s old")
        if self.deduper.seen(*reading.key):
            raise MessageError("duplicate", f"reading {reading.key} was already accepted")
        return reading, placed

    def _reject(self, topic: str, payload: bytes, err: MessageError, now: float) -> Decision:
        reason: DeadLetterReason = err.reason  # type: ignore[assignment]
        letter = DeadLetter.of(site=self.site.id, topic=topic, payload=payload, reason=reason,
                               detail=err.detail, received_at=now)
        where = topics.deadletter(self.site.id)
        if not self.payload_stays_on_site:
            return Decision(outgoing=[Outgoing(where, letter.to_json())], rejected=letter)
        return Decision(
            outgoing=[Outgoing(where, letter.without_payload().to_json())],
            local=[Outgoing(where, letter.to_json())],
            rejected=letter,
        )

    # -- device status -------------------------------------------------------------------
    def handle_status(self, topic: str, payload: bytes, now: float) -> Decision:
        try:
            device = topics.parse(topic).subject
        except ValueError as err:
            return self._reject(topic, payload, MessageError("unknown_topic", str(err)), now)
        if device is None or device not in self.rooms_by_device:
            return self._reject(topic, payload, MessageError(
                "unknown_device", f"status of device {device!r}, which is in no room"), now)
        if not payload:  # a cleared retained status
            return Decision()
        try:
            status = parse_message(DeviceStatus, payload)
        except MessageError as err:
            return self._reject(topic, payload, err, now)
        online = status.state == "online"
        state = self._devices.setdefault(device, _DeviceState())
        changed = state.online != online or state.last_health_at is None
        state.online = online
        self._combiners[self.rooms_by_device[device].room.id].set_online(device, online)
        return Decision(outgoing=[self._health(device, state, now)] if changed else [])

    def _health(self, device: str, state: _DeviceState, now: float) -> Outgoing:
        state.last_health_at = now
        health = SensorHealth(
            site=self.site.id, device=device, room=self.rooms_by_device[device].room.id, ts=now,
            online=state.online, last_seen=state.last_seen, battery_pct=state.battery_pct,
            rssi_dbm=state.rssi_dbm,
        )
        return Outgoing(topics.health(self.site.id, device), health.to_json())
