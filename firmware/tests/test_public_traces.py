"""Sensor data taken from public vendor documents rather than from this firmware's encoder.

LD2410: the two example report frames printed in Hi-Link's "HLK-LD2410 serial
communication protocol" (reported data frame format: normal and engineering mode),
replayed byte for byte (traces/ld2410_hilink_doc.hex).

VL53L1X: the people-counting case of ST's UM2600 ("Counting people with the VL53L1X
long-distance ranging Time-of-Flight sensor", Rev 2): two N x 16 zones of the 16 x 16
SPAD array (N in [4, 8]; section 7.2 and Figure 12 use N = 6, M = 16), a person "first
detected in the first zone, then in both zones at the same time, and finally in the
second zone" (Figure 2, person counting chronogram), and no crossing "when the person
remains for a long time under the FoV or ... decides to return from the place he came
from" (section "Hysteresis").
"""

from fakes import FakeUART
from mpytest import eq, ok, read_timed_hex
from softplace_fw import ld2410
from softplace_fw.drivers.ld2410 import LD2410Sensor
from tof_model import BACK_CENTER, FRONT_CENTER, Scene, calibrated_run, config, crossing, turn_back


def test_ld2410_hilink_document_frames_decode():
    frames = read_timed_hex("ld2410_hilink_doc.hex")
    parser = ld2410.FrameParser()
    basic = parser.feed(frames[0][1])
    eq(len(basic), 1)
    rep = basic[0]
    eq((rep.state, rep.moving_cm, rep.moving_energy, rep.still_cm, rep.still_energy,
        rep.detect_cm), (2, 81, 0, 0, 59, 0), "the document's basic example")
    eng = parser.feed(frames[1][1])[0]
    eq((eng.state, eng.moving_cm, eng.moving_energy, eng.still_energy), (3, 30, 60, 57))
    eq(eng.moving_gates, [60, 34, 5, 3, 3, 4, 3, 6, 5])
    eq(eng.still_gates, [0, 0, 57, 16, 19, 6, 6, 8, 4])
    eq(parser.rejected, 0)


def test_ld2410_hilink_document_frames_through_the_driver():
    now = [0]
    sensor = LD2410Sensor(FakeUART(read_timed_hex("ld2410_hilink_doc.hex"), clock=lambda: now[0]))
    eq(sensor.read(0)[0], True, "a still target is presence")
    now[0] = 100
    eq(sensor.read(100)[0], True)
    eq(sensor.report.moving_gates[0], 60, "engineering frames keep their gate energies")


def test_vl53l1x_um2600_two_6x16_zones_chronogram():
    cfg = config(tof_roi_width=6, tof_roi_height=16, tof_front_center=FRONT_CENTER,
                 tof_back_center=BACK_CENTER)
    scene = Scene(2200, 21)
    scene.add(crossing(3000, 1.0, 1))
    scene.add(turn_back(7000, 1.0, 1, 0.15))  # returns to where it came from
    scene.add(crossing(12000, 1.0, -1))
    run = calibrated_run(scene, cfg=cfg)
    eq(run.model.mem[0x0080], (15 << 4) | 5, "ROI size register: 6 wide, 16 high")
    eq(run.until(6500), (1, 0), "first zone, both, second zone: one entry")
    eq(run.until(11500), (1, 0), "turned back: nothing")
    eq(run.until(16000), (1, 1), "second, both, first: one exit")
    ok(run.counter.door.state == 0)
