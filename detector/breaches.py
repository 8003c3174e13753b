"""Rule breaches: a vacancy inside opening hours longer than the limit.

A run of vacancy is measured in opening-hours time within one local day: closed time
(a lunch break) inside the run neither counts nor ends it; any occupied or unknown time
ends it, and so does the end of the day. Unknown time is never a vacancy, so a silent
sensor cannot produce a breach. The limit is either a fixed number of hours or
``half_day``: half of the room's opening hours that day (4 h for an 8-hour day).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from detector.days import DayPlan
from detector.intervals import State
from detector.measures import RoomRef
from softplace.timeutil import ms_to_s, s_to_ms


@dataclass(frozen=True, slots=True)
class Breach:
    room: RoomRef
    date: dt.date
    start_ms: int  # first vacant instant inside opening hours
    end_ms: int  # last vacant instant inside opening hours
    vacant_ms: int  # vacant time inside opening hours (closed time excluded)
    limit_ms: int
    ghost_booked: bool = False  # overlaps a ghost booking (detector.booked.BOOKED_TIME_RULE)

    @property
    def duration_s(self) -> float:
        return ms_to_s(self.vacant_ms)

    @property
    def limit_s(self) -> float:
        return ms_to_s(self.limit_ms)


def limit_ms_for(plan: DayPlan, limit_h: str | float) -> int:
    if isinstance(limit_h, str):  # "half_day"
        return plan.open_ms // 2
    return s_to_ms(limit_h * 3600)


class BreachTracker:
    """Follows the vacancy run of one room through one day; ``end_day`` closes it."""

    def __init__(self, ref: RoomRef, plan: DayPlan, limit_ms: int) -> None:
        self.ref = ref
        self.plan = plan
        self.limit_ms = limit_ms
        self.run_start: int | None = None
        self.run_end = 0
        self.run_ms = 0

    def add(self, start: int, end: int, state: State) -> Breach | None:
        if state is not State.VACANT:
            return self._close()
        for lo, hi in self.plan.opening:
            if hi <= start:
                continue
            if lo >= end:
                break
            piece_start, piece_end = max(start, lo), min(end, hi)
            if self.run_start is None:
                self.run_start = piece_start
            self.run_ms += piece_end - piece_start
            self.run_end = piece_end
        return None

    def end_day(self) -> Breach | None:
        return self._close()

    def _close(self) -> Breach | None:
        start, self.run_start = self.run_start, None
        vacant, self.run_ms = self.run_ms, 0
        if start is None or not self.plan.opening or vacant <= self.limit_ms:
            return None
        return Breach(self.ref, self.plan.date, start, self.run_end, vacant, self.limit_ms)

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.run_start, "end": self.run_end, "ms": self.run_ms}

    def load_dict(self, data: dict[str, Any]) -> None:
        self.run_start, self.run_end, self.run_ms = data["start"], data["end"], data["ms"]
