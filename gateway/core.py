"""The gateway's pure core: one device message in, what to publish out. No I/O.

What the core must remember across restarts (each device's last contribution to its room,
its health, the tie-break marks below) comes out of every decision as ``state`` rows the
shell keeps in the same transaction as the outgoing messages, and goes back in through
``restore`` at start.

Point keys never collide: a dead letter is stored under (site, reason, received ms) and a
room reading under (room, ts ms), so the gateway stamps every dead letter, and every reading
whose ts it supplies itself (unsynced clock), at least 1 ms after the previous one of the
same key (a monotonic tie-break; under a sustained burst of more than 1,000 a second the
stamps run ahead of the clock by the backlog).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from typing import NamedTuple

from gateway.dedupe import AckTracker, Deduper
from gateway.health import DeviceHealth, HealthReporter
from gateway.rooms import RoomCombiner
from gateway.settings import GatewaySettings
from softplace import topics
from softplace.errors import MessageError
from softplace.messages import (
    ACK_RESEND_S,
    COUNTER_MAX,
    INTERNAL_ERROR,
    DeadLetter,
    DeadLetterReason,
    DeviceReading,
    DeviceStatus,
    decode_json_object,
    parse_device_reading,
    parse_message,
)
from softplace.plausibility import count_problem, too_far_ahead
from softplace.registry import PlacedRoom, Site

MS_PER_S = 1000
DEVICE_STATE = "device/"  # + device id: its _DeviceState as JSON
DEADLETTER_MARK = "mark/deadletter"  # the last dead letter's received_at, in ms
ROOM_MARK = "mark/room/"  # + room id: the last gateway-stamped ts of the room, in ms
ACKED = "acked/"  # + device id: "boot seq" of the last DeviceAck
# a hole in a device's readings is skipped after the device re-sent its tail twice
ACK_GAP_WAIT_S = 2.5 * ACK_RESEND_S
DeviceKey = tuple[str, int, int]


class Outgoing(NamedTuple):  # immutable, and a third of a frozen dataclass's cost to build
    topic: str
    payload: bytes
    retain: bool = False


@dataclass(slots=True)
class Decision:
    """What handling one message produced; ``accepted`` is the reading's dedupe key;
    ``ack`` the (device, boot, seq) the device may forget once this decision is kept
    (accepted, dead-lettered or a duplicate alike), and ``ack_moved`` whether it moved the
    device's ``ACKED`` state row (kept with it); ``state`` rows to keep with it, and
    ``device``, whose state row to keep with it: that row is built when the batch is kept
    (``GatewayCore.state_rows``), once per device and batch, as only the latest counts."""

    outgoing: list[Outgoing] = field(default_factory=list)  # upstream, via the outbox
    local: list[Outgoing] = field(default_factory=list)  # the site broker only
    accepted: DeviceKey | None = None
    rejected: DeadLetter | None = None
    ack: DeviceKey | None = None
    state: dict[str, str] = field(default_factory=dict)
    device: str | None = None
    ack_moved: bool = False


@dataclass(slots=True)
class _DeviceState:
    online: bool = False
    last_seen: float | None = None
    battery_pct: float | None = None
    rssi_dbm: int | None = None
    count: int | None = None  # its latest contribution to its room
    count_ts: float | None = None


_DEVICE_STATE_FIELDS = tuple(f.name for f in fields(_DeviceState))


_ROOM_JSON = b'{"v":1,"site":"%s","room":"%s","ts":%s,"count":%d,"sources":%d}'


def room_template(site: str, room: str) -> bytes:
    """A room's ``RoomReading`` JSON with its site and room filled in, awaiting
    ``% (repr(ts).encode(), count, sources)`` (``room_json``); registry identifiers hold
    no ``%`` and need no escaping."""
    return _ROOM_JSON.replace(b"%s", site.encode(), 1).replace(b"%s", room.encode(), 1)


def room_json(site: str, room: str, ts: float, count: int, sources: int) -> bytes:
    """``RoomReading(...).to_json()``, at a fifth of pydantic's cost per reading: every
    field comes from the validated reading (a finite ts), the registry (identifiers that
    need no escaping) and the combiner, so there is nothing to validate; ``repr`` writes
    the float as pydantic does (but for ts below 1e-4: ``1e-05``, the same JSON number).
    The core fills each room's ``room_template`` the same way."""
    return room_template(site, room) % (repr(ts).encode(), count, sources)


