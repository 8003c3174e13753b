"""The room count when one or several sensors watch a room.

Each sensor's latest reading counts while it is fresh: online and taken within
``stale_s`` of the reading being combined. ``max`` suits sensors watching the same space
(a doorway counter and a radar: the larger count wins, since each can miss people but
neither invents them); ``sum`` suits sensors watching disjoint zones of one room.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(slots=True)  # built per reading: not frozen, a frozen __init__ costs 3x
class SensorView:
    count: int
    ts: float


@dataclass(slots=True)  # built per reading: not frozen, a frozen __init__ costs 3x
class RoomCount:
    count: int
    sources: int


class RoomCombiner:
    def __init__(self, combine: Literal["max", "sum"], stale_s: float) -> None:
        self.combine = combine
        self.stale_s = stale_s
        self._latest: dict[str, SensorView] = {}
        self._offline: set[str] = set()

    def update(self, device: str, count: int, ts: float) -> RoomCount:
        """Fold in one reading and return the room count at ``ts``.

        A late reading (older than the device's latest) is combined as of its own time
        but does not replace the newer state.
        """
        latest = self._latest
        current = latest.get(device)
        if current is None:
            latest[device] = SensorView(count, ts)
        elif ts >= current.ts:  # a view is this combiner's own: updated in place
            current.count, current.ts = count, ts
        self._offline.discard(device)
        if len(latest) == 1:  # one sensor in the room: nothing to combine
            return RoomCount(count, 1)
        counts = [count]
        for other, view in latest.items():
            if other == device or other in self._offline:
                continue
            if abs(view.ts - ts) <= self.stale_s:
                counts.append(view.count)
        total = sum(counts) if self.combine == "sum" else max(counts)
        return RoomCount(total, len(counts))

    def set_online(self, device: str, online: bool) -> None:
        if online:
            self._offline.discard(device)
        else:
            self._offline.add(device)
