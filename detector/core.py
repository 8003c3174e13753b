"""The detector for one site: per-room trackers wired to intervals, measures and breaches.

Still pure: events in, results out. Batch and streaming both drive this class and
differ only in how large the steps between watermarks are, which is why they agree.

Results are only produced for time at or after ``emit_from_ms``; measures and breaches
only for local days that lie wholly after it (a day seen in part is not measured).

This module and what it builds on (``intervals``, ``measures``, ``breaches``, ``days``;
``idle_slots`` beside them) are the detector's pure core. The shell around it: ``chunks``
(the store loop), ``batch`` and ``service`` (its two drivers), ``records`` (results <->
samples), ``checkpoint``, ``importer``, ``report`` and ``commands``; an import contract in
``pyproject.toml`` keeps the core from importing any of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from detector.breaches import Breach, BreachTracker, limit_ms_for
from detector.days import DayPlan, RoomCalendar
from detector.intervals import Interval, IntervalBuilder, RoomTracker, State, TrackerConfig
from detector.measures import DayAccumulator, RoomMeasure, RoomRef
from detector.settings import DetectorSettings
from softplace.registry import PlacedRoom, Site
from softplace.timeutil import s_to_ms


@dataclass(slots=True)
class Results:
    """What the detector has concluded since the last ``drain``."""

    intervals: list[Interval] = field(default_factory=list)
    measures: list[RoomMeasure] = field(default_factory=list)
    breaches: list[Breach] = field(default_factory=list)

    def extend(self, other: Results) -> None:
        self.intervals.extend(other.intervals)
        self.measures.extend(other.measures)
        self.breaches.extend(other.breaches)


def room_heartbeat_s(placed: PlacedRoom, settings: DetectorSettings) -> float:
    """The registry's heartbeat for the room (its own, else its sensor kind's), else the
    detector's default."""
    own = placed.heartbeat_s
    return settings.heartbeat_s if own is None else own


class _RoomPipeline:
    """Segments of one room -> intervals, the day's measures and its breaches."""

    def __init__(
        self, ref: RoomRef, calendar: RoomCalendar, settings: DetectorSettings, *,
        origin_ms: int, emit_from_ms: int, out: Results, devices: frozenset[str],
        heartbeat_s: float,
    ) -> None:
        self.ref = ref
        self.calendar = calendar
        self.limit_h = settings.breach_limit_h
        self.emit_from_ms = emit_from_ms
        self.out = out
        config = TrackerConfig(
            hold_ms=s_to_ms(settings.hold_s), heartbeat_ms=s_to_ms(heartbeat_s)
        )
        self.tracker = RoomTracker(config, origin_ms, self.on_segment, devices)
        self.intervals = IntervalBuilder(ref.room)
        self.day: DayPlan | None = None
        self.acc: DayAccumulator | None = None
        self.breach: BreachTracker | None = None

    def on_segment(self, start: int, end: int, state: State, count: int) -> None:
        if start < self.emit_from_ms:
            start = self.emit_from_ms
            if start >= end:
                return
        while start < end:
            day = self.day
            if day is None or start >= day.end_ms:
                self.end_day()
                day = self._open_day(start)
            piece_end = end if end < day.end_ms else day.end_ms
            closed = self.intervals.add(start, piece_end, state, count)
            if closed is not None:
                self.out.intervals.append(closed)
            if self.acc is not None and self.breach is not None:
                self.acc.add(start, piece_end, state, count)
                if self.ref.rules:
                    breach = self.breach.add(start, piece_end, state)
                    if breach is not None:
                        self.out.breaches.append(breach)
            start = piece_end

    def _open_day(self, at_ms: int) -> DayPlan:
        day = self.calendar.plan_at(at_ms)
        self.day = day
        if day.start_ms >= self.emit_from_ms:  # a whole day: measured
            self.acc = DayAccumulator(self.ref, day)
            self.breach = BreachTracker(self.ref, day, limit_ms_for(day, self.limit_h))
        else:
            self.acc = self.breach = None
        return day

    def end_day(self) -> None:
        closed = self.intervals.close()
        if closed is not None:
            self.out.intervals.append(closed)
        if self.acc is not None:
            self.out.measures.extend(self.acc.measures())
        if self.breach is not None:
            breach = self.breach.end_day()
            if breach is not None:
                self.out.breaches.append(breach)
        self.day = self.acc = self.breach = None

    def settle(self) -> None:
        """Deliver everything resolved; close the day when it is over.

        A cut that would only lengthen the current interval (the same state, contiguous,
        the day not over) is left to ``flush``: cuts never change results, they only split
        segments, and skipping them keeps a step over quiet rooms cheap."""
        tracker = self.tracker
        resolved = tracker.resolved_ms
        day = self.day
        if day is not None and resolved < day.end_ms:
            current = self.intervals.current
            if current is not None and current[2] is tracker.state and (
                current[1] == tracker.since_ms
            ):
                return
        tracker.cut(resolved)  # may open a new day
        if self.day is not None and resolved >= self.day.end_ms:
            self.end_day()

    def flush(self) -> None:
        """Deliver the resolved part that ``settle`` left pending."""
        self.tracker.cut(self.tracker.resolved_ms)

    def to_dict(self) -> dict[str, Any]:
        self.flush()
        return {
            "tracker": self.tracker.to_dict(), "interval": self.intervals.to_dict(),
            "day": self.day.date.isoformat() if self.day is not None else None,
            "acc": self.acc.to_dict() if self.acc is not None else None,
            "breach": self.breach.to_dict() if self.breach is not None else None,
        }

    def load_dict(self, data: dict[str, Any]) -> None:
        self.tracker.load_dict(data["tracker"])
        self.intervals.load_dict(data["interval"])
        if data["day"] is not None:
            self._open_day(self.calendar.plan(dt.date.fromisoformat(data["day"])).start_ms)
            if self.acc is not None and data["acc"] is not None:
                self.acc.load_dict(data["acc"])
            if self.breach is not None and data["breach"] is not None:
                self.breach.load_dict(data["breach"])