def _stamp(now: float, last_ms: int) -> int:
    """``now`` in ms, at least 1 ms after ``last_ms``."""
    return max(math.floor(now * MS_PER_S), last_ms + 1)


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
        self._room_topics = {room: topics.room(site.id, room) for room in self._combiners}
        # each room's RoomReading JSON with site and room filled in (``room_json``)
        self._room_json = {room: room_template(site.id, room) for room in self._combiners}
        # the reading topic of every device of the site: no topics.parse for those
        self._reading_devices = {topics.device_reading(site.id, device): device
                                 for device in self.rooms_by_device}
        self.health = HealthReporter(settings.sensor_stale_s)
        self._deadletter_ms = 0
        self._room_ms: dict[str, int] = {}
        self._acks: dict[str, AckTracker] = {}

    # -- state kept across restarts ------------------------------------------------------
    def restore(self, rows: dict[str, str]) -> None:
        """Take back the ``state`` rows of earlier decisions (the latest value per key)."""
        for key, value in rows.items():
            if key == DEADLETTER_MARK:
                self._deadletter_ms = int(value)
            elif key.startswith(ACKED):
                boot, seq = value.split()
                self._tracker(key.removeprefix(ACKED)).acked = (int(boot), int(seq))
            elif key.startswith(ROOM_MARK):
                self._room_ms[key.removeprefix(ROOM_MARK)] = int(value)
            elif key.startswith(DEVICE_STATE):
                device = key.removeprefix(DEVICE_STATE)
                placed = self.rooms_by_device.get(device)
                if placed is None:
                    continue  # moved out of the registry since
                state = _DeviceState(**json.loads(value))
                self._devices[device] = state
                combiner = self._combiners[placed.room.id]
                if state.count is not None and state.count_ts is not None:
                    combiner.update(device, state.count, state.count_ts)
                combiner.set_online(device, state.online)

    def state_rows(self, decisions: Iterable[Decision]) -> dict[str, str]:
        """The ``state`` rows to keep with ``decisions`` (in order, the latest row of each
        key wins), with the current state row of every device they changed."""
        rows: dict[str, str] = {}
        devices: set[str] = set()
        acked: dict[str, tuple[int, int]] = {}
        for decision in decisions:
            if decision.state:
                rows.update(decision.state)
            if decision.device is not None:
                devices.add(decision.device)
            if decision.ack_moved and decision.ack is not None:
                device, boot, seq = decision.ack
                acked[device] = (boot, seq)
        for device, (boot, seq) in acked.items():
            rows[ACKED + device] = f"{boot} {seq}"
        for device in devices:
            state = self._devices.get(device)
            if state is not None:
                rows[DEVICE_STATE + device] = json.dumps({
                    name: getattr(state, name) for name in _DEVICE_STATE_FIELDS})
        return rows

    def retained_reading(self, topic: str, payload: bytes, now: float) -> Decision:
        """A dead letter for a reading the broker kept retained and replays at subscribe
        time (mosquitto cannot refuse the retain flag per topic): never a fresh reading."""
        err = MessageError("invalid_payload", "a retained reading, replayed by the broker:"
                           " readings must be published without retain")
        return self._reject(topic, payload, err, now)

    def internal_error(self, topic: str, payload: bytes, detail: str, now: float) -> Decision:
        """A dead letter for a message whose handling or keeping raised (a bug)."""
        decision = self._reject(topic, payload, MessageError(INTERNAL_ERROR, detail), now)
        return self._acknowledge(decision, self._reading_key(topic, payload), now)

    def _tracker(self, device: str) -> AckTracker:
        tracker = self._acks.get(device)
        if tracker is None:
            tracker = self._acks[device] = AckTracker(ACK_GAP_WAIT_S,
                                                      self.settings.dedupe_keys_per_device)
        return tracker

    def _acknowledge(self, decision: Decision, key: DeviceKey | None, now: float) -> Decision:
        """Set what ``decision`` lets the gateway acknowledge once it is kept."""
        if key is None:
            return decision
        device, boot, seq = key
        tracker = self._acks.get(device) or self._tracker(device)
        before = tracker.acked
        acked = tracker.reached(boot, seq, now)
        if acked is not None:
            decision.ack = (device, *acked)
            # its ACKED state row, formatted once per batch and device (``state_rows``)
            decision.ack_moved = acked != before
        return decision

    def _reading_key(self, topic: str, payload: bytes) -> DeviceKey | None:
        """(topic device, boot, seq) of a reading on this site's reading topic when the
        payload carries a usable pair, even if it is otherwise refused: acknowledging it
        stops the device re-sending it forever."""
        try:
            parsed = topics.parse(topic)
            data = decode_json_object(payload)
        except (ValueError, MessageError):
            return None
        boot, seq = data.get("boot"), data.get("seq")
        if (parsed.site != self.site.id or parsed.kind != topics.TopicKind.DEV
                or parsed.leaf != "reading" or parsed.subject is None):
            return None
        if type(boot) is not int or type(seq) is not int:
            return None
        if not (0 <= boot <= COUNTER_MAX and 0 <= seq <= COUNTER_MAX):
            return None
        return (parsed.subject, boot, seq)

    # -- readings ------------------------------------------------------------------------
    def handle_reading(
        self, topic: str, payload: bytes, now: float, *, redelivered: bool = False,
        decoded: DeviceReading | None = None,
    ) -> Decision:
        """A duplicate (the broker redelivering, ``redelivered``, or the device re-sending
        what no ack covered yet) is acknowledged quietly; the outbox already has it.
        ``decoded``: the payload's reading as ``parse_device_readings`` gave it for the
        batch (None: decoded here)."""
        try:
            reading, placed = self._validate(topic, payload, now, decoded)
        except MessageError as err:
            key = self._reading_key(topic, payload)
            if err.reason == "duplicate":
                return self._acknowledge(Decision(), key, now)
            return self._acknowledge(self._reject(topic, payload, err, now), key, now)
        room_id = placed.room.id
        state_rows: dict[str, str] = {}
        if not reading.synced:
            # an unsynced clock counts from 2000 or from boot: the gateway's clock is better
            stamped = _stamp(now, self._room_ms.get(room_id, 0))
            self._room_ms[room_id] = stamped
            state_rows[ROOM_MARK + room_id] = str(stamped)
            reading = reading.model_copy(update={"ts": stamped / MS_PER_S, "synced": True})
        device, ts, count = reading.device, reading.ts, reading.count
        key = (device, reading.boot, reading.seq)
        room_count = self._combiners[room_id].update(device, count, ts)

        # remembered at once, so a copy later in the same batch is already a duplicate;
        # a batch that then fails to reach disk is never acknowledged, and the restarted
        # gateway reloads only the keys that did
        self.deduper.remember(*key)
        outgoing = Outgoing(self._room_topics[room_id], self._room_json[room_id] % (
            repr(ts).encode(), room_count.count, room_count.sources))
        decision = Decision([outgoing], [], key, None, None, state_rows, device)
        state = self._devices.get(device)
        if state is None:
            state = self._devices[device] = _DeviceState()
        state.online = True
        if state.last_seen is None or ts > state.last_seen:
            state.last_seen = ts
        if state.count_ts is None or ts >= state.count_ts:
            state.count, state.count_ts = count, ts
        if reading.battery_pct is not None:
            state.battery_pct = reading.battery_pct
        if reading.rssi_dbm is not None:
            state.rssi_dbm = reading.rssi_dbm
        return self._acknowledge(decision, key, now)

    def _validate(
        self, topic: str, payload: bytes, now: float, decoded: DeviceReading | None = None,
    ) -> tuple[DeviceReading, PlacedRoom]:
        subject = self._reading_devices.get(topic)
        if subject is None:
            try:
                subject = topics.parse(topic).subject
            except ValueError as err:
                raise MessageError("unknown_topic", str(err)) from err
        reading = decoded if decoded is not None else parse_device_reading(payload)
        if subject != reading.device:
            raise MessageError(
                "device_topic_mismatch",
                f"payload device {reading.device!r} published on {subject!r}'s topic",
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
        if self.deduper.seen(reading.device, reading.boot, reading.seq):
            raise MessageError("duplicate", f"reading {reading.key} was already accepted")
        return reading, placed

    def _reject(self, topic: str, payload: bytes, err: MessageError, now: float) -> Decision:
        reason: DeadLetterReason = err.reason  # type: ignore[assignment]
        self._deadletter_ms = _stamp(now, self._deadletter_ms)
        letter = DeadLetter.of(site=self.site.id, topic=topic, payload=payload, reason=reason,
                               detail=err.detail, received_at=self._deadletter_ms / MS_PER_S)
        where = topics.deadletter(self.site.id)
        mark = {DEADLETTER_MARK: str(self._deadletter_ms)}
        if not self.payload_stays_on_site:
            return Decision(outgoing=[Outgoing(where, letter.to_json())], rejected=letter,
                            state=mark)
        return Decision(
            outgoing=[Outgoing(where, letter.without_payload().to_json())],
            local=[Outgoing(where, letter.to_json())],
            rejected=letter, state=mark,
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
        state.online = online
        self._combiners[self.rooms_by_device[device].room.id].set_online(device, online)
        # health says so at the next scheduled report
        return Decision(device=device)

    def scheduled_health(self, now: float) -> list[Outgoing]:
        """Every known device's health once per slot (``gateway.health``), never on a
        reading."""
        slot = self.health.due(now) if self._devices else None  # the first slot waits
        if slot is None:
            return []
        out = []
        for device, s in sorted(self._devices.items()):
            health = self.health.report(
                self.site.id, device, self.rooms_by_device[device].room.id,
                DeviceHealth(s.online, s.last_seen, s.battery_pct, s.rssi_dbm), slot)
            out.append(Outgoing(topics.health(self.site.id, device), health.to_json()))
        return out
