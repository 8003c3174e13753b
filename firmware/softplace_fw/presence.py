"""Presence with debounce and hold: a still person must not turn a room vacant.

``debounce_ms``: raw presence must last this long before the room counts as occupied
(filters a single radar or PIR glitch). ``hold_ms``: once occupied, the room stays
occupied until raw presence has been absent *continuously* for this long. Time is
injected as a non-wrapping millisecond count (see ``clock.Monotonic``).

A sensor that cannot tell (a silent radar, a failing bus) reports ``UNKNOWN`` instead
of True/False; the core holds the last known state for the hold time, then reports the
count as unknown (it publishes nothing) and raises a fault. Never 0: an empty room is
a claim, and a dead sensor cannot make it.
"""

UNKNOWN = "unknown"


class PresenceFilter:
    def __init__(self, debounce_ms: int, hold_ms: int) -> None:
        if debounce_ms < 0 or hold_ms < 0:
            raise ValueError("debounce_ms and hold_ms must be >= 0")
        self.debounce_ms = debounce_ms
        self.hold_ms = hold_ms
        self.occupied = False
        self._raw_since = None  # type: int | None  # start of the current raw-presence run
        self._absent_since = None  # type: int | None  # when raw presence was last lost

    def update(self, now_ms: int, raw: bool) -> bool:
        """Feed one raw sample; returns the debounced, held presence."""
        if raw:
            self._absent_since = None
            if self._raw_since is None:
                self._raw_since = now_ms
            if not self.occupied and now_ms - self._raw_since >= self.debounce_ms:
                self.occupied = True
        else:
            self._raw_since = None
            if self._absent_since is None:
                self._absent_since = now_ms
            if self.occupied and now_ms - self._absent_since >= self.hold_ms:
                self.occupied = False
        return self.occupied

    def absent_for(self, now_ms: int) -> int:
        """How long raw presence has been continuously absent (0 while present)."""
        if self._absent_since is None:
            return 0
        return now_ms - self._absent_since
