"""SensorCore end to end on traces: radar frames or zone distances in, payloads out."""

from binascii import unhexlify

from mpytest import eq, ok, raises, read_trace
from softplace_fw import ld2410
from softplace_fw.config import DEFAULTS, validate
from softplace_fw.core import SensorCore
from softplace_fw.doorway import Doorway

T0 = 1730796577


def _cfg(**kw):
    cfg, errors = validate(kw)
    eq(errors, [])
    return cfg


def test_ld2410_trace_to_readings():
    core = SensorCore("esp32-0a1b2c", 4, _cfg(hold_s=10, debounce_ms=1000, heartbeat_s=30),
                      "ld2410")
    parser = ld2410.FrameParser()
    counts = []
    sent = []
    last = None
    for line in read_trace("ld2410_session.hex"):
        t, data = line.split(" ")
        t = int(t)
        for rep in parser.feed(unhexlify(data)):
            last = rep
        if last is None:
            continue
        sent.extend(core.observe(t, T0 + t // 1000, True, last.presence))
        counts.append((t, core.count))
    for t in range(70000, 75000, 500):  # the radar keeps reporting "no target"
        sent.extend(core.observe(t, T0 + t // 1000, True, False))
    eq([m["count"] for m in sent], [0, 1, 1, 1, 0], "vacant, occupied, 2 heartbeats, vacant")
    eq([m["seq"] for m in sent], [0, 1, 2, 3, 4])
    for t, count in counts:
        if 3000 <= t < 62000:
            eq(count, 1, "occupied at {} ms (still person, 1.5 s radar dropout)".format(t))
    eq(sent[-1]["ts"], T0 + 72, "vacant 10 s after the last target at 61.5 s")
    ok(isinstance(sent[-1]["ts"], int), "integer seconds")


def test_tof_trace_counts_people():
    core = SensorCore("esp32-0a1b2c", 1, _cfg(heartbeat_s=600), "vl53l1x")
    door = Doorway()
    rows = [[int(x) for x in line.split(",")] for line in read_trace("tof_doorway.csv")]
    eq(door.calibrate([r[1] for r in rows[:20]], [r[2] for r in rows[:20]]), None)
    sent = []
    for t, front, back in rows[20:]:
        entered, left = door.update(t, front or None, back or None)
        sent.extend(core.observe(t, T0, False, None, entered, left))
    eq([m["count"] for m in sent], [0, 1, 2, 1, 2, 1])
    ok(all(m["synced"] is False for m in sent))


def test_presence_only_pir():
    core = SensorCore("d", 0, _cfg(hold_s=10, debounce_ms=0), "pir")
    eq(core.observe(0, T0, True, True)[0]["count"], 1)
    eq(core.observe(9000, T0 + 9, True, False), [])
    eq(core.observe(18999, T0 + 18, True, False), [], "held 10 s after the last motion")
    eq(core.observe(19000, T0 + 19, True, False)[0]["count"], 0)


def test_virtual_counts_doorway_with_presence_drift_reset():
    core = SensorCore("virtual-1", 0, _cfg(hold_s=10, debounce_ms=0), "virtual")
    eq(core.observe(0, T0, True, True, entered=2)[0]["count"], 2)
    eq(core.observe(1000, T0 + 1, True, True, left=1)[0]["count"], 1)
    eq(core.observe(2000, T0 + 2, True, False), [])
    out = core.observe(12000, T0 + 12, True, False)
    eq(out[0]["count"], 0, "exit missed, presence gone for the hold")
    eq(core.drift_resets, 1)
    eq(out[0]["sensor"], "virtual")


def test_status_and_will():
    core = SensorCore("d", 0, DEFAULTS, "pir")
    s = core.status("online", T0, reset_cause="watchdog")
    eq((s["state"], s["device"], s["ts"], s["reset_cause"]), ("online", "d", T0, "watchdog"))
    ok("fw" in s)
    eq(core.will(), {"v": 1, "state": "offline", "device": "d"})


def test_reconfigure_keeps_count():
    core = SensorCore("d", 0, _cfg(debounce_ms=0), "virtual")
    core.observe(0, T0, True, True, entered=3)
    core.reconfigure(_cfg(hold_s=20, debounce_ms=0, heartbeat_s=10))
    eq(core.observe(10000, T0 + 10, True, True)[0]["count"], 3, "heartbeat at the new period")


def test_unknown_sensor_kind():
    raises(ValueError, SensorCore, "d", 0, DEFAULTS, "camera")
