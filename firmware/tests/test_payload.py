"""Payloads match softplace.messages; epoch conversion; topics."""

from mpytest import eq, ok, raises
from softplace_fw import payload, topics


def test_epoch_conversion():
    eq(payload.unix_offset(2000), 946684800)
    eq(payload.unix_offset(1970), 0)
    eq(payload.esp32_to_unix(0), 946684800)
    eq(payload.esp32_to_unix(784111777), 1730796577)
    raises(ValueError, payload.unix_offset, 1980)


def test_reading_fields_and_omitted_nones():
    r = payload.reading("esp32-0a1b2c", 3, 7, 1730796577, True, 2, "vl53l1x")
    eq(sorted(r.keys()), ["boot", "count", "device", "sensor", "seq", "synced", "ts", "v"])
    eq(r["v"], 1)
    r = payload.reading("d", 0, 0, 1, False, 0, "pir", battery_pct=80, rssi_dbm=-200)
    eq(r["rssi_dbm"], -127, "clamped to the schema range")
    eq(r["battery_pct"], 80)
    raises(ValueError, payload.reading, "d", 0, 0, 1, False, 0, "camera")


def test_status_truncates_long_error():
    s = payload.status("online", device="d", ts=5, reset_cause="watchdog", fw="0.1.0",
                       error="x" * 500)
    eq(len(s["error"]), 200)
    eq(payload.status("offline"), {"v": 1, "state": "offline"})
    raises(ValueError, payload.status, "asleep")


def test_reset_cause_names():
    eq(payload.reset_cause_name(3), "watchdog")
    eq(payload.reset_cause_name(None), "unknown")
    eq(payload.reset_cause_name(42), "code_42")


def test_encode_decode_round_trip():
    r = payload.reading("d", 1, 2, 1730796577, True, 1, "ld2410")
    eq(payload.decode(payload.encode(r)), r)
    ok(b"\n" not in payload.encode(r), "one line")
    raises(ValueError, payload.decode, b"[1]")


def test_topics():
    eq(topics.reading("hq", "esp32-01"), "softplace/v1/hq/dev/esp32-01/reading")
    eq(topics.status("hq", "esp32-01"), "softplace/v1/hq/dev/esp32-01/status")
    eq(topics.config("hq", "esp32-01"), "softplace/v1/hq/dev/esp32-01/config")
    raises(ValueError, topics.reading, "hq/+", "d")
    raises(ValueError, topics.reading, "hq", "")
    raises(ValueError, topics.reading, "hq", "-d")
    raises(ValueError, topics.reading, "hq", "a" * 65)
