"""Reading and status payloads, exactly as ``softplace.messages`` expects them.

Timestamps are Unix seconds as *integers* on the device: the ESP32 port uses
single-precision floats, which would round a 2020s Unix time to 128 s. MicroPython's
embedded ports count from 2000-01-01 instead of 1970-01-01; ``unix_offset`` finds out
which epoch the running port uses, so the same code is right on the ESP32, the unix
port and CPython.
"""

import json

SCHEMA_VERSION = 1
EPOCH_2000_OFFSET = 946684800  # seconds from 1970-01-01 to 2000-01-01 (UTC)
SENSOR_KINDS = ("ld2410", "vl53l1x", "pir", "virtual")
RESET_CAUSES = {1: "power_on", 2: "hard_reset", 3: "watchdog", 4: "deep_sleep", 5: "soft_reset"}


def unix_offset(epoch_year: int) -> int:
    """Seconds to add to ``time.time()`` for Unix time, given ``time.gmtime(0)[0]``."""
    if epoch_year == 2000:
        return EPOCH_2000_OFFSET
    if epoch_year == 1970:
        return 0
    raise ValueError("unknown epoch year {}".format(epoch_year))


def esp32_to_unix(seconds_since_2000: int) -> int:
    return seconds_since_2000 + EPOCH_2000_OFFSET


def reset_cause_name(code) -> str:
    """``machine.reset_cause()`` value -> short name (DeviceStatus allows 32 chars)."""
    if code is None:
        return "unknown"
    return RESET_CAUSES.get(code, "code_{}".format(code))


def reading(device: str, boot: int, seq: int, ts, synced: bool, count: int, sensor: str,
            battery_pct=None, rssi_dbm=None) -> dict:
    if sensor not in SENSOR_KINDS:
        raise ValueError("unknown sensor kind {!r}".format(sensor))
    out = {"v": SCHEMA_VERSION, "device": device, "boot": boot, "seq": seq, "ts": ts,
           "synced": bool(synced), "count": count, "sensor": sensor}
    if battery_pct is not None:
        out["battery_pct"] = battery_pct
    if rssi_dbm is not None:
        out["rssi_dbm"] = _clamp(int(rssi_dbm), -127, 0)
    return out


def status(state: str, device=None, ts=None, reset_cause=None, fw=None, error=None) -> dict:
    if state not in ("online", "offline"):
        raise ValueError("state must be online or offline")
    out = {"v": SCHEMA_VERSION, "state": state}
    fields = (("device", device, 64), ("ts", ts, 0), ("reset_cause", reset_cause, 32),
              ("fw", fw, 32), ("error", error, 200))
    for key, value, limit in fields:
        if value is None:
            continue
        if limit and isinstance(value, str) and len(value) > limit:
            value = value[:limit]
        out[key] = value
    return out


def encode(message: dict) -> bytes:
    return json.dumps(message).encode()


def decode(data) -> dict:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def _clamp(value: int, lo: int, hi: int) -> int:
    return lo if value < lo else hi if value > hi else value
