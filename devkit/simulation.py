"""A realistic occupancy schedule for virtual sensors: per room kind, a sticky
in-use/empty Markov chain whose rates follow the hour of day and the opening hours.

Pure and seeded: the same seed gives the same week, so demos and tests are repeatable.
"""

from __future__ import annotations

import datetime as dt
import random
import zlib
from dataclasses import dataclass

from softplace.registry import PlacedRoom, RoomKind


@dataclass(frozen=True, slots=True)
class KindProfile:
    busy_share: float  # share of open hours the room is in use
    mean_session_min: float  # how long a use lasts on average
    fill: tuple[float, float]  # people when in use, as a share of capacity (low, high)


PROFILES: dict[RoomKind, KindProfile] = {
    RoomKind.OFFICE: KindProfile(0.55, 75, (0.3, 0.7)),
    RoomKind.MEETING: KindProfile(0.30, 60, (0.2, 0.8)),
    RoomKind.HALL: KindProfile(0.85, 45, (0.05, 0.35)),
    RoomKind.COUNTER: KindProfile(0.60, 20, (0.3, 0.7)),
    RoomKind.COWORKING: KindProfile(0.40, 120, (0.1, 0.5)),
    RoomKind.CLASSROOM: KindProfile(0.50, 55, (0.4, 0.9)),
    RoomKind.STORAGE: KindProfile(0.05, 10, (0.1, 0.3)),
    RoomKind.HOUSING: KindProfile(0.70, 240, (0.3, 0.7)),
    RoomKind.OTHER: KindProfile(0.20, 30, (0.1, 0.5)),
}
# Rooms the sample registry leaves idle on purpose, so the report has something to say.
UNDERUSED = {"meeting-b": 0.04, "office-3": 0.15, "study-1": 0.08}
LUNCH = (dt.time(12, 0), dt.time(13, 30))


class RoomSchedule:
    """``count_at(when)`` walks forward in time; call it with non-decreasing times."""

    def __init__(self, placed: PlacedRoom, seed: int = 1) -> None:
        self.placed = placed
        key = f"{placed.site.id}/{placed.room.id}/{seed}".encode()
        self._rng = random.Random(zlib.crc32(key))
        self.profile = PROFILES[placed.room.kind]
        self.busy_share = UNDERUSED.get(placed.room.id, self.profile.busy_share)
        self._count = 0
        self._last: dt.datetime | None = None

    def _open(self, local: dt.datetime) -> bool:
        minute = local.hour * 60 + local.minute
        return any(r.start_minute <= minute < r.end_minute
                   for r in self.placed.opening_hours.ranges(local.weekday()))

    def _target_share(self, local: dt.datetime) -> float:
        if self.placed.room.kind is RoomKind.HOUSING:
            return 0.9 if local.hour >= 18 or local.hour < 8 else 0.2
        if not self._open(local):
            return 0.01
        share = self.busy_share
        if LUNCH[0] <= local.time() < LUNCH[1]:
            share *= 0.4
        return min(share, 0.98)

    def count_at(self, when: dt.datetime) -> int:
        local = when.astimezone(self.placed.site.tz)
        step_min = 5.0 if self._last is None else max((when - self._last).total_seconds() / 60, 0)
        self._last = when
        share = self._target_share(local)
        end_rate = step_min / self.profile.mean_session_min
        start_rate = end_rate * share / max(1 - share, 0.02)
        capacity = self.placed.room.capacity
        if self._count == 0:
            if self._rng.random() < min(start_rate, 1.0):
                self._count = self._people(capacity)
        elif self._rng.random() < min(end_rate, 1.0) or not self._open_or_home(local):
            self._count = 0
        elif self._rng.random() < 0.2:  # people come and go while the room is in use
            self._count = max(1, self._count + self._rng.choice((-1, 1)))
        return min(self._count, capacity)

    def _open_or_home(self, local: dt.datetime) -> bool:
        return self.placed.room.kind is RoomKind.HOUSING or self._open(local)

    def _people(self, capacity: int) -> int:
        low, high = self.profile.fill
        return max(1, round(capacity * self._rng.uniform(low, high)))


def split_count(count: int, devices: int, combine: str) -> list[int]:
    """What each of a room's sensors sees: all of it (``max``) or a share (``sum``)."""
    if devices <= 0:
        return []
    if combine == "max":
        return [count] * devices
    base, extra = divmod(count, devices)
    return [base + (1 if i < extra else 0) for i in range(devices)]
