"""Wrapping ticks become a monotonic count; the watchdog policy."""

from mpytest import eq, ok
from softplace_fw.clock import Monotonic, WallClock
from softplace_fw.health import Health

PERIOD = 1 << 30  # ESP32 ticks_ms wraps here


class _Ticks:
    def __init__(self, start):
        self.value = start

    def ms(self):
        return self.value

    @staticmethod
    def diff(a, b):
        return ((a - b + PERIOD // 2) % PERIOD) - PERIOD // 2


def test_monotonic_across_wrap():
    ticks = _Ticks(PERIOD - 500)
    clock = Monotonic(ticks.ms, ticks.diff)
    eq(clock.now(), 0)
    ticks.value = 300  # wrapped
    eq(clock.now(), 800)
    ticks.value = 1300
    eq(clock.now(), 1800)


def test_wall_clock_epoch_2000():
    wall = WallClock(lambda: 784111777, 2000)
    eq(wall.unix(), 1730796577)
    ok(not wall.synced)
    wall.mark_synced()
    ok(wall.synced)
    eq(WallClock(lambda: 1730796577.9, 1970).unix(), 1730796577)


def test_health_needs_fresh_samples():
    h = Health(sense_timeout_ms=5000, offline_limit_ms=60000)
    ok(not h.ok(0), "no sample yet")
    h.sensed(0)
    h.connection(0, True)
    ok(h.ok(4000))
    ok(not h.ok(6000))
    eq(h.reason, "sensor silent")


def test_health_outage_is_not_a_stuck_loop():
    h = Health(sense_timeout_ms=5000, offline_limit_ms=700000)
    h.connection(0, True)
    h.connection(1000, False)  # broker gone; a QoS 1 publish now waits for it, by design
    for t in range(1000, 601000, 1000):  # ten minutes of outage, sensing every second
        h.sensed(t)
        ok(h.ok(t), "fed at {} ms".format(t))
    ok(not h.ok(601000 + 5001), "a sensing loop that stops is still caught")
    eq(h.reason, "sensor silent")


def test_health_long_outage_is_the_last_resort():
    h = Health(sense_timeout_ms=5000, offline_limit_ms=60000)
    h.connection(0, True)
    h.sensed(0)
    h.connection(21000, False)
    h.sensed(80000)
    ok(h.ok(80000), "a broker outage alone is fine for a while")
    h.sensed(82000)
    ok(not h.ok(82000))
    eq(h.reason, "offline too long")
    h.connection(82500, True)
    ok(h.ok(82500))
