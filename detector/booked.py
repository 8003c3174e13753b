"""The booked-time rule: how breaches and idle slots account for accepted bookings.

``BOOKED_TIME_RULE`` (stated in detector/README.md), on the bookings stage's ``booking``
series (each accepted booking, and once it is over whether the sensors saw it used):

* **booked and used is not idle**: a used booking's whole span ends a vacancy run (the
  breach is cut there and each piece measured against the limit again) and makes the idle
  slots it overlaps not vacant that week, even where the sensors saw nobody in part of it;
* **ghost-booked is still idle**: a ghost booking changes nothing the sensors concluded
  (its vacancy counts toward the half-day breach and the slot), and a breach or idle slot
  overlapping one is flagged as ghost-booked;
* **booked ahead is not offered**: an accepted booking not over yet is taken out of the
  idle slots offered to others (an EXDATE on that week's occurrence in the feed);
* a booking the sensors did not cover, or not yet compared, changes nothing.

Where it is applied: the detector applies it when it writes the ``breach`` series (batch
and follow), the report and the idle slots when they read (``detector/booked_store.py``
holds the store side). ``apply_to_breach`` is idempotent (a piece overlaps no used
booking), so a reader applying it again to stored breaches changes nothing.

Pure: plain values in and out, like ``breaches`` and ``idle_slots``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from detector.breaches import Breach, BreachTracker
from detector.days import DayPlan
from detector.intervals import Interval
from detector.measures import RoomRef

BOOKED_TIME_RULE = "booked-and-used time is not idle; ghost-booked time still is"

Span = tuple[int, int]  # [start_ms, end_ms)


class BookedUse(StrEnum):
    USED = "used"
    GHOST = "ghost"
    UNKNOWN = "unknown"  # over, but no reading covered it
    AHEAD = "ahead"  # not over yet, or not compared with the sensors yet


@dataclass(frozen=True, slots=True)
class BookedSpan:
    room: str
    start_ms: int
    end_ms: int  # exclusive
    use: BookedUse

    def overlaps(self, lo: int, hi: int) -> bool:
        return self.start_ms < hi and lo < self.end_ms


def spans_of(booked: Iterable[BookedSpan], room: str, use: BookedUse) -> list[BookedSpan]:
    return sorted((b for b in booked if b.room == room and b.use is use),
                  key=lambda b: b.start_ms)


def _minus(span: Span, cuts: Sequence[BookedSpan]) -> list[Span]:
    pieces = [span]
    for cut in cuts:
        out: list[Span] = []
        for lo, hi in pieces:
            if not cut.overlaps(lo, hi):
                out.append((lo, hi))
                continue
            if lo < cut.start_ms:
                out.append((lo, cut.start_ms))
            if cut.end_ms < hi:
                out.append((cut.end_ms, hi))
        pieces = out
    return pieces


def apply_to_breach(breach: Breach, opening: Sequence[Span],
                    booked: Sequence[BookedSpan]) -> list[Breach]:
    """The breach under ``BOOKED_TIME_RULE``: cut by the room's used bookings (each piece
    a breach only if its vacant opening time still exceeds the limit), each remaining
    piece flagged when a ghost booking overlaps it. ``opening`` is the day's opening
    windows (the breach's vacant time is measured inside them, as the tracker does)."""
    room = breach.room.room
    used = spans_of(booked, room, BookedUse.USED)
    ghosts = spans_of(booked, room, BookedUse.GHOST)
    if not any(u.overlaps(breach.start_ms, breach.end_ms) for u in used):
        pieces = [breach]
    else:
        pieces = []
        for lo, hi in _minus((breach.start_ms, breach.end_ms), used):
            inside = [(max(lo, a), min(hi, b)) for a, b in opening if max(lo, a) < min(hi, b)]
            vacant = sum(b - a for a, b in inside)
            if inside and vacant > breach.limit_ms:
                pieces.append(dataclasses.replace(
                    breach, start_ms=inside[0][0], end_ms=inside[-1][1], vacant_ms=vacant))
    return [dataclasses.replace(
        p, ghost_booked=any(g.overlaps(p.start_ms, p.end_ms) for g in ghosts)) for p in pieces]


def apply_to_breaches(breaches: Iterable[Breach], opening: Callable[[Breach], Sequence[Span]],
                      booked: Sequence[BookedSpan]) -> list[Breach]:
    """``apply_to_breach`` to each breach, ``opening(breach)`` its day's opening windows."""
    if not booked:
        return list(breaches)
    return [cut for b in breaches for cut in apply_to_breach(b, opening(b), booked)]


DECIDING = (BookedUse.USED, BookedUse.GHOST)  # the only uses the breach rule depends on


def booked_signature(booked: Iterable[BookedSpan]) -> str:
    """What of some bookings the breach rule depends on (their used and ghost spans), as
    a short digest: equal digests, equal breaches. Order-insensitive."""
    text = ";".join(sorted(f"{b.room}:{b.start_ms}-{b.end_ms}:{b.use.value}"
                           for b in booked if b.use in DECIDING))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def breaches_from_intervals(ref: RoomRef, plan: DayPlan, limit_ms: int,
                            intervals: Iterable[Interval]) -> list[Breach]:
    """The room-day's breaches as the detector concluded them (before the booked-time
    rule), from its intervals of that day: the tracker sees the same runs of states, only
    merged, so it closes the same vacancy runs."""
    tracker = BreachTracker(ref, plan, limit_ms)
    found = [tracker.add(i.start_ms, i.end_ms, i.state)
             for i in sorted(intervals, key=lambda i: i.start_ms)]
    found.append(tracker.end_day())
    return [b for b in found if b is not None]
