"""Per-room state machine: ordered readings and sensor status -> resolved segments.

No I/O, no clock: time only moves when an event or a watermark says so, so the same
events give the same segments whether they come in one batch or a few at a time.

Rules (all times UTC ms):

* A reading's count holds from its time until the next reading, for at most
  ``heartbeat``; past that the room is ``unknown`` (silent sensors are not vacant).
* When every sensor of the room reports offline the room is ``unknown`` from that
  instant; the next reading (proof that a sensor works) ends it. Room readings carry
  no device identity, so a reading cannot tell which sensor came back: while at least
  one sensor is online the offline ones stay offline until their own status says so.
* Occupied -> vacant needs a zero count lasting ``hold``: a shorter run of zeros (a
  person sitting still under a PIR) stays occupied, at the last positive count. When
  the zeros do last ``hold``, the vacancy starts at the first zero (retroactively).
* Events are buffered and applied in time order once the watermark passes them:
  ``advance(w)`` promises that no event earlier than ``w`` is still to come. Events
  pushed with a time before the last watermark are too late; they are counted and
  dropped (``late_dropped``).

Output is a stream of segments ``(start, end, state, count)`` with a constant count,
in time order, partitioning ``[origin, resolved_ms)``.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from softplace.timeutil import ms_to_s


class State(StrEnum):
    OCCUPIED = "occupied"
    VACANT = "vacant"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Segment:
    start_ms: int
    end_ms: int
    state: State
    count: int


SegmentSink = Callable[[int, int, State, int], None]

_HEALTH, _READING = 0, 1  # at one instant, sensor status applies before a reading
_NEVER = 1 << 62
_TIME = operator.itemgetter(0)


@dataclass(frozen=True, slots=True)
class TrackerConfig:
    hold_ms: int
    heartbeat_ms: int


class RoomTracker:
    """One room's occupancy state; feed it events, advance it, collect segments."""

    def __init__(
        self, config: TrackerConfig, origin_ms: int, sink: SegmentSink,
        devices: frozenset[str] = frozenset(),
    ) -> None:
        self._hold = config.hold_ms
        self._heartbeat = config.heartbeat_ms
        self._sink = sink
        self._devices = devices  # from the registry; empty = every device seen in status events
        self._seen: set[str] = set()
        self._offline: set[str] = set()
        self.state = State.UNKNOWN
        self.since_ms = origin_ms  # start of the segment not yet emitted
        self.count = 0
        self.last_reading_ms: int | None = None  # for the heartbeat; None while unknown
        self.pending_zero_ms: int | None = None  # first zero of an unresolved run after occupied
        self.clock_ms = origin_ms  # watermark: every event before it has been applied
        self._buffer: list[tuple[int, int, int | str, bool]] = []
        self._columns: tuple[Sequence[int], Sequence[int]] | None = None  # see push_readings
        self.late_dropped = 0

    # -- feeding ---------------------------------------------------------------------

    def push_reading(self, ts_ms: int, count: int) -> bool:
        """Queue a reading; False when it is older than the watermark (dropped)."""
        if ts_ms < self.clock_ms:
            self.late_dropped += 1
            return False
        self._buffer.append((ts_ms, _READING, count, False))
        return True

    def push_readings(self, times_ms: Sequence[int], counts: Sequence[int]) -> int:
        """Queue readings given as two columns (time-ordered); returns how many were too
        late (dropped). The same as ``push_reading`` for each, without a call per reading."""
        if not times_ms:
            return 0
        clock = self.clock_ms
        if self._columns is None and not self._buffer and min(times_ms) >= clock:
            self._columns = (times_ms, counts)  # kept as they are until advance
            return 0
        self._queue_columns()
        rows = zip(times_ms, itertools.repeat(_READING), counts, itertools.repeat(False))
        if times_ms[0] >= clock:
            self._buffer.extend(rows)
            return 0
        before = len(self._buffer)
        self._buffer.extend(row for row in rows if row[0] >= clock)
        late = len(times_ms) - (len(self._buffer) - before)
        self.late_dropped += late
        return late

    def push_status(self, ts_ms: int, device: str, online: bool) -> bool:
        """Queue a sensor online/offline event; False when too late (dropped)."""
        if ts_ms < self.clock_ms:
            self.late_dropped += 1
            return False
        self._buffer.append((ts_ms, _HEALTH, device, online))
        return True

    @property
    def resolved_ms(self) -> int:
        """Segments before this instant are final (a pending zero run is not)."""
        return self.pending_zero_ms if self.pending_zero_ms is not None else self.clock_ms

    @property
    def buffered(self) -> int:
        return len(self._buffer) + (len(self._columns[0]) if self._columns is not None else 0)

    def advance(self, watermark_ms: int) -> None:
        """Apply every queued event before ``watermark_ms``, then let time reach it."""
        if watermark_ms < self.clock_ms:
            return
        columns = self._columns
        # the store's columns alone, all due and in order: applied as they are
        applied = (columns is not None and not self._buffer and columns[0][-1] < watermark_ms
                   and self._apply_columns(*columns))
        if not applied:
            self._queue_columns()
            buffer = self._buffer
            if buffer:
                buffer.sort()
                cut = len(buffer)
                if buffer[-1][0] >= watermark_ms:
                    cut = bisect.bisect_left(buffer, watermark_ms, key=_TIME)
                ready, self._buffer = buffer[:cut], buffer[cut:]
                self._apply(ready)
        self._expire(watermark_ms, watermark_ms)
        self.clock_ms = watermark_ms

    def _apply(self, events: Iterable[tuple[int, int, int | str, bool]]) -> None:
        """Apply events in the order given (time order)."""
        reading, status = self._reading, self._status
        beat, unknown = self._heartbeat, State.UNKNOWN
        for ts, kind, value, online in events:
            if kind != _READING:
                status(ts, str(value), online)
                continue
            last = self.last_reading_ms
            # a repeat of the count in force, no deadline due, no sensor offline: all
            # that _reading would do is move the heartbeat (most change-only points)
            if (
                value == self.count and last is not None and ts <= last + beat
                and self.pending_zero_ms is None and not self._offline
                and self.state is not unknown
            ):
                self.last_reading_ms = ts
            else:
                reading(ts, value)  # type: ignore[arg-type]  # a reading's value is its count

    def _apply_columns(self, times: Sequence[int], counts: Sequence[int]) -> bool:
        """``_apply`` of readings given as columns, or False (nothing applied) when their
        times are not strictly increasing.

        The same steps as ``_apply``, as a loop over two lists: the repeat shortcut's
        conditions other than the time (count in force, no pending zero run, no sensor
        offline, state known) change only inside ``_reading``, so they are re-read only
        after it, and a repeat costs two comparisons.
        """
        time_list = times.tolist() if isinstance(times, array) else list(times)
        if not all(map(operator.lt, time_list, itertools.islice(time_list, 1, None))):
            return False
        self._columns = None
        count_list = counts.tolist() if isinstance(counts, array) else list(counts)
        beat, reading = self._heartbeat, self._reading
        last = self.last_reading_ms
        repeat = self._repeat_count()
        for ts, value in zip(time_list, count_list, strict=True):
            # repeat is None whenever last is, so last + beat is only reached with an int
            if value == repeat and ts <= last + beat:  # type: ignore[operator]
                last = ts
                continue
            self.last_reading_ms = last
            reading(ts, value)
            last = self.last_reading_ms
            repeat = self._repeat_count()
        self.last_reading_ms = last
        return True

    def _repeat_count(self) -> int | None:
        """The count a reading repeats to take ``_apply``'s shortcut (its time within the
        heartbeat), or None when no reading can take it."""
        if (self.last_reading_ms is None or self.pending_zero_ms is not None or self._offline
                or self.state is State.UNKNOWN):
            return None
        return self.count

    def _queue_columns(self) -> None:
        """Move readings still held as columns into the event buffer."""
        if self._columns is not None:
            times, counts = self._columns
            self._columns = None
            self._buffer.extend(
                zip(times, itertools.repeat(_READING), counts, itertools.repeat(False))
            )

    def cut(self, at_ms: int) -> None:
        """Emit the resolved part of the current segment up to ``at_ms`` (<= resolved_ms).

        Cutting never changes results: it only splits a segment in two.
        """
        if at_ms > self.resolved_ms:
            raise ValueError(f"cannot cut at {at_ms}: resolved only up to {self.resolved_ms}")
        if at_ms > self.since_ms:
            self._sink(self.since_ms, at_ms, self.state, self.count)
            self.since_ms = at_ms

    # -- the machine -----------------------------------------------------------------

    def _switch(self, at_ms: int, state: State, count: int) -> None:
        if at_ms > self.since_ms:
            self._sink(self.since_ms, at_ms, self.state, self.count)
            self.since_ms = at_ms
        self.state, self.count = state, count

    def _expire(self, hold_until: int, beat_before: int) -> None:
        """Apply time-driven transitions: hold deadlines <= hold_until, heartbeats < beat_before."""
        while True:
            pending = self.pending_zero_ms
            hold_at = pending + self._hold if pending is not None else _NEVER
            last = self.last_reading_ms
            beat_at = last + self._heartbeat if last is not None else _NEVER
            if hold_at <= hold_until and hold_at <= beat_at:
                assert pending is not None
                self.pending_zero_ms = None
                self._switch(pending, State.VACANT, 0)
            elif beat_at < beat_before:
                self._go_unknown(beat_at)
            else:
                return

    def _go_unknown(self, at_ms: int) -> None:
        # an unresolved zero run cut short by silence stays occupied (benefit of the doubt)
        self.pending_zero_ms = None
        self.last_reading_ms = None
        self._switch(at_ms, State.UNKNOWN, 0)

    def _reading(self, ts: int, count: int) -> None:
        # _expire(ts, ts) has work only when a deadline is due; most readings have none
        pending, last = self.pending_zero_ms, self.last_reading_ms
        if (pending is not None and pending + self._hold <= ts) or (
            last is not None and last + self._heartbeat < ts
        ):
            self._expire(ts, ts)
        if self._offline and (self._devices or self._seen) <= self._offline:
            self._offline.clear()  # all were offline, yet a reading: some sensor is back
        self.last_reading_ms = ts
        state = self.state
        if state is State.OCCUPIED:
            if count > 0:
                self.pending_zero_ms = None
                if count != self.count:
                    self._switch(ts, State.OCCUPIED, count)
            elif self.pending_zero_ms is None:
                if self._hold == 0:
                    self._switch(ts, State.VACANT, 0)
                else:
                    self.pending_zero_ms = ts
        elif count > 0:
            self._switch(ts, State.OCCUPIED, count)
        elif state is State.UNKNOWN:
            self._switch(ts, State.VACANT, 0)

    def _status(self, ts: int, device: str, online: bool) -> None:
        self._expire(ts, ts)
        self._seen.add(device)
        if online:
            self._offline.discard(device)
            return
        self._offline.add(device)
        watched = self._devices or self._seen
        if watched <= self._offline and self.state is not State.UNKNOWN:
            self._go_unknown(ts)

    # -- checkpoints -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.value, "since": self.since_ms, "count": self.count,
            "last": self.last_reading_ms, "pending": self.pending_zero_ms,
            "clock": self.clock_ms, "seen": sorted(self._seen),
            "offline": sorted(self._offline), "late": self.late_dropped,
            "buffer": [list(item) for item in self._queued()],
        }

    def _queued(self) -> list[tuple[int, int, int | str, bool]]:
        self._queue_columns()
        return self._buffer

    def load_dict(self, data: dict[str, Any]) -> None:
        self._columns = None
        self.state = State(data["state"])
        self.since_ms, self.count = int(data["since"]), int(data["count"])
        self.last_reading_ms, self.pending_zero_ms = data["last"], data["pending"]
        self.clock_ms, self.late_dropped = int(data["clock"]), int(data["late"])
        self._seen, self._offline = set(data["seen"]), set(data["offline"])
        self._buffer = [(int(t), int(k), v, bool(o)) for t, k, v, o in data["buffer"]]


