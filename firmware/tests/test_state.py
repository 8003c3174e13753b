"""Presence you can trust, state across a soft reset, time, and config that applies.

Unknown is never 0; the doorway count and the synced clock survive a soft reset through
RTC memory (``rtcstate.RtcSlots`` over a fake RTC); the nightly reset; re-stamping of
readings taken before NTP; every remote key applied or refused with a reason.
"""

from fakes import FakeUART
from mpytest import eq, ok, scratch
from softplace_fw import config, ld2410, payload
from softplace_fw.app import Device
from softplace_fw.buffer import FlashSpool, OfflineBuffer, Ring
from softplace_fw.clock import RETRY_MS, WallClock
from softplace_fw.core import FAULT_UNKNOWN, SensorCore
from softplace_fw.drivers.ld2410 import LD2410Sensor
from softplace_fw.health import Health
from softplace_fw.presence import UNKNOWN
from softplace_fw.rtcstate import STATE_BYTES, RtcSlots

T0 = 1764633600  # 2025-12-02 00:00 UTC
DAY = 86400


class FakeRTC:
    """machine.RTC's user memory: what was last written, kept across a 'soft reset'."""

    def __init__(self, data=b"") -> None:
        self.data = data

    def memory(self, data=None):
        if data is None:
            return self.data
        if len(data) > 2048:
            raise ValueError("RTC memory is 2048 bytes")
        self.data = bytes(data)
        return None


def _cfg(**kw):
    cfg, errors = config.validate(kw)
    eq(errors, [])
    return cfg


def test_silent_presence_sensor_holds_then_unknown_never_zero():
    core = SensorCore("d", 0, _cfg(hold_s=10, debounce_ms=0, heartbeat_s=600), "ld2410")
    eq(core.observe(0, T0, True, True)[0]["count"], 1)
    eq(core.observe(1000, T0 + 1, True, UNKNOWN), [], "held: nothing new to say")
    eq(core.count, 1, "the last known state is held")
    eq(core.fault, FAULT_UNKNOWN)
    eq(core.observe(10999, T0 + 10, True, UNKNOWN), [])
    eq(core.count, 1)
    eq(core.observe(11000, T0 + 11, True, UNKNOWN), [])
    eq(core.count, None, "after the hold: unknown, not 0")
    eq(core.observe(700000, T0 + 700, True, UNKNOWN), [], "no heartbeat while unknown")
    out = core.observe(701000, T0 + 701, True, False)
    eq([m["count"] for m in out], [1], "back: the held occupant until the hold runs out")
    eq(core.fault, None)
    eq(core.faults, 1)