class SiteDetector:
    """Every room of one site. Feed events, ``advance`` the watermark, ``drain`` results."""

    def __init__(
        self, site: Site, settings: DetectorSettings, origin_ms: int,
        emit_from_ms: int | None = None,
    ) -> None:
        self.site = site
        self.settings = settings
        self.origin_ms = origin_ms
        self.emit_from_ms = origin_ms if emit_from_ms is None else emit_from_ms
        self.watermark_ms = origin_ms
        self._out = Results()
        calendars: dict[str, RoomCalendar] = {}
        self.rooms: dict[str, _RoomPipeline] = {}
        for placed in site.placed_rooms():
            hours = placed.opening_hours
            key = hours.model_dump_json()
            if key not in calendars:
                calendars[key] = RoomCalendar(site.tz, hours, settings.bands)
            ref = RoomRef.of(placed, settings.include_housing)
            self.rooms[ref.room] = _RoomPipeline(
                ref, calendars[key], settings, origin_ms=origin_ms,
                emit_from_ms=self.emit_from_ms, out=self._out,
                devices=frozenset(placed.room.devices),
                heartbeat_s=room_heartbeat_s(placed, settings),
            )
        self.unknown_room_events = 0

    def push_reading(self, room: str, ts_ms: int, count: int) -> bool:
        pipeline = self.rooms.get(room)
        if pipeline is None:
            self.unknown_room_events += 1
            return False
        return pipeline.tracker.push_reading(ts_ms, count)

    def push_readings(self, room: str, times_ms: Sequence[int], counts: Sequence[int]) -> int:
        """Readings of one room as columns (time-ordered); returns how many were accepted."""
        pipeline = self.rooms.get(room)
        if pipeline is None:
            self.unknown_room_events += len(times_ms)
            return 0
        return len(times_ms) - pipeline.tracker.push_readings(times_ms, counts)

    def push_status(self, room: str, device: str, ts_ms: int, online: bool) -> bool:
        pipeline = self.rooms.get(room)
        if pipeline is None:
            self.unknown_room_events += 1
            return False
        return pipeline.tracker.push_status(ts_ms, device, online)

    def advance(self, watermark_ms: int) -> None:
        """No event before ``watermark_ms`` is still to come: apply, resolve, emit."""
        if watermark_ms < self.watermark_ms:
            return
        for pipeline in self.rooms.values():
            pipeline.tracker.advance(watermark_ms)
            pipeline.settle()
        self.watermark_ms = watermark_ms

    def drain(self) -> Results:
        """Intervals, measures and breaches concluded since the last drain."""
        out = Results(
            list(self._out.intervals), list(self._out.measures), list(self._out.breaches)
        )
        self._out.intervals.clear()
        self._out.measures.clear()
        self._out.breaches.clear()
        return out

    def open_intervals(self) -> list[Interval]:
        """The interval each room is in now, as far as it is resolved (provisional)."""
        result = []
        for pipeline in self.rooms.values():
            pipeline.flush()
            current = pipeline.intervals.peek()
            if current is not None:
                result.append(current)
        return result

    @property
    def refs(self) -> dict[str, RoomRef]:
        """Each room's reference (the tags and rules its results are stored under)."""
        return {room: pipeline.ref for room, pipeline in self.rooms.items()}

    @property
    def late_dropped(self) -> int:
        return sum(p.tracker.late_dropped for p in self.rooms.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site.id, "origin": self.origin_ms, "emit_from": self.emit_from_ms,
            "watermark": self.watermark_ms,
            "rooms": {room: p.to_dict() for room, p in self.rooms.items()},
        }

    @classmethod
    def from_dict(
        cls, site: Site, settings: DetectorSettings, data: dict[str, Any]
    ) -> SiteDetector:
        detector = cls(site, settings, int(data["origin"]), int(data["emit_from"]))
        detector.watermark_ms = int(data["watermark"])
        for room, pipeline in detector.rooms.items():
            saved = data["rooms"].get(room)
            if saved is not None:
                pipeline.load_dict(saved)
            else:  # a room added to the registry since: starts unknown at the watermark
                pipeline.tracker.since_ms = pipeline.tracker.clock_ms = detector.watermark_ms
                pipeline.emit_from_ms = detector.watermark_ms
        return detector