@dataclass(frozen=True, slots=True)
class Interval:
    """A maximal run of one state within one local day (cut at local midnight)."""

    room: str
    start_ms: int
    end_ms: int
    state: State
    peak_count: int
    count_ms: int  # integral of the count over the interval (count x ms)

    @property
    def duration_s(self) -> float:
        return ms_to_s(self.end_ms - self.start_ms)

    @property
    def mean_count(self) -> float:
        span = self.end_ms - self.start_ms
        return self.count_ms / span if span else 0.0


class IntervalBuilder:
    """Merges consecutive segments of one state; ``close()`` ends the current interval."""

    def __init__(self, room: str) -> None:
        self.room = room
        self.current: list[Any] | None = None  # [start, end, state, peak, count_ms]

    def add(self, start: int, end: int, state: State, count: int) -> Interval | None:
        current = self.current
        if current is not None and current[2] is state and current[1] == start:
            current[1] = end
            current[3] = max(current[3], count)
            current[4] += count * (end - start)
            return None
        closed = self.close()
        self.current = [start, end, state, count, count * (end - start)]
        return closed

    def close(self) -> Interval | None:
        current, self.current = self.current, None
        if current is None:
            return None
        return Interval(self.room, current[0], current[1], current[2], current[3], current[4])

    def peek(self) -> Interval | None:
        current = self.current
        if current is None:
            return None
        return Interval(self.room, current[0], current[1], current[2], current[3], current[4])

    def to_dict(self) -> list[Any] | None:
        return None if self.current is None else [*self.current[:2], self.current[2].value,
                                                  *self.current[3:]]

    def load_dict(self, data: list[Any] | None) -> None:
        self.current = None if data is None else [
            int(data[0]), int(data[1]), State(data[2]), int(data[3]), int(data[4])
        ]
