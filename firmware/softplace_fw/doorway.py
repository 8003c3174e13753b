"""Two-zone doorway crossing state machine (VL53L1X, after the Roode people counter).

The sensor sits above the door frame looking down; its SPAD array is split into a
*front* zone (corridor side) and a *back* zone (room side), measured alternately. A
zone is occupied when its distance drops below a threshold learned at calibration and
free again only once it reads beyond the threshold plus a hysteresis band (a head at
the threshold, read with a few cm of noise, must not flicker the zone).

Combined state: 0 empty, 1 front only, 2 back only, 3 both. A crossing is a trip
that leaves the empty state and returns to it: it is an entry when it began in
``front``, passed through ``both`` and ended in ``back``; an exit the reverse.
Roode and ST's example record the exact path [1, 3, 2]; this keeps only the first
state, whether ``both`` was seen and the last state, so hesitation in the doorway
(1, 3, 1, 3, 2) still counts, memory is constant, and a turn-back (1, 3, 1) counts
nothing. The driver feeds it after *every* zone reading (the other zone ``None``):
the front-only and back-only states of a fast walker last about 100 ms.

Recalibration: a zone that reads occupied for ``recalibrate_ms`` holds an object, so
the baseline follows it; a zone that then reads clearly *beyond* its baseline for
``FAR_MS`` had the object taken away, so the baseline follows that too (without it a
person standing 60 s in the doorway would leave the zone blind until reboot).
"""

FRONT = 1
BACK = 2
BOTH = 3
HYSTERESIS_DIV = 4  # free again beyond threshold + (baseline - threshold) / 4
FAR_MS = 3000


def threshold_from(samples, pct: int, min_mm: int):
    """Occupied-below threshold from baseline samples, or (None, reason) when unusable."""
    good = [s for s in samples if s is not None and s > 0]
    if len(good) < max(3, len(samples) // 2):
        return None, "too few valid samples ({} of {})".format(len(good), len(samples))
    mean = sum(good) // len(good)
    spread = max(good) - min(good)
    if mean < min_mm:
        return None, "baseline {} mm below minimum {} mm: zone blocked?".format(mean, min_mm)
    if spread * 4 > mean:
        return None, "baseline too noisy (spread {} mm at {} mm)".format(spread, mean)
    return mean * pct // 100, None


def mean_of(samples) -> int:
    good = [s for s in samples if s is not None and s > 0]
    return sum(good) // len(good) if good else 0


class Doorway:
    def __init__(self, threshold_pct: int = 80, min_baseline_mm: int = 300,
                 recalibrate_ms: int = 60000) -> None:
        self.threshold_pct = threshold_pct
        self.min_baseline_mm = min_baseline_mm
        self.recalibrate_ms = recalibrate_ms
        self.thresholds = None  # type: tuple[int, int] | None  # (front, back) mm
        self.releases = (0, 0)  # free again at or beyond these (mm)
        self.baselines = (0, 0)
        self.entered = 0
        self.left = 0
        self.calibrations = 0
        self._state = 0
        self._first = 0
        self._saw_both = False
        self._last = 0
        self._blocked_since = None  # type: int | None
        self._far_since = [None, None]  # type: list[int | None]

    @property
    def calibrated(self) -> bool:
        return self.thresholds is not None

    def calibrate(self, front_samples, back_samples):
        """Learn both thresholds; returns None or the reason calibration was refused."""
        front, why = threshold_from(front_samples, self.threshold_pct, self.min_baseline_mm)
        if front is None:
            return "front zone: " + str(why)
        back, why = threshold_from(back_samples, self.threshold_pct, self.min_baseline_mm)
        if back is None:
            return "back zone: " + str(why)
        base = (mean_of(front_samples), mean_of(back_samples))
        self.thresholds = (front, back)
        self.baselines = base
        self.releases = (front + (base[0] - front) // HYSTERESIS_DIV,
                         back + (base[1] - back) // HYSTERESIS_DIV)
        self.calibrations += 1
        self._state = 0
        self._blocked_since = None
        self._far_since = [None, None]
        return None

    def _zone(self, state: int, bit: int, mm, zone: int) -> int:
        if mm is None or mm <= 0 or self.thresholds is None:
            return state
        if mm < self.thresholds[zone]:
            return state | bit
        if mm >= self.releases[zone]:
            return state & ~bit
        return state  # inside the hysteresis band: unchanged

    def update(self, now_ms: int, front_mm, back_mm):
        """Feed zone distances (None: not measured now or no valid range); returns (in, out)."""
        if self.thresholds is None:
            return 0, 0
        state = self._zone(self._state, FRONT, front_mm, 0)
        state = self._zone(state, BACK, back_mm, 1)
        self._track_blocked(now_ms, state)
        self._track_far(now_ms, front_mm, back_mm)
        if state == self._state:
            return 0, 0
        previous, self._state = self._state, state
        if previous == 0:
            self._first, self._saw_both, self._last = state, state == BOTH, state
            return 0, 0
        if state != 0:
            self._last = state
            if state == BOTH:
                self._saw_both = True
            return 0, 0
        return self._finish()

    def _finish(self):
        if self._saw_both and self._first == FRONT and self._last == BACK:
            self.entered += 1
            return 1, 0
        if self._saw_both and self._first == BACK and self._last == FRONT:
            self.left += 1
            return 0, 1
        return 0, 0

    def _track_blocked(self, now_ms: int, state: int) -> None:
        if state == 0:
            self._blocked_since = None
        elif self._blocked_since is None:
            self._blocked_since = now_ms

    def _track_far(self, now_ms: int, front_mm, back_mm) -> None:
        for zone, mm in ((0, front_mm), (1, back_mm)):
            if mm is None or mm <= 0:
                continue
            base = self.baselines[zone]
            if mm <= base + base // 10 + 50:
                self._far_since[zone] = None
            elif self._far_since[zone] is None:
                self._far_since[zone] = now_ms

    def needs_recalibration(self, now_ms: int) -> bool:
        """A zone has read occupied for longer than anyone stands in a doorway, or an
        object that a recalibration learnt has gone (the zone reads beyond its baseline)."""
        if self._blocked_since is not None and now_ms - self._blocked_since >= self.recalibrate_ms:
            return True
        for since in self._far_since:
            if since is not None and now_ms - since >= FAR_MS:
                return True
        return False

    @property
    def state(self) -> int:
        return self._state
