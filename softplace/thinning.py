"""Change-only storage of room counts: which readings of a batch to store. Pure, no state.

A room's readings form a stream, in the gateway's order. A reading is stored when

* it is the first one we know of (no predecessor), or
* its count (or number of sources) differs from its predecessor's, or
* it does not come after its predecessor (out of order or a repeat: rewriting is harmless), or
* it falls in another heartbeat window (``time // heartbeat``) than its predecessor,

and a reading the rules above drop is stored after all when the room's next reading comes
``heartbeat`` or more later (the last reading before a silence), or when the gateway says
the room went quiet (a ``prev`` without readings) or a sensor of the room went offline.

So between two stored points the count is constant, every dropped reading repeats the
point before it, no two consecutive stored points are ``2 * heartbeat`` or more apart
unless the room was silent in between, and the last reading before a silence is stored:
for the detector's sample-and-hold (a count holds until the next reading, for at most its
own heartbeat, which must be at least ``2 * heartbeat``) the stored series reads exactly
like the full one.

The decision depends on one batch alone (its readings and the gateway's ``prev``, the
reading of each room just before the batch), so any ingest process can take any batch, a
re-sent batch is decided the same way, and nothing needs rebuilding after a restart.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence, Set
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Held:
    """What thinning looks at in a room reading."""

    time_ms: int
    count: int
    sources: int


@dataclass(frozen=True, slots=True)
class Thinned(Generic[K]):
    """``keep[i]``: store reading i; ``prev``: the rooms whose ``prev`` reading to store."""

    keep: list[bool]
    prev: list[K]


def _new(held: Held, before: Held, heartbeat_ms: int) -> bool:
    return (held.count != before.count or held.sources != before.sources
            or held.time_ms <= before.time_ms
            or held.time_ms // heartbeat_ms != before.time_ms // heartbeat_ms)


def thin_batch(
    prev: Mapping[K, Held],
    readings: Sequence[tuple[K, Held]],
    heartbeat_ms: int,
    keep_rooms: Set[K] = frozenset(),
) -> Thinned[K]:
    """Decide for one batch; ``readings`` in stream order, ``keep_rooms`` stored in full
    (a sensor went offline: the detector's unknown state ends at their next reading).
    ``heartbeat_ms <= 0`` stores everything."""
    if heartbeat_ms <= 0:
        return Thinned([True] * len(readings), list(prev))
    keep = [False] * len(readings)
    last: dict[K, tuple[int, Held]] = {}  # room -> (index, reading); index -1 is its prev
    write_prev: set[K] = {room for room in prev if room in keep_rooms}
    for i, (room, held) in enumerate(readings):
        before = last.get(room)
        if before is None and room in prev:
            before = (-1, prev[room])
        if before is None or room in keep_rooms or _new(held, before[1], heartbeat_ms):
            keep[i] = True
        if before is not None and held.time_ms - before[1].time_ms >= heartbeat_ms:
            if before[0] < 0:
                write_prev.add(room)
            else:
                keep[before[0]] = True
        last[room] = (i, held)
    write_prev.update(room for room in prev if room not in last)  # the gateway's flush
    return Thinned(keep, [room for room in prev if room in write_prev])
