"""Property tests: intervals partition time, rates stay in [0, 1], batch equals streaming."""

from __future__ import annotations

import datetime as dt
import random
from itertools import cycle, pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detector.core import Results, SiteDetector
from detector.settings import DetectorSettings
from tests.detector.helpers import MIN, at, canonical, site

START_DAY = dt.date(2024, 3, 30)  # spans the spring DST change in London
DAYS = 2
START, END = at(START_DAY), at(START_DAY + dt.timedelta(days=DAYS))
SETTINGS = DetectorSettings(hold_s=240, heartbeat_s=600, reorder_window_s=600)

# (room, minute, count or -1 for "every sensor offline")
events_strategy = st.lists(
    st.tuples(st.sampled_from(["meet", "office", "flat"]),
              st.integers(0, (END - START) // MIN - 1), st.integers(-1, 6)),
    max_size=300,
)


def _push(detector: SiteDetector, event: tuple[str, int, int]) -> None:
    room, minute, count = event
    ts = START + minute * MIN
    if count < 0:
        for device in detector.site.room(room).room.devices:
            detector.push_status(room, device, ts, online=False)
    else:
        detector.push_reading(room, ts, count)


def _batch(events: list[tuple[str, int, int]], site_id: str = "s1") -> Results:
    return _run(events, site_id)[0]


def _run(events: list[tuple[str, int, int]], site_id: str = "s1") -> tuple[Results, SiteDetector]:
    detector = SiteDetector(site(site_id), SETTINGS, START)
    for event in events:
        _push(detector, event)
    detector.advance(END)
    results = detector.drain()
    results.intervals.extend(detector.open_intervals())
    return results, detector


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=events_strategy)
def test_intervals_partition_the_time_range(events: list[tuple[str, int, int]]) -> None:
    results, detector = _run(events)
    for room in ("meet", "office", "flat", "store"):
        mine = sorted((i for i in results.intervals if i.room == room), key=lambda i: i.start_ms)
        resolved = detector.rooms[room].tracker.resolved_ms  # a zero run may still be open
        assert mine[0].start_ms == START
        assert mine[-1].end_ms == resolved
        assert END - SETTINGS.hold_s * 1000 <= resolved <= END
        for before, after in pairwise(mine):
            assert before.end_ms == after.start_ms  # no gap, no overlap
            assert before.end_ms > before.start_ms
        assert sum(i.end_ms - i.start_ms for i in mine) == resolved - START


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=events_strategy)
def test_measures_rates_lie_in_unit_interval(events: list[tuple[str, int, int]]) -> None:
    results = _batch(events)
    assert results.measures
    for measure in results.measures:
        tally = measure.tally
        for rate in (tally.frequency_rate, tally.occupancy_rate, tally.utilisation_rate):
            assert 0.0 <= rate <= 1.0
        assert abs(tally.utilisation_rate - tally.frequency_rate * tally.occupancy_rate) < 1e-9
        assert tally.used_ms + tally.vacant_ms + tally.unknown_ms == tally.available_ms
        assert tally.idle_m2h >= 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=events_strategy, seed=st.integers(0, 2**32 - 1),
       steps=st.lists(st.integers(1, 6 * 60), min_size=1, max_size=30))
def test_batch_equals_streaming(
    events: list[tuple[str, int, int]], seed: int, steps: list[int]
) -> None:
    ordered = sorted(events, key=lambda e: e[1])
    batch = _batch(ordered)
    # streaming: events arrive shuffled, but never later than the reorder window allows;
    # the watermark moves in irregular steps
    rng = random.Random(seed)
    window = int(SETTINGS.reorder_window_s * 1000)
    arrival = sorted(ordered, key=lambda e: START + e[1] * MIN + rng.randrange(0, window))
    detector = SiteDetector(site(), SETTINGS, START)
    stream = Results()
    newest = START
    step_iter = iter(steps * 100)
    next_advance = START
    for event in arrival:
        _push(detector, event)
        newest = max(newest, START + event[1] * MIN)
        if newest - window >= next_advance:
            detector.advance(newest - window)
            stream.extend(detector.drain())
            next_advance = newest - window + next(step_iter) * MIN
    detector.advance(END)
    stream.extend(detector.drain())
    stream.intervals.extend(detector.open_intervals())
    assert detector.late_dropped == 0
    assert canonical(stream) == canonical(batch)


# runs of one count (length, count, minutes between readings): long repeats, some gaps
# past the heartbeat, zeros that may or may not last the hold
runs_strategy = st.lists(
    st.tuples(st.integers(1, 25), st.sampled_from([0, 0, 1, 2, 5]),
              st.sampled_from([1, 1, 2, 4, 9, 11])),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(runs=st.lists(runs_strategy, min_size=3, max_size=3),
       offline=st.lists(st.tuples(st.sampled_from(["meet", "office"]),
                                  st.integers(0, (END - START) // MIN - 1)), max_size=4),
       chunks=st.lists(st.integers(1, 12 * 60), min_size=1, max_size=10))
def test_readings_as_columns_equal_readings_one_by_one(
    runs: list[list[tuple[int, int, int]]], offline: list[tuple[str, int]], chunks: list[int],
) -> None:
    readings: dict[str, list[tuple[int, int]]] = {}
    for room, room_runs in zip(("meet", "office", "flat"), runs, strict=True):
        minute, rows = 0, readings.setdefault(room, [])
        for length, count, every in room_runs:
            for _ in range(length):
                rows.append((START + minute * MIN, count))
                minute += every
    one_by_one = SiteDetector(site(), SETTINGS, START)
    as_columns = SiteDetector(site(), SETTINGS, START)
    lo, bounds = START, cycle(chunks)
    while lo < END:
        hi = min(END, lo + next(bounds) * MIN)
        for detector in (one_by_one, as_columns):
            for room, minute in offline:
                if lo <= START + minute * MIN < hi:
                    for device in detector.site.room(room).room.devices:
                        detector.push_status(room, device, START + minute * MIN, online=False)
        for room, rows in readings.items():
            due = [(ts, count) for ts, count in rows if lo <= ts < hi]
            for ts, count in due:
                one_by_one.push_reading(room, ts, count)
            if due:
                times, counts = zip(*due, strict=True)
                as_columns.push_readings(room, times, counts)
        one_by_one.advance(hi)
        as_columns.advance(hi)
        lo = hi
    results = [d.drain() for d in (one_by_one, as_columns)]
    for detector, result in zip((one_by_one, as_columns), results, strict=True):
        result.intervals.extend(detector.open_intervals())
    assert canonical(results[1]) == canonical(results[0])
