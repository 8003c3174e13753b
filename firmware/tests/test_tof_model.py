"""The real DoorwayCounter against the timing-true VL53L1X model (tof_model.py).

Speeds 0.5-2.0 m/s both ways, singly, in close succession, hesitating and turning back,
a door leaf and bus faults, under ST's ROI lag and under the no-lag model. The full
detection table (50 crossings each way per speed) is printed by doorway_table.py; these
runs are kept small enough for the MicroPython run.
"""

from mpytest import eq, ok
from softplace_fw.drivers import vl53l1x as reg
from softplace_fw.presence import UNKNOWN
from tof_model import (
    Clock,
    Run,
    Scene,
    ToFModel,
    calibrated_run,
    config,
    crossing,
    detection,
    hesitate,
    pair_counted,
    turn_back,
)

SPEEDS = (0.5, 1.0, 1.5, 2.0)
PER_SPEED = 4  # crossings each way per speed in these tests


def _detects_all(lag: bool) -> None:
    for speed in SPEEDS:
        right, wrong, missed = detection(speed, lag, PER_SPEED, seed=11)
        eq(wrong, 0, "wrong direction at {} m/s".format(speed))
        ok(right >= 2 * PER_SPEED - 0, "{} m/s: {} of {} right, {} missed".format(
            speed, right, 2 * PER_SPEED, missed))


def test_tof_counts_both_ways_under_roi_lag():
    _detects_all(True)


def test_tof_counts_both_ways_without_roi_lag():
    _detects_all(False)


def test_tof_roi_lag_model_catches_rewriting_roi_while_ranging():
    """The old driver's order (next ROI written while the next ranging runs) counts every
    crossing backwards under ST's lag; the model must see that or it proves nothing."""

    class Rewrites(reg.DoorwayCounter):
        def poll(self, now_ms):
            if not self._inited:
                self._init(now_ms)
            if not self._ranging:
                self._begin(now_ms)
                return
            if not self.tof.data_ready():
                return
            mm = self.tof.distance()
            zone = self._zone
            self._zone ^= 1
            self.tof.set_roi_center(self.centers[self._zone])
            self.tof.clear_interrupt()
            self._use(now_ms, zone, mm)

    run2 = Run(Scene(2200, 4), lag=True, counter_cls=Rewrites)
    run2.until(3000)
    ok(run2.counter.door.calibrated, "calibrates")
    for t0, d in ((3500, 1), (8000, -1), (12000, 1)):
        run2.model.scene.add(crossing(t0, 1.0, d))
    eq(run2.until(16000), (1, 2), "in, out, in counted as out, in, out")


def test_tof_ranging_files_each_result_under_its_start_roi():
    run = calibrated_run(Scene(2200, 2))
    zones = [z for _s, _e, z in run.model.rangings[1:]]  # [0]: init's settling ranging
    ok(len(zones) > 20)
    ok(None not in zones, "every ranging started under one of the two zone ROIs")
    starts = [s for s, _e, _z in run.model.rangings[1:]]
    budget, period = run.model.timing()
    eq((budget, period), (33, 33), "2.2 m: long mode, 33 ms budget and period")
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    ok(min(gaps) >= budget + period, "a ranging takes budget + period: {}".format(min(gaps)))
    ok(max(gaps) <= budget + period + 2 * run.poll_ms, "restarted within a poll")


def test_tof_timing_follows_mounting_height():
    for mount, expected in ((1200, (20, 20)), (2200, (33, 33)), (3000, (50, 50))):
        run = calibrated_run(Scene(mount, 3))
        eq(run.model.timing(), expected, "mounted at {} mm".format(mount))
    eq(reg.timing_for(1200)[0], reg.SHORT)
    eq(reg.timing_for(2200)[0], reg.LONG)


def test_tof_turn_back_and_hesitation():
    for speed in (0.5, 1.0, 2.0):
        scene = Scene(2200, 7)
        scene.add(turn_back(3000, speed, 1, 0.1))
        scene.add(turn_back(9000, speed, -1, 0.15))
        scene.add(hesitate(15000, speed, 1))
        scene.add(hesitate(25000, speed, -1))
        run = calibrated_run(scene)
        eq(run.until(15000), (0, 0), "turned back at {} m/s: nothing counted".format(speed))
        eq(run.until(25000), (1, 0), "hesitated, then went in")
        eq(run.until(35000), (1, 1), "hesitated, then went out")


def test_tof_door_leaf_counts_nothing():
    scene = Scene(2200, 8)
    scene.door_leaf(4000, 7000)
    scene.door_leaf(9000, 9400)
    run = calibrated_run(scene)
    eq(run.until(12000), (0, 0))