def test_silent_radar_through_the_driver_never_reads_vacant():
    now = [0]
    frame = ld2410.report_frame(ld2410.Report(2, 0, 0, 120, 40, 120))
    radar = LD2410Sensor(FakeUART([(0, frame), (500, frame)], clock=lambda: now[0]))
    core = SensorCore("d", 0, _cfg(hold_s=30, debounce_ms=0), "ld2410")
    counts = []
    for t in range(0, 60000, 500):
        now[0] = t
        presence, e, o = radar.read(t)
        core.observe(t, T0 + t // 1000, True, presence, e, o)
        counts.append(core.count)
    ok(0 not in counts, "a radar that stops talking never empties the room")
    eq(counts[-1], None)


def test_doorway_count_survives_soft_reset():
    rtc = FakeRTC()
    slots = RtcSlots(rtc)
    core = SensorCore("d", 3, _cfg(), "vl53l1x")
    core.observe(0, T0, True, None, entered=3)
    eq(core.count, 3)
    ok(slots.save_state(core.snapshot()))
    slots.memory(b"ring-bytes")
    # soft reset: a new core, the same RTC memory
    again = RtcSlots(rtc)
    eq(again.memory(), b"ring-bytes", "the ring gets its own bytes back")
    core2 = SensorCore("d", 4, _cfg(), "vl53l1x")
    core2.restore(again.state())
    eq(core2.observe(0, T0 + 5, True, None)[0]["count"], 3)
    ok(len(rtc.data) == STATE_BYTES + len(b"ring-bytes"))


def test_rtc_without_state_goes_whole_to_the_ring():
    rtc = FakeRTC(b"old-ring-format")
    slots = RtcSlots(rtc)
    eq(slots.state(), {})
    eq(slots.memory(), b"old-ring-format")
    ok(not slots.save_state({"c": 1, "x": "y" * 60}), "too big for the slot: refused")
    ring = Ring(2000)
    slots.memory(ring.snapshot())
    ok(len(rtc.data) <= 2048, "state + the largest ring fit RTC memory")


def test_ring_survives_in_slots():
    rtc = FakeRTC()
    slots = RtcSlots(rtc)
    ring = Ring(600)
    ring.push(b'{"seq": 1}')
    slots.save_state({"c": 2})
    slots.memory(ring.snapshot())
    back = Ring(600)
    after = RtcSlots(rtc)
    back.restore(after.memory())
    eq(back.peek(), b'{"seq": 1}')
    eq(after.state(), {"c": 2})


def test_nightly_reset_at_the_configured_utc_hour():
    core = SensorCore("d", 0, _cfg(count_reset_hour=3), "vl53l1x")
    core.observe(0, T0 + 20 * 3600, True, None, entered=2)  # 20:00, two stay
    eq(core.count, 2)
    core.observe(1000, T0 + DAY + 2 * 3600, True, None)
    eq(core.count, 2, "02:00: not yet")
    core.observe(2000, T0 + DAY + 3 * 3600 + 5, True, None)
    eq(core.count, 0, "03:00 UTC: reset")
    core.observe(3000, T0 + DAY + 3 * 3600 + 60, True, None, entered=1)
    core.observe(4000, T0 + DAY + 3 * 3600 + 120, True, None)
    eq(core.count, 1, "once a day: someone coming in at 03:01 stays counted")
    eq(core.nightly_resets, 1)
    unsynced = SensorCore("d", 0, _cfg(count_reset_hour=3), "vl53l1x")
    unsynced.observe(0, T0 + 3 * 3600, False, None, entered=1)
    eq(unsynced.count, 1, "never on an unsynced clock")
    restored = SensorCore("d", 1, _cfg(count_reset_hour=3), "vl53l1x")
    restored.restore(core.snapshot())
    restored.observe(0, T0 + DAY + 3 * 3600 + 600, True, None)
    eq(restored.count, 1, "a reboot at 03:10 does not reset twice")


def test_readings_before_ntp_are_restamped_before_sending():
    core = SensorCore("d", 2, _cfg(debounce_ms=0), "pir")
    wrong = 946684800 + 12  # the RTC's idea of time before NTP
    first = payload.encode(core.observe(5000, wrong, False, True)[0])
    ok(b'"synced": false' in first or b'"synced":false' in first)
    later = core.restamp(first, 65000, T0, True)
    msg = payload.decode(later)
    eq((msg["ts"], msg["synced"]), (T0 - 60, True), "taken 60 s before the sync point")
    ok("mono" not in msg and set(msg) == set(payload.decode(first)), "same wire fields")
    eq(core.restamp(first, 65000, T0, False), first, "still unsynced: unchanged")
    other_boot = SensorCore("d", 3, _cfg(), "pir")
    eq(other_boot.restamp(first, 1000, T0, True), first, "another boot's ticks mean nothing")


def test_clock_resync_schedule_and_soft_reset():
    now = [T0]
    wall = WallClock(lambda: now[0], 1970, resync_s=21600)
    ok(wall.needs_sync(0))
    wall.tried(0)
    ok(not wall.needs_sync(RETRY_MS - 1), "an unanswered attempt waits a minute")
    ok(wall.needs_sync(RETRY_MS))
    wall.tried(RETRY_MS)
    wall.mark_synced()
    ok(not wall.needs_sync(2 * RETRY_MS))
    now[0] = T0 + 21600
    ok(wall.needs_sync(10 * 3600 * 1000), "6 h later: re-sync")
    state = wall.snapshot()
    after = WallClock(lambda: now[0], 1970)
    after.restore(state)
    ok(after.synced, "the RTC kept running through the soft reset")
    cold = WallClock(lambda: 12, 1970)
    cold.restore(state)
    ok(not cold.synced, "an RTC that lost the time is not synced, whatever was saved")


def test_gate_thresholds_validate():
    cfg, errors = config.validate({"ld2410_still_thresholds": [0] * 9})
    eq(errors, [])
    for bad in ([0] * 8, [0] * 8 + [101], "40", [0] * 8 + [True]):
        _c, errors = config.validate({"ld2410_still_thresholds": bad})
        eq(len(errors), 1, repr(bad))
    _c, errors = config.validate({"ld2410_still_sensitivity": 40})
    ok("ld2410_still_thresholds" in errors[0], errors[0])


def test_remote_keys_for_missing_hardware_are_refused():
    base = _cfg(sensor="pir")
    cfg, errors = config.validate({"tof_threshold_pct": 70, "ld2410_unmanned_s": 9,
                                   "hold_s": 60}, base, remote=True)
    eq(cfg["hold_s"], 60)
    eq(cfg["tof_threshold_pct"], 80)
    eq(sorted(errors), ["ld2410_unmanned_s: this device has no ld2410",
                        "tof_threshold_pct: this device has no vl53l1x"])
    door = _cfg(sensor="vl53l1x", presence="ld2410")
    _c, errors = config.validate({"tof_threshold_pct": 70, "ld2410_unmanned_s": 9,
                                  "count_reset_hour": 4}, door, remote=True)
    eq(errors, [])


def _device(uart):
    cfg = _cfg(site="hq", mqtt_host="b.example", wifi_ssid="x", sensor="ld2410")
    wall = WallClock(lambda: T0, 1970)
    buf = OfflineBuffer(Ring(600), FlashSpool(scratch("state"), 4096))
    radar = LD2410Sensor(uart, sleep_ms=lambda ms: None, ack_timeout_ms=40)
    return Device(cfg, "esp32-01", 1, radar, buf, wall, Health(5000, 3600000)), radar


def test_remote_config_reaches_the_radar_and_health():
    uart = FakeUART()
    dev, radar = _device(uart)
    status = dev.on_config(payload.encode({"ld2410_still_thresholds": [0, 0, 40, 40, 40, 40,
                                                                      15, 15, 5],
                                           "offline_reboot_s": 900}))
    ok("error" not in status, status)
    eq(uart.params.still[8], 5, "written to the radar")
    eq(dev.health.offline_limit_ms, 900000)
    uart.acks = False
    status = dev.on_config(payload.encode({"ld2410_unmanned_s": 30}))
    ok("no ack" in status["error"], status)
    eq(dev.cfg["ld2410_unmanned_s"], 5, "the radar did not take it: neither does the config")
