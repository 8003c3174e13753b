"""Time for the pure modules: a non-wrapping millisecond count and Unix seconds.

``time.ticks_ms()`` wraps (after about 12.4 days on the ESP32); every state machine here
subtracts plain integers, so ``Monotonic`` turns wrapping ticks into an ever-growing
count. ``WallClock`` turns the RTC into integer Unix seconds, remembers whether NTP
has set it and when, and says when to ask again (``ntp_resync_s``, 6 h by default: the
ESP32's RTC drifts by seconds a day). Its state survives a soft reset (the RTC keeps
running through one) via ``snapshot``/``restore`` in RTC memory. Both take their time
sources as arguments, so tests inject them.
"""

from .payload import unix_offset

RETRY_MS = 60000  # an unsynced clock asks again every minute
EARLIEST = 1700000000  # a Unix time before this is an unset RTC, whatever the flag says


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
    def __init__(self, time_fn, epoch_year: int, resync_s: int = 21600) -> None:
        self._time = time_fn
        self._offset = unix_offset(epoch_year)
        self.synced = False
        self.resync_s = resync_s
        self.synced_at = None  # type: int | None  # Unix seconds of the last NTP success
        self._tried_ms = None  # type: int | None
        self.syncs = 0

    def mark_synced(self) -> None:
        self.synced = True
        self.synced_at = self.unix()
        self.syncs += 1

    def unix(self) -> int:
        return int(self._time()) + self._offset

    def tried(self, now_ms: int) -> None:
        """An NTP attempt was made now (whatever its outcome)."""
        self._tried_ms = now_ms

    def needs_sync(self, now_ms: int) -> bool:
        """Time to ask NTP: never synced (retry each minute), or ``resync_s`` since the last."""
        if self._tried_ms is not None and now_ms - self._tried_ms < RETRY_MS:
            return False
        if not self.synced or self.synced_at is None:
            return True
        return self.unix() - self.synced_at >= self.resync_s

    def snapshot(self) -> dict:
        return {"n": self.synced_at} if self.synced and self.synced_at is not None else {}

    def restore(self, state: dict) -> None:
        """Synced again after a soft reset if the RTC still holds a time after that sync."""
        at = state.get("n")
        if isinstance(at, int) and at >= EARLIEST and self.unix() >= at:
            self.synced = True
            self.synced_at = at
