"""SensorCore: presence filter + room count + reporting policy + payloads.

The one piece of counting logic SoftPlace has. The ESP32 firmware and the virtual
sensor used by the demo and the end-to-end tests both drive it, so a virtual reading
is byte-for-byte what a real device would publish for the same observations.

    core = SensorCore("esp32-a1b2c3", boot=7, config=DEFAULTS, sensor_kind="vl53l1x")
    for reading in core.observe(now_ms, unix_ts, synced, presence=True, entered=1):
        publish(topics.reading(site, core.device), payload.encode(reading))

A sensor that cannot tell reports ``presence.UNKNOWN``: the core keeps the last known
state for the hold time, then the count is unknown (``count`` None, nothing published,
not even the heartbeat, so the gateway's staleness rule drops the sensor) and
``fault`` names the problem until the sensor answers again.

Readings taken before the clock was set: the core remembers their monotonic time by
``seq`` (the last ``MONO_KEEP`` of this boot), and ``restamp`` gives a queued one a real
``ts`` and ``synced: true`` once the clock is set, just before it is sent. The wire
format does not change; a reading from an earlier boot, or beyond that window, goes out
with ``synced: false`` as before.

The doorway tally is persistent: ``snapshot``/``restore`` carry it (and the day of the
last nightly reset) across a soft reset through RTC memory.
"""

from . import FW_VERSION, payload
from .counting import Reporter, RoomCount
from .presence import UNKNOWN, PresenceFilter

DOORWAY_KINDS = ("vl53l1x", "virtual")
MONO_KEEP = 64
DAY_S = 86400
HOUR_S = 3600
FAULT_UNKNOWN = "sensor silent or failing"


class SensorCore:
    def __init__(self, device_id: str, boot: int, config: dict, sensor_kind: str,
                 doorway=None) -> None:
        if sensor_kind not in payload.SENSOR_KINDS:
            raise ValueError("unknown sensor kind {!r}".format(sensor_kind))
        self.device = device_id
        self.boot = boot
        self.sensor = sensor_kind
        self.seq = 0
        self.count = 0  # type: int | None  # None: unknown
        self.occupied = False
        self.fault = None  # type: str | None
        self.faults = 0  # times the sensor went unknown
        self.nightly_resets = 0
        self.doorway = sensor_kind in DOORWAY_KINDS if doorway is None else bool(doorway)
        self._presence = PresenceFilter(config["debounce_ms"], config["hold_s"] * 1000)
        self._room = RoomCount(self.doorway, config["hold_s"] * 1000)
        self._reporter = Reporter(config["heartbeat_s"] * 1000)
        self._hold_ms = config["hold_s"] * 1000
        self._reset_hour = config.get("count_reset_hour", -1)
        self._reset_day = None  # type: int | None  # day (Unix days) of the last nightly reset
        self._unknown_since = None  # type: int | None
        self._mono = []  # type: list[tuple[int, int]]  # (seq, now_ms) of unsynced readings

    def reconfigure(self, config: dict) -> None:
        """Apply new timing (hold, debounce, heartbeat) and reset hour without losing the count."""
        self._presence.debounce_ms = config["debounce_ms"]
        self._presence.hold_ms = config["hold_s"] * 1000
        self._room.hold_ms = config["hold_s"] * 1000
        self._hold_ms = config["hold_s"] * 1000
        self._reporter.heartbeat_ms = config["heartbeat_s"] * 1000
        self._reset_hour = config.get("count_reset_hour", -1)

    @property
    def drift_resets(self) -> int:
        return self._room.drift_resets

    def snapshot(self) -> dict:
        """What must survive a soft reset (small: it lives in RTC memory)."""
        out = {"c": self._room.tally}
        if self._reset_day is not None:
            out["d"] = self._reset_day
        return out

    def restore(self, state: dict) -> None:
        tally = state.get("c")
        if self.doorway and isinstance(tally, int) and 0 <= tally <= 10000:
            self._room.restore(tally)
        day = state.get("d")
        if isinstance(day, int):
            self._reset_day = day

    def _nightly(self, unix_ts, synced: bool) -> None:
        if not self.doorway or self._reset_hour < 0 or not synced or unix_ts is None:
            return
        day, second = divmod(int(unix_ts), DAY_S)
        if second // HOUR_S != self._reset_hour or self._reset_day == day:
            return
        self._reset_day = day
        if self._room.tally:
            self._room.restore(0)
            self.nightly_resets += 1

    def _unknown(self, now_ms: int, entered: int, left: int) -> None:
        """The sensor cannot tell: hold the last known state, then the count is unknown."""
        if self._unknown_since is None:
            self._unknown_since = now_ms
            self.faults += 1
        self.fault = FAULT_UNKNOWN
        if now_ms - self._unknown_since >= self._hold_ms:
            self.count = None
            return
        held = None if self.doorway else self.occupied
        self.count = self._room.update(now_ms, held, entered, left)

    def observe(self, now_ms: int, unix_ts, synced: bool, presence, entered: int = 0,
                left: int = 0, rssi_dbm=None, battery_pct=None) -> list:
        """One sensing step; returns the reading payloads (dicts) to publish now.

        ``now_ms``: monotonic milliseconds; ``unix_ts``: Unix seconds (int on the device);
        ``presence``: raw presence (bool), None when the hardware has no presence
        sensor, or ``UNKNOWN``; ``entered``/``left``: doorway crossings since the
        previous call.
        """
        self._nightly(unix_ts, synced)
        if presence == UNKNOWN:
            self._unknown(now_ms, entered, left)
        else:
            if self._unknown_since is not None:
                self._unknown_since = None
                self.fault = None
                self._reporter.forget()  # back from unknown: say so at once
            if presence is None:
                held = None
            else:
                held = self._presence.update(now_ms, bool(presence))
                self.occupied = held
            self.count = self._room.update(now_ms, held, entered, left)
        count = self.count
        if count is None or not self._reporter.due(now_ms, count):
            return []
        message = payload.reading(self.device, self.boot, self.seq, unix_ts, synced, count,
                                  self.sensor, battery_pct=battery_pct, rssi_dbm=rssi_dbm)
        if not synced:
            self._mono.append((self.seq, now_ms))
            if len(self._mono) > MONO_KEEP:
                self._mono.pop(0)
        self.seq += 1
        return [message]

    def restamp(self, data: bytes, now_ms: int, unix_ts, synced: bool) -> bytes:
        """A queued reading (encoded) as it should be sent now: re-stamped with the real
        time it was taken if it was taken unsynced in this boot and the clock is set."""
        if not synced or not self._mono:
            return data
        try:
            message = payload.decode(data)
        except ValueError:
            return data
        if message.get("synced") is not False or message.get("boot") != self.boot:
            return data
        seq = message.get("seq")
        for i in range(len(self._mono)):
            if self._mono[i][0] == seq:
                taken = self._mono.pop(i)[1]
                message["ts"] = int(unix_ts) - (now_ms - taken) // 1000
                message["synced"] = True
                return payload.encode(message)
        return data

    def status(self, state: str, unix_ts=None, reset_cause=None, error=None) -> dict:
        """A DeviceStatus payload for this device (``state``: "online" or "offline")."""
        return payload.status(state, device=self.device, ts=unix_ts, reset_cause=reset_cause,
                              fw=FW_VERSION, error=error)

    def will(self) -> dict:
        """The last-will payload: retained "offline", without a timestamp."""
        return payload.status("offline", device=self.device)
