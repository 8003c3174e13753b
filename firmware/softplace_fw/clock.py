"""Time for the pure modules: a non-wrapping millisecond count and Unix seconds.

``time.ticks_ms()`` wraps (after about 12.4 days on the ESP32); every state machine here
subtracts plain integers, so ``Monotonic`` turns wrapping ticks into an ever-growing
count. ``WallClock`` turns the RTC into integer Unix seconds and remembers whether NTP
has set it. Both take their time sources as arguments, so tests inject them.
"""

from .payload import unix_offset


class Monotonic:
    def __init__(self, ticks_ms, ticks_diff) -> None:
        self._ticks_ms = ticks_ms
        self._ticks_diff = ticks_diff
        self._last = ticks_ms()
        self._total = 0

    def now(self) -> int:
        """Milliseconds since construction; call at least once per wrap period."""
        ticks = self._ticks_ms()
        step = self._ticks_diff(ticks, self._last)
        if step > 0:
            self._total += step
        self._last = ticks
        return self._total


class WallClock:
    def __init__(self, time_fn, epoch_year: int) -> None:
        self._time = time_fn
        self._offset = unix_offset(epoch_year)
        self.synced = False

    def mark_synced(self) -> None:
        self.synced = True

    def unix(self) -> int:
        return int(self._time()) + self._offset
