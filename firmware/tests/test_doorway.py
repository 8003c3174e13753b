"""Two-zone crossing state machine and calibration, fed by the recorded ToF trace."""

from mpytest import eq, ok, read_trace
from softplace_fw.doorway import Doorway, threshold_from


def _trace():
    rows = []
    for line in read_trace("tof_doorway.csv"):
        t, front, back = line.split(",")
        rows.append((int(t), int(front), int(back)))
    return rows


def _run(door, rows):
    entered = left = 0
    for t, front, back in rows:
        i, o = door.update(t, front or None, back or None)
        entered += i
        left += o
    return entered, left


def test_trace_counts_entries_and_exits():
    rows = _trace()
    door = Doorway()
    eq(door.calibrate([r[1] for r in rows[:20]], [r[2] for r in rows[:20]]), None)
    front, back = door.thresholds
    ok(1600 < front < 1700 and 1600 < back < 1700, "80 % of ~2.1 m")
    eq(_run(door, rows[20:]), (3, 2), "in, in, out, turn-back, hesitating in, out")


def _feed(door, states, t=0):
    dist = {0: (2000, 2000), 1: (800, 2000), 2: (2000, 800), 3: (800, 800)}
    total = (0, 0)
    for st in states:
        i, o = door.update(t, dist[st][0], dist[st][1])
        total = (total[0] + i, total[1] + o)
        t += 50
    return total


def _door():
    door = Doorway(recalibrate_ms=10000)
    eq(door.calibrate([2000] * 10, [2000] * 10), None)
    return door


def test_entry_exit_paths():
    eq(_feed(_door(), [0, 1, 3, 2, 0]), (1, 0))
    eq(_feed(_door(), [0, 2, 3, 1, 0]), (0, 1))


def test_turn_back_and_skip_count_nothing():
    eq(_feed(_door(), [0, 1, 3, 1, 0]), (0, 0))
    eq(_feed(_door(), [0, 1, 2, 0]), (0, 0), "never both: not a person crossing")
    eq(_feed(_door(), [0, 3, 0]), (0, 0))


def test_hesitation_still_counts():
    eq(_feed(_door(), [0, 1, 3, 1, 3, 2, 3, 2, 0]), (1, 0))


def test_invalid_range_keeps_zone_state():
    door = _door()
    eq(door.update(0, 800, 2000), (0, 0))
    eq(door.update(50, None, None), (0, 0))
    eq(door.update(100, 800, 800), (0, 0))
    eq(door.update(150, 2000, 800), (0, 0))
    eq(door.update(200, 2000, 2000), (1, 0))


def test_uncalibrated_counts_nothing():
    door = Doorway()
    eq(door.update(0, 800, 800), (0, 0))
    ok(not door.calibrated)


def test_calibration_refuses_blocked_or_noisy_zone():
    door = Doorway(min_baseline_mm=300)
    why = door.calibrate([200] * 10, [2000] * 10)
    ok(why is not None and "front" in why and "blocked" in why, why)
    why = door.calibrate([2000] * 10, [500, 2000] * 5)
    ok(why is not None and "noisy" in why, why)
    why = door.calibrate([0] * 8 + [2000] * 2, [2000] * 10)
    ok(why is not None and "valid" in why, why)
    ok(not door.calibrated)


def test_threshold_from_ignores_dropouts():
    eq(threshold_from([1000, 0, 1000, None, 1000, 1000], 80, 300), (800, None))


def test_blocked_zone_asks_for_recalibration():
    door = _door()
    door.update(0, 800, 2000)
    ok(not door.needs_recalibration(9000))
    door.update(9000, 800, 2000)
    ok(door.needs_recalibration(10000), "blocked 10 s")
    # a box now sits under the front zone: recalibrate on the new baseline
    eq(door.calibrate([800] * 10, [2000] * 10), None)
    ok(not door.needs_recalibration(10050))
    eq(_feed(door, [0, 2, 3, 1, 0], t=20000), (0, 0),
       "new front threshold 640 mm: a head at 800 mm is not seen")
    eq(door.calibrations, 2)