def test_tof_close_succession():
    eq(pair_counted(1.0, 1.0), 2, "1 m apart at 1 m/s: two")
    eq(pair_counted(1.2, 2.0), 2, "1.2 m apart at 2 m/s: two")
    eq(pair_counted(0.5, 1.0), 1, "0.5 m apart: one (below the tailgating limit)")


def test_tof_bus_errors_are_counted_and_survived():
    scene = Scene(2200, 9)
    run = calibrated_run(scene)
    model = run.model
    model.fail_next = 1
    run.until(3500)
    eq(run.counter.bus_errors, 1)
    scene.add(crossing(4000, 1.0, 1))
    eq(run.until(7000), (1, 0), "one timeout does not end counting")
    model.present = False  # the breakout falls off the bus
    run.until(12000)
    ok(run.counter.bus_errors >= 3)
    ok(run.counter.fault(12000) is not None, "a silent sensor is a fault")
    eq(run.counter.read(12000)[0], UNKNOWN)
    model.present = True
    run.until(40000)
    eq(run.counter.fault(40000), None, "re-initialised with back-off once it answers")
    scene.add(crossing(41000, 1.0, -1))
    eq(run.until(45000), (1, 1))


def test_tof_calibration_backs_off_and_never_blocks():
    scene = Scene(2200, 10)
    scene.door_leaf(0, 40000, top_mm=2000)  # something 200 mm under the front zone
    run = Run(scene)
    eq(run.error, None, "the sensor answers")
    polls = 0
    longest = 0
    clock = run.clock
    while clock.now < 30000:
        before = clock.now
        run.counter.poll(clock.now)
        longest = max(longest, clock.now - before)
        clock.now += run.poll_ms
        polls += 1
    ok(not run.counter.door.calibrated)
    err = run.counter.error
    ok(err is not None and "front" in err, err)
    eq(longest, 0, "a poll never sleeps")
    ok(run.counter.fresh(clock.now), "ranging goes on while calibration waits")
    # refused at about 1.4 s, then retries after 5, 10, 20 s: at most 3 attempts in 30 s
    ok(run.counter._cal_wait >= 20000, "back-off grows: {}".format(run.counter._cal_wait))
    run.until(80000)
    ok(run.counter.door.calibrated, "the obstacle went at 40 s: calibrated on a later try")


def test_tof_recalibrates_away_from_a_removed_object():
    scene = Scene(2200, 12)
    cfg = config(tof_recalibrate_s=10)
    run = calibrated_run(scene, cfg=cfg)
    base = run.counter.door.baselines[0]
    scene.door_leaf(4000, 20000, top_mm=900)  # a box under the front zone for 16 s
    run.until(19000)
    ok(run.counter.door.baselines[0] < 1500, "baseline follows the box after 10 s")
    run.until(26000)
    ok(abs(run.counter.door.baselines[0] - base) < 100, "and follows its removal")
    scene.add(crossing(27000, 1.0, 1))
    eq(run.until(30000), (1, 0), "counting again")


def test_tof_model_reads_back_the_registers_it_was_given():
    clock = Clock()
    model = ToFModel(clock, Scene())
    tof = reg.VL53L1X(model)
    tof.set_timing(reg.LONG, 50, 60)
    eq(model.timing(), (50, 60))
    tof.set_timing(reg.SHORT, 20, 25)
    eq(model.timing(), (20, 25))


def test_tof_config_applies_live():
    scene = Scene(2200, 13)
    run = calibrated_run(scene)
    eq(run.counter.door.calibrations, 1)
    cfg = config(tof_threshold_pct=70, tof_recalibrate_s=30)
    eq(run.counter.apply(cfg), [])
    ok(run.counter.calibrating, "a new threshold recalibrates")
    eq(run.counter.door.recalibrate_ms, 30000)
    run.until(6000)
    eq(run.counter.door.calibrations, 2)
    base = run.counter.door.baselines[0]
    eq(run.counter.door.thresholds[0], base * 70 // 100)
    cfg = config(tof_threshold_pct=70, tof_recalibrate_s=30, tof_roi_width=6)
    eq(run.counter.apply(cfg), [])
    run.until(10000)
    eq(run.model.mem[0x0080], (15 << 4) | 5, "new ROI size written at re-initialisation")
    eq(run.counter.door.calibrations, 3)
    scene.add(crossing(10500, 1.0, 1))
    eq(run.until(14000), (1, 0))
