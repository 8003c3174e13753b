"""Room count: clamp, drift reset, presence floor, presence-only 0/1, reporting policy."""

from mpytest import eq, raises
from softplace_fw.counting import Reporter, RoomCount


def test_doorway_count_clamped_at_zero():
    rc = RoomCount(doorway=True, hold_ms=1000)
    eq(rc.update(0, None, 0, 1), 0)
    eq(rc.update(10, None, 1, 0), 1, "a missed entry does not go negative")
    eq(rc.update(20, None, 2, 0), 3)
    eq(rc.update(30, None, 0, 1), 2)


def test_drift_reset_after_presence_absent_for_hold():
    rc = RoomCount(doorway=True, hold_ms=1000)
    eq(rc.update(0, True, 2, 0), 2)
    eq(rc.update(500, True, 0, 1), 1)
    eq(rc.update(2000, False), 0, "presence gone for the hold: the missed exit is corrected")
    eq(rc.drift_resets, 1)


def test_no_reset_just_after_an_entry():
    rc = RoomCount(doorway=True, hold_ms=1000)
    eq(rc.update(0, False, 1, 0), 1)
    eq(rc.update(200, False), 1, "presence sensor has not caught up yet")
    eq(rc.update(1200, False), 0)


def test_presence_floor_of_one():
    rc = RoomCount(doorway=True, hold_ms=1000)
    eq(rc.update(0, True), 1, "someone is there though no entry was seen")
    eq(rc.tally, 0)


def test_presence_only_is_zero_or_one():
    rc = RoomCount(doorway=False, hold_ms=1000)
    eq(rc.update(0, True, 5, 0), 1)
    eq(rc.update(1, False), 0)
    eq(rc.update(2, None), 0)


def test_reporter_on_change_and_heartbeat():
    r = Reporter(heartbeat_ms=60000)
    eq(r.due(0, 0), True, "first value")
    eq(r.due(1000, 0), False)
    eq(r.due(2000, 1), True, "change")
    eq(r.due(61999, 1), False)
    eq(r.due(62000, 1), True, "heartbeat")
    raises(ValueError, Reporter, 0)
