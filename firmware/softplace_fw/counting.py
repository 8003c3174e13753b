"""Room count from doorway crossings and/or presence, and when to report it.

Rules (issue 3):

* doorway hardware: count = in - out, clamped at zero;
* drift correction: once presence has been absent for the hold time the count resets to 0
  (a missed exit cannot leave a phantom occupant overnight);
* while presence is held and the doorway count is 0, the count is 1 (someone is there:
  a missed entry must not make the room look vacant);
* presence-only hardware: the count is 1 while presence is held, else 0;
* the doorway count survives a soft reset (``SensorCore.snapshot`` in RTC memory) and,
  besides the drift correction, is reset to 0 at ``count_reset_hour`` (UTC, once a day,
  only with a synced clock) for sites that close at night.
"""


class RoomCount:
    def __init__(self, doorway: bool, hold_ms: int) -> None:
        self.doorway = doorway
        self.hold_ms = hold_ms
        self._tally = 0  # doorway count, already clamped
        self._crossed_ms = None  # type: int | None  # last doorway crossing
        self.drift_resets = 0

    def update(self, now_ms: int, occupied, entered: int = 0, left: int = 0) -> int:
        """``occupied``: held presence (True/False), or None with no presence sensor.

        The drift reset also waits ``hold_ms`` after the last crossing, so a person who
        has just walked in is not wiped out before the presence sensor has noticed them.
        """
        if not self.doorway:
            return 1 if occupied else 0
        if entered or left:
            self._crossed_ms = now_ms
        self._tally += entered - left
        if self._tally < 0:
            self._tally = 0
        quiet = self._crossed_ms is None or now_ms - self._crossed_ms >= self.hold_ms
        if occupied is False and self._tally and quiet:
            self._tally = 0
            self.drift_resets += 1
        if occupied and self._tally == 0:
            return 1
        return self._tally

    @property
    def tally(self) -> int:
        return self._tally

    def restore(self, tally: int) -> None:
        """Set the doorway count (restored after a reset, or the nightly reset to 0)."""
        self._tally = tally if tally > 0 else 0


class Reporter:
    """Report on change, plus a heartbeat so silence means trouble, not "no change"."""

    def __init__(self, heartbeat_ms: int) -> None:
        if heartbeat_ms <= 0:
            raise ValueError("heartbeat_ms must be > 0")
        self.heartbeat_ms = heartbeat_ms
        self._last_value = None  # type: object
        self._last_ms = None  # type: int | None

    def due(self, now_ms: int, value) -> bool:
        """True if ``value`` should be published now; records it as published."""
        if (self._last_ms is None or value != self._last_value
                or now_ms - self._last_ms >= self.heartbeat_ms):
            self._last_value = value
            self._last_ms = now_ms
            return True
        return False

    def forget(self) -> None:
        """Report the next value whatever it is (after a gap in reporting)."""
        self._last_ms = None
