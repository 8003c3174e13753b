"""Host stand-in for ``machine`` (link harness): a watchdog that records its feeds, RTC
memory, a PIR pin that follows a slow pattern, the reset cause and a unique id."""

import time

feeds = []  # ticks_ms of every WDT.feed()
PWRON_RESET = 1


class WDT:
    def __init__(self, timeout=5000, id=0):
        self.timeout = timeout
        feeds.append(time.ticks_ms())

    def feed(self):
        feeds.append(time.ticks_ms())


def max_feed_gap_ms():
    gap = 0
    for i in range(1, len(feeds)):
        gap = max(gap, time.ticks_diff(feeds[i], feeds[i - 1]))
    return max(gap, time.ticks_diff(time.ticks_ms(), feeds[-1])) if feeds else -1


class RTC:
    _memory = b""

    def memory(self, data=None):
        if data is None:
            return RTC._memory
        RTC._memory = bytes(data)


class Pin:
    IN = 1

    def __init__(self, pin, mode=IN):
        self._start = time.ticks_ms()

    def value(self):
        return (time.ticks_diff(time.ticks_ms(), self._start) // 7000) % 2  # 7 s on, 7 s off


def unique_id():
    return b"\x0a\x1b\x2c\x3d\x4e\x5f"


def reset_cause():
    return PWRON_RESET


def reset():
    raise SystemExit("machine.reset() called: the device would reboot")
