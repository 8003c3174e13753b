"""Hand-computed cases for the per-room state machine."""

from __future__ import annotations

import datetime as dt

from detector.core import SiteDetector
from detector.intervals import RoomTracker, Segment, State, TrackerConfig
from detector.settings import DetectorSettings
from tests.detector.helpers import MIN, at, clock, site, spans

MON = dt.date(2024, 3, 4)
CONFIG = TrackerConfig(hold_ms=5 * MIN, heartbeat_ms=15 * MIN)


def _tracker(origin: int) -> tuple[RoomTracker, list[Segment]]:
    out: list[Segment] = []
    tracker = RoomTracker(CONFIG, origin, lambda s, e, st, c: out.append(Segment(s, e, st, c)),
                          frozenset({"a", "b"}))
    return tracker, out


def _merged(segments: list[Segment]) -> list[tuple[str, str, str]]:
    merged: list[list[object]] = []
    for seg in segments:
        if merged and merged[-1][0] == seg.state.value:
            merged[-1][2] = clock(seg.end_ms)
        else:
            merged.append([seg.state.value, clock(seg.start_ms), clock(seg.end_ms)])
    return [(str(a), str(b), str(c)) for a, b, c in merged]


def test_tracker_still_person_stays_occupied() -> None:
    tracker, out = _tracker(at(MON, "09:00"))
    # one person; the PIR loses them for 3 minutes (< 5 min hold) while they sit still
    for minute in range(0, 60):
        count = 0 if 20 <= minute < 23 else 1
        tracker.push_reading(at(MON, "09:00") + minute * MIN, count)
    tracker.advance(at(MON, "10:00"))
    tracker.cut(tracker.resolved_ms)
    assert _merged(out) == [("occupied", "09:00", "10:00")]
    # the still minutes are counted at the last count, not 0
    assert all(seg.count == 1 for seg in out)


def test_tracker_vacancy_starts_at_first_zero_once_hold_passes() -> None:
    tracker, out = _tracker(at(MON, "09:00"))
    for minute in range(0, 60):
        tracker.push_reading(at(MON, "09:00") + minute * MIN, 2 if minute < 30 else 0)
    tracker.advance(at(MON, "09:34"))  # zeros for 4 min: not yet decided
    tracker.cut(tracker.resolved_ms)
    assert tracker.resolved_ms == at(MON, "09:30")
    tracker.advance(at(MON, "10:00"))
    tracker.cut(tracker.resolved_ms)
    assert _merged(out) == [("occupied", "09:00", "09:30"), ("vacant", "09:30", "10:00")]


def test_tracker_all_sensors_offline_is_unknown_until_a_reading() -> None:
    tracker, out = _tracker(at(MON, "09:00"))
    tracker.push_reading(at(MON, "09:00"), 0)
    tracker.push_status(at(MON, "09:05"), "a", online=False)  # b still watches
    tracker.push_reading(at(MON, "09:06"), 0)
    tracker.push_status(at(MON, "09:10"), "b", online=False)  # now nobody watches
    tracker.push_reading(at(MON, "09:40"), 0)
    tracker.advance(at(MON, "10:00"))
    tracker.cut(tracker.resolved_ms)
    assert _merged(out) == [
        ("vacant", "09:00", "09:10"), ("unknown", "09:10", "09:40"),
        ("vacant", "09:40", "09:55"), ("unknown", "09:55", "10:00"),  # heartbeat: 15 min
    ]


def test_tracker_silence_past_heartbeat_is_unknown() -> None:
    tracker, out = _tracker(at(MON, "09:00"))
    tracker.push_reading(at(MON, "09:00"), 2)
    tracker.push_reading(at(MON, "10:00"), 2)
    tracker.advance(at(MON, "10:05"))
    tracker.cut(tracker.resolved_ms)
    assert _merged(out) == [
        ("occupied", "09:00", "09:15"), ("unknown", "09:15", "10:00"),
        ("occupied", "10:00", "10:05"),
    ]


def test_tracker_zero_run_cut_short_by_silence_stays_occupied() -> None:
    tracker, out = _tracker(at(MON, "09:00"))
    tracker.push_reading(at(MON, "09:00"), 1)
    tracker.push_reading(at(MON, "09:10"), 0)
    tracker.push_status(at(MON, "09:12"), "a", online=False)
    tracker.push_status(at(MON, "09:12"), "b", online=False)
    tracker.advance(at(MON, "09:30"))
    tracker.cut(tracker.resolved_ms)
    assert _merged(out) == [("occupied", "09:00", "09:12"), ("unknown", "09:12", "09:30")]


def test_tracker_out_of_order_within_window_is_folded_in() -> None:
    ordered, ordered_out = _tracker(at(MON, "09:00"))
    shuffled, shuffled_out = _tracker(at(MON, "09:00"))
    readings = [(at(MON, "09:00") + m * MIN, 1 if 10 <= m < 30 else 0) for m in range(60)]
    for ts, count in readings:
        ordered.push_reading(ts, count)
    # arrive in pairs swapped, and the watermark trails by 2 minutes
    swapped = [readings[i ^ 1] for i in range(len(readings))]
    for ts, count in swapped:
        assert shuffled.push_reading(ts, count)
        shuffled.advance(max(ts - 2 * MIN, shuffled.clock_ms))
    for tracker in (ordered, shuffled):
        tracker.advance(at(MON, "10:00"))
        tracker.cut(tracker.resolved_ms)
    assert _merged(shuffled_out) == _merged(ordered_out)
    assert shuffled.late_dropped == 0


def test_tracker_reading_later_than_window_is_dropped_and_counted() -> None:
    tracker, out = _tracker(at(MON, "09:00"))
    tracker.push_reading(at(MON, "09:00"), 0)
    tracker.push_reading(at(MON, "09:10"), 0)
    tracker.advance(at(MON, "09:20"))
    assert not tracker.push_reading(at(MON, "09:19"), 3)
    assert tracker.late_dropped == 1
    tracker.cut(tracker.resolved_ms)
    assert _merged(out) == [("vacant", "09:00", "09:20")]


def test_intervals_cut_at_local_midnight() -> None:
    s1 = site()
    detector = SiteDetector(s1, DetectorSettings(), at(MON, "00:00"))
    for minute in range(0, 48 * 60, 5):
        detector.push_reading("meet", at(MON) + minute * MIN, 0)
    detector.advance(at(MON + dt.timedelta(days=2)))
    got = spans(detector.drain().intervals, "meet")
    assert got == [("vacant", "00:00", "00:00"), ("vacant", "00:00", "00:00")]
    assert [m.date for m in SiteDetector(s1, DetectorSettings(), 0).drain().measures] == []


def test_intervals_start_unknown_before_the_first_reading() -> None:
    detector = SiteDetector(site(), DetectorSettings(), at(MON, "00:00"))
    detector.push_reading("meet", at(MON, "08:00"), 0)
    detector.advance(at(MON, "08:10"))
    assert [(i.state, clock(i.start_ms)) for i in detector.open_intervals()
            if i.room == "meet"] == [(State.VACANT, "08:00")]
    assert spans(detector.drain().intervals, "meet") == [("unknown", "00:00", "08:00")]
