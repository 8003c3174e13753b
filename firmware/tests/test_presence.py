"""Presence hold and debounce: a still person must not make the room vacant."""

from mpytest import eq, ok, raises, read_trace
from softplace_fw.presence import PresenceFilter


def test_debounce_filters_a_glitch():
    p = PresenceFilter(debounce_ms=1000, hold_ms=5000)
    eq(p.update(0, True), False)
    eq(p.update(500, False), False)
    eq(p.update(600, True), False)
    eq(p.update(1500, True), False)
    eq(p.update(1600, True), True, "1 s of continuous presence")


def test_hold_keeps_still_person():
    p = PresenceFilter(debounce_ms=0, hold_ms=5000)
    eq(p.update(0, True), True)
    eq(p.update(100, False), True)
    eq(p.update(4000, True), True, "back before the hold ran out")
    eq(p.update(4100, False), True)
    eq(p.update(9000, False), True)
    eq(p.update(9100, False), False, "absent 5 s continuously")
    eq(p.absent_for(9100), 5000)


def test_pir_trace_never_vacant_during_meeting():
    p = PresenceFilter(debounce_ms=0, hold_ms=300000)
    first_vacant_after_start = None
    for line in read_trace("pir_meeting.csv"):
        t, level = line.split(",")
        t = int(t)
        held = p.update(t, level == "1")
        if 60000 <= t < 600000:
            ok(held or t < 65000, "vacant at {} ms during the meeting".format(t))
        if t >= 600000 and not held and first_vacant_after_start is None:
            first_vacant_after_start = t
    ok(first_vacant_after_start is not None, "vacant eventually")
    ok(first_vacant_after_start >= 580000 + 300000, "vacant only after the hold")


def test_negative_times_refused():
    raises(ValueError, PresenceFilter, -1, 10)
