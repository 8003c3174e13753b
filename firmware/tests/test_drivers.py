"""Drivers against replaying fakes of UART, I2C and Pin (the only host stand-ins)."""


from fakes import FakePin, FakeUART, FakeVL53L1X
from mpytest import eq, ok, read_timed_hex, read_trace
from softplace_fw import ld2410
from softplace_fw.config import DEFAULTS
from softplace_fw.drivers.ld2410 import LD2410Sensor
from softplace_fw.drivers.pir import PIRSensor
from softplace_fw.drivers.vl53l1x import (
    DEFAULT_CONFIGURATION,
    VL53L1X,
    DoorwayCounter,
    WithPresence,
)
from softplace_fw.presence import UNKNOWN


def test_ld2410_driver_replays_trace():
    now = [0]
    sensor = LD2410Sensor(FakeUART(read_timed_hex("ld2410_session.hex"), clock=lambda: now[0]))
    eq(sensor.start(0), None)
    seen = []
    for t in range(0, 70000, 250):
        now[0] = t
        presence, entered, left = sensor.read(t)
        eq((entered, left), (0, 0))
        seen.append(presence)
    ok(True in seen and False in seen)
    eq(sensor.parser.rejected, 3)


def test_ld2410_goes_stale_when_radar_silent():
    sensor = LD2410Sensor(FakeUART([(0, ld2410.report_frame(ld2410.Report(2, 0, 0, 80, 50, 80)))]))
    eq(sensor.read(0)[0], True)
    eq(sensor.read(2000)[0], True)
    eq(sensor.read(2001)[0], UNKNOWN, "no report for 2 s: unknown, not vacant")
    ok(not sensor.fresh(2001))
    ok("no report" in sensor.fault(2001))


def _words(uart):
    return [f[6] | (f[7] << 8) for f in uart.written]


def test_ld2410_configure_writes_only_what_differs_and_reads_back():
    uart = FakeUART()
    sensor = LD2410Sensor(uart, sleep_ms=lambda ms: None)
    eq(sensor.configure(DEFAULTS), None)
    words = _words(uart)
    eq(words[:2], [0x00FF, 0x0061], "enable config, then read the stored parameters")
    eq(words[-3:], [0x0061, 0x0063, 0x00FE], "read back, engineering off, end config")
    ok(ld2410.max_gates(6, 6, 5) in uart.written)
    eq(words.count(0x0064), 6, "factory thresholds differ from ESPHome's at gates 3..8")
    eq(uart.params.moving, DEFAULTS["ld2410_moving_thresholds"])
    eq(uart.params.still, DEFAULTS["ld2410_still_thresholds"])
    eq(sensor.params.still[8], 15, "read back from the radar")
    uart.written = []
    eq(sensor.configure(DEFAULTS), None)
    eq(_words(uart), [0x00FF, 0x0061, 0x0061, 0x0063, 0x00FE], "unchanged: nothing written")


def test_ld2410_configure_notices_ignored_writes():
    sensor = LD2410Sensor(FakeUART(ignore_writes=True), sleep_ms=lambda ms: None)
    err = sensor.configure(DEFAULTS)
    ok(err is not None and "read back" in err, err)


def test_ld2410_apply_live_and_engineering_energies():
    uart = FakeUART()
    sensor = LD2410Sensor(uart, sleep_ms=lambda ms: None)
    cfg = dict(DEFAULTS)
    cfg["ld2410_still_thresholds"] = [0, 0, 40, 40, 40, 40, 15, 15, 10]
    cfg["ld2410_engineering"] = True
    eq(sensor.apply(cfg), [])
    eq(uart.params.still[8], 10)
    ok(ld2410.engineering(True) in uart.written)
    ok(sensor.engineering)
    uart.chunks = [(0, ld2410.report_frame(
        ld2410.Report(3, 95, 54, 110, 37, 100, moving_gates=[60, 40, 12, 5, 3, 2, 1, 0, 0],
                      still_gates=[0, 0, 35, 20, 8, 4, 2, 1, 0])))]
    sensor.read(0)
    eq(sensor.energies()["still"][2], 35)


def test_ld2410_uart_errors_are_counted():
    uart = FakeUART([(0, ld2410.report_frame(ld2410.Report(1, 100, 50, 0, 0, 100)))])
    uart.fail_reads = 2
    sensor = LD2410Sensor(uart)
    eq(sensor.read(0)[0], UNKNOWN)
    eq(sensor.read(10)[0], UNKNOWN)
    eq(sensor.read(20)[0], True)
    eq(sensor.uart_errors, 2)


def test_ld2410_configure_reports_missing_ack():
    uart = FakeUART(acks=False)
    sensor = LD2410Sensor(uart, sleep_ms=lambda ms: None, ack_timeout_ms=60)
    err = sensor.configure(DEFAULTS)
    ok(err is not None and "no ack" in err, err)
    eq(uart.written[-1], ld2410.end_config(), "always leaves config mode")


def _tof_pairs():
    rows = [[int(x) for x in line.split(",")] for line in read_trace("tof_doorway.csv")]
    return [(r[1], r[2]) for r in rows]


def test_vl53l1x_init_loads_defaults():
    fake = FakeVL53L1X([(2000, 2000)])
    VL53L1X(fake).init(lambda ms: None)
    eq(fake.config_written, DEFAULT_CONFIGURATION)
    eq(len(DEFAULT_CONFIGURATION), 91)


def test_vl53l1x_wrong_model_is_an_error():
    counter = DoorwayCounter(VL53L1X(FakeVL53L1X([], model=0x1234)), DEFAULTS, lambda ms: None)
    err = counter.start(0)
    ok(err is not None and "model id" in err, err)


def test_doorway_counter_on_trace():
    pairs = _tof_pairs()
    counter = DoorwayCounter(VL53L1X(FakeVL53L1X(pairs)), DEFAULTS, lambda ms: None)
    eq(counter.start(0), None)
    entered = left = 0
    for i in range(2 * len(pairs) + 8):  # 20 pairs calibrate, then one zone per read
        _p, e, o = counter.read(1000 + i * 25)
        entered += e
        left += o
    eq((entered, left), (3, 2))
    ok(counter.fresh(1000 + i * 25))


def test_doorway_counter_recalibrates_when_blocked():
    cfg = dict(DEFAULTS)
    cfg["tof_recalibrate_s"] = 10
    cfg["tof_calibration_samples"] = 5
    pairs = [(2000, 2000)] * 5 + [(800, 2000)] * 400 + [(800, 2000)] * 5
    counter = DoorwayCounter(VL53L1X(FakeVL53L1X(pairs)), cfg, lambda ms: None)
    eq(counter.start(0), None)
    for t in range(0, 12000, 25):
        counter.read(t)
    eq(counter.door.calibrations, 2, "a zone blocked 10 s triggers a new baseline")
    ok(counter.door.thresholds[0] < 800)


def test_pir_and_combined():
    eq(PIRSensor(FakePin([1])).read(0), (True, 0, 0))
    eq(PIRSensor(FakePin([0])).read(0), (False, 0, 0))
    door = DoorwayCounter(VL53L1X(FakeVL53L1X([(2000, 2000)])), DEFAULTS, lambda ms: None)
    both = WithPresence(door, PIRSensor(FakePin([1])))
    eq(both.kind, "vl53l1x")
    eq(both.start(0), None)
    eq(both.read(10)[0], UNKNOWN, "the doorway is still calibrating: the count is unknown")
    for t in range(20, 2000, 20):
        both.read(t)
    ok(door.door.calibrated)
    eq(both.read(2000)[0], True)
