"""Device glue: outbox replay after an outage, remote config, drop reporting, watchdog."""

from fakes import FakePin
from mpytest import eq, ok, scratch
from softplace_fw import payload
from softplace_fw.app import ACK_RESEND_S, Device
from softplace_fw.buffer import FlashSpool, OfflineBuffer, Ring
from softplace_fw.clock import WallClock
from softplace_fw.config import validate
from softplace_fw.drivers.pir import PIRSensor
from softplace_fw.health import Health

T0 = 784111777  # ESP32 seconds since 2000


def _device(levels, flash=16384, ring=600):
    cfg, errors = validate({"site": "hq", "mqtt_host": "broker.example", "wifi_ssid": "x",
                            "hold_s": 10, "debounce_ms": 0, "heartbeat_s": 10})
    eq(errors, [])
    now = [T0]
    wall = WallClock(lambda: now[0], 2000)
    buf = OfflineBuffer(Ring(ring), FlashSpool(scratch("app"), flash))
    dev = Device(cfg, "esp32-0a1b2c", 5, PIRSensor(FakePin(levels)), buf, wall,
                 Health(5000, 3600000), rssi=lambda: -61)
    return dev, now, wall


def test_readings_survive_outage_and_replay_in_order():
    dev, now, wall = _device([1] * 30 + [0] * 400)
    for step in range(0, 400):
        now[0] = T0 + step  # one sample a second, broker down the whole time
        dev.sense(step * 1000)
    wall.mark_synced()
    sent = []
    while True:
        item = dev.outbox(400000)
        if item is None:
            break
        topic, data = item
        eq(topic, "softplace/v1/hq/dev/esp32-0a1b2c/reading")
        sent.append(payload.decode(data))
        dev.sent(400000)
    seqs = [m["seq"] for m in sent]
    eq(seqs, list(range(len(seqs))), "every reading, oldest first")
    ok(len(sent) > 30, "heartbeats every 10 s")
    eq(sent[0]["ts"], 1730796577, "original timestamp, Unix epoch")
    eq(sent[0]["synced"], False)
    eq(sent[0]["rssi_dbm"], -61)
    eq(dev.drops_status(), None)


def test_buffer_drops_reported_once_on_status():
    dev, now, _wall = _device([1, 0] * 400, flash=400, ring=300)
    for step in range(400):
        dev.core._reporter.heartbeat_ms = 1  # force a reading per sample
        dev.sense(step * 1000)
    status = dev.drops_status()
    ok(status is not None and "dropped" in status["error"], status)
    eq(dev.drops_status(), None, "reported once")


def test_remote_config_applied_or_refused():
    dev, _now, _wall = _device([0])
    status = dev.on_config(b'{"hold_s": 600, "heartbeat_s": 30}')
    ok("error" not in status, status)
    eq(dev.cfg["hold_s"], 600)
    status = dev.on_config(b'{"hold_s": 1, "wifi_password": "x"}')
    ok("hold_s" in status["error"] and "wifi_password" in status["error"], status)
    eq(dev.cfg["hold_s"], 600, "refused value leaves the old one")
    ok("error" in dev.on_config(b"not json"))


def test_boot_status_and_will():
    dev, _now, _wall = _device([0])
    s = dev.online_status(payload.reset_cause_name(3))
    eq((s["state"], s["reset_cause"], s["ts"]), ("online", "watchdog", 1730796577))
    topic, data = dev.will()
    eq(topic, "softplace/v1/hq/dev/esp32-0a1b2c/status")
    eq(payload.decode(data)["state"], "offline")


def test_health_tracks_sensing():
    dev, _now, _wall = _device([0])
    dev.health.connection(0, True)
    dev.sense(0)
    ok(dev.health.ok(1000))


def _publish_all(dev, now_ms) -> list:
    out = []
    while True:
        item = dev.outbox(now_ms)
        if item is None:
            return out
        out.append(payload.decode(item[1])["seq"])
        dev.sent(now_ms)


def _ack(boot, seq) -> bytes:
    return payload.encode({"v": 1, "boot": boot, "seq": seq})


def _busy_device():
    dev, now, _wall = _device([1, 0] * 100)
    for step in range(12):
        dev.core._reporter.heartbeat_ms = 1  # a reading per sample
        dev.sense(step * 1000)
    return dev


def test_ack_topic_is_the_devices_own():
    dev = _busy_device()
    eq(dev.ack_topic, "softplace/v1/hq/dev/esp32-0a1b2c/ack")


def test_readings_kept_until_the_gateway_acks():
    dev = _busy_device()
    sent = _publish_all(dev, 20000)
    eq(sent, list(range(12)))
    eq(_publish_all(dev, 21000), [], "PUBACK alone does not forget, nor resend at once")
    eq(dev.on_ack(_ack(5, 7), 22000), 8)
    dev.reconnected()
    eq(_publish_all(dev, 23000), [8, 9, 10, 11], "after a reconnect: the unacked tail")
    eq(dev.on_ack(_ack(5, 11), 24000), 4)
    ok(not dev.buffer.pending())
    eq(dev.acked, (5, 11))


def test_unacked_tail_resent_after_ack_resend_s():
    dev = _busy_device()
    t0 = 50000
    eq(len(_publish_all(dev, t0)), 12)
    eq(_publish_all(dev, t0 + ACK_RESEND_S * 1000 - 1), [], "not before ACK_RESEND_S")
    eq(_publish_all(dev, t0 + ACK_RESEND_S * 1000), list(range(12)))
    dev.on_ack(_ack(5, 3), t0 + 31000)  # progress restarts the timer
    eq(_publish_all(dev, t0 + 31000 + ACK_RESEND_S * 1000 - 1), [])
    eq(_publish_all(dev, t0 + 31000 + ACK_RESEND_S * 1000), list(range(4, 12)))


def test_bad_acks_are_refused_and_forget_nothing():
    dev = _busy_device()
    _publish_all(dev, 1000)
    for bad in (b"nope", b"[]", payload.encode({"v": 2, "boot": 5, "seq": 99}),
                payload.encode({"v": 1, "boot": "5", "seq": 99}),
                payload.encode({"v": 1, "boot": 5, "seq": True}),
                payload.encode({"v": 1, "boot": 5})):
        eq(dev.on_ack(bad, 2000), -1, bad)
    eq(dev.on_ack(_ack(4, 1000), 2000), 0, "an ack of an older boot covers none of boot 5")
    ok(dev.buffer.pending())


def test_puback_after_a_rewind_marks_nothing():
    dev = _busy_device()
    first = dev.outbox(1000)
    dev.sent(1000, first[1])
    third = None
    for _ in range(2):
        third = dev.outbox(1000)
        dev.sent(1000, third[1])
    waiting = dev.outbox(1000)  # published; its PUBACK comes after a reconnect...
    dev.reconnected()  # ...that rewound the spool
    dev.sent(2000, waiting[1])
    eq(payload.decode(dev.outbox(2000)[1])["seq"], 0, "the oldest unacked goes out first")
