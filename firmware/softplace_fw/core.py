"""SensorCore: presence filter + room count + reporting policy + payloads.

The one piece of counting logic SoftPlace has. The ESP32 firmware and the virtual
sensor used by the demo and the end-to-end tests both drive it, so a virtual reading
is byte-for-byte what a real device would publish for the same observations.

    core = SensorCore("esp32-a1b2c3", boot=7, config=DEFAULTS, sensor_kind="vl53l1x")
    for reading in core.observe(now_ms, unix_ts, synced, presence=True, entered=1):
        publish(topics.reading(site, core.device), payload.encode(reading))
"""

from . import FW_VERSION, payload
from .counting import Reporter, RoomCount
from .presence import PresenceFilter

DOORWAY_KINDS = ("vl53l1x", "virtual")


class SensorCore:
    def __init__(self, device_id: str, boot: int, config: dict, sensor_kind: str,
                 doorway=None) -> None:
        if sensor_kind not in payload.SENSOR_KINDS:
            raise ValueError("unknown sensor kind {!r}".format(sensor_kind))
        self.device = device_id
        self.boot = boot
        self.sensor = sensor_kind
        self.seq = 0
        self.count = 0
        self.occupied = False
        self.doorway = sensor_kind in DOORWAY_KINDS if doorway is None else bool(doorway)
        self._presence = PresenceFilter(config["debounce_ms"], config["hold_s"] * 1000)
        self._room = RoomCount(self.doorway, config["hold_s"] * 1000)
        self._reporter = Reporter(config["heartbeat_s"] * 1000)

    def reconfigure(self, config: dict) -> None:
        """Apply new timing (hold, debounce, heartbeat) without losing the count."""
        self._presence.debounce_ms = config["debounce_ms"]
        self._presence.hold_ms = config["hold_s"] * 1000
        self._room.hold_ms = config["hold_s"] * 1000
        self._reporter.heartbeat_ms = config["heartbeat_s"] * 1000

    @property
    def drift_resets(self) -> int:
        return self._room.drift_resets

    def observe(self, now_ms: int, unix_ts, synced: bool, presence, entered: int = 0,
                left: int = 0, rssi_dbm=None, battery_pct=None) -> list:
        """One sensing step; returns the reading payloads (dicts) to publish now.

        ``now_ms``: monotonic milliseconds; ``unix_ts``: Unix seconds (int on the device);
        ``presence``: raw presence (bool) or None when the hardware has no presence
        sensor; ``entered``/``left``: doorway crossings since the previous call.
        """
        if presence is None:
            held = None
        else:
            held = self._presence.update(now_ms, bool(presence))
            self.occupied = held
        self.count = self._room.update(now_ms, held, entered, left)
        if not self._reporter.due(now_ms, self.count):
            return []
        message = payload.reading(self.device, self.boot, self.seq, unix_ts, synced, self.count,
                                  self.sensor, battery_pct=battery_pct, rssi_dbm=rssi_dbm)
        self.seq += 1
        return [message]

    def status(self, state: str, unix_ts=None, reset_cause=None, error=None) -> dict:
        """A DeviceStatus payload for this device (``state``: "online" or "offline")."""
        return payload.status(state, device=self.device, ts=unix_ts, reset_cause=reset_cause,
                              fw=FW_VERSION, error=error)

    def will(self) -> dict:
        """The last-will payload: retained "offline", without a timestamp."""
        return payload.status("offline", device=self.device)
