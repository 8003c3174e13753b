"""VL53L1X time-of-flight sensor over I2C, and the two-zone doorway counter built on it.

Register sequence after ST's ultra-lite driver (ULD): load the 91-byte default
configuration at 0x2D, run one ranging to settle the VHV loop, set distance mode,
timing budget and inter-measurement period, then range one zone at a time.

ROI timing (ST's behaviour): the sensor latches the region of interest when a ranging
*starts*; a ROI written while a ranging runs applies only to the next one. Writing the
next zone's ROI right after reading a result therefore files every later result under
the other zone, and every crossing is counted backwards. Like Roode, the counter stops
ranging, writes the ROI and starts again for every zone reading, so a result always
belongs to the ROI that was written before its start.

Timing from the mounting height (the empty-doorway baseline learnt at calibration),
after Roode's table but with 33 ms kept up to 2.7 m: at 50 ms per zone reading a walker
at 2 m/s can cross a zone between two readings of it (see firmware/README.md).
"""

from ..doorway import Doorway
from ..presence import UNKNOWN

ADDRESS = 0x29
MODEL_ID = 0xEACC
REG_SOFT_RESET = 0x0000
REG_VHV_TIMEOUT = 0x0008
REG_VHV_START = 0x000B
REG_GPIO_HV_MUX_CTRL = 0x0030
REG_GPIO_TIO_HV_STATUS = 0x0031
REG_PHASECAL_TIMEOUT = 0x004B
REG_TIMEOUT_A = 0x005E
REG_VCSEL_PERIOD_A = 0x0060
REG_TIMEOUT_B = 0x0061
REG_VCSEL_PERIOD_B = 0x0063
REG_VALID_PHASE_HIGH = 0x0069
REG_INTERMEASUREMENT = 0x006C
REG_WOI_SD0 = 0x0078
REG_INITIAL_PHASE_SD0 = 0x007A
REG_ROI_CENTER = 0x007F
REG_ROI_SIZE = 0x0080
REG_INTERRUPT_CLEAR = 0x0086
REG_MODE_START = 0x0087
REG_RANGE_STATUS = 0x0089
REG_DISTANCE = 0x0096
REG_OSC_CALIBRATE = 0x00DE
REG_BOOT_STATE = 0x00E5
REG_MODEL_ID = 0x010F
RANGE_VALID = 9

SHORT = 1  # distance modes: short reaches about 1.3 m, long about 4 m
LONG = 2
# ULD's distance-mode blocks: phasecal timeout, VCSEL periods A/B, valid phase high,
# WOI SD0, initial phase SD0
MODE_REGISTERS = {
    SHORT: (0x14, 0x07, 0x05, 0x38, 0x0705, 0x0606),
    LONG: (0x0A, 0x0F, 0x0D, 0xB8, 0x0F0D, 0x0E0E),
}
# ULD's timing-budget macro-period timeouts (A, B) by distance mode and budget (ms)
BUDGETS = {
    SHORT: {20: (0x0051, 0x006E), 33: (0x00D6, 0x006E), 50: (0x01AE, 0x01E8),
            100: (0x02E1, 0x0388)},
    LONG: {20: (0x001E, 0x0022), 33: (0x0060, 0x006E), 50: (0x00AD, 0x00C6),
           100: (0x01CC, 0x01EA)},
}


def timing_for(baseline_mm: int) -> tuple:
    """(distance mode, timing budget ms, inter-measurement ms) for a floor this far away."""
    if baseline_mm <= 1300:
        return SHORT, 20, 20
    if baseline_mm <= 2700:
        return LONG, 33, 33
    if baseline_mm <= 3400:
        return LONG, 50, 50
    return LONG, 100, 100

DEFAULT_CONFIGURATION = bytes((
    0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x02, 0x08, 0x00, 0x08, 0x10, 0x01, 0x01, 0x00, 0x00,
    0x00, 0x00, 0xFF, 0x00, 0x0F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20, 0x0B, 0x00, 0x00, 0x02,
    0x0A, 0x21, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0xC8, 0x00, 0x00, 0x38, 0xFF, 0x01,
    0x00, 0x08, 0x00, 0x00, 0x01, 0xDB, 0x0F, 0x01, 0xF1, 0x0D, 0x01, 0x68, 0x00, 0x80, 0x08,
    0xB8, 0x00, 0x00, 0x00, 0x00, 0x0F, 0x89, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
    0x0F, 0x0D, 0x0E, 0x0E, 0x00, 0x00, 0x02, 0xC7, 0xFF, 0x9B, 0x00, 0x00, 0x00, 0x01, 0x00,
    0x00,
))


class VL53L1X:
    """Just enough of the ULD for zone ranging."""

    def __init__(self, i2c, address: int = ADDRESS) -> None:
        self.i2c = i2c
        self.address = address

    def _write(self, reg: int, data: bytes) -> None:
        self.i2c.writeto_mem(self.address, reg, data, addrsize=16)

    def _read(self, reg: int, n: int) -> bytes:
        return self.i2c.readfrom_mem(self.address, reg, n, addrsize=16)

    def write_u8(self, reg: int, value: int) -> None:
        self._write(reg, bytes((value & 0xFF,)))

    def read_u8(self, reg: int) -> int:
        return self._read(reg, 1)[0]

    def read_u16(self, reg: int) -> int:
        data = self._read(reg, 2)
        return (data[0] << 8) | data[1]

    def write_u16(self, reg: int, value: int) -> None:
        self._write(reg, bytes(((value >> 8) & 0xFF, value & 0xFF)))

    def write_u32(self, reg: int, value: int) -> None:
        self._write(reg, bytes(((value >> 24) & 0xFF, (value >> 16) & 0xFF,
                                (value >> 8) & 0xFF, value & 0xFF)))

    def set_timing(self, mode: int, budget_ms: int, period_ms: int) -> None:
        """Distance mode, timing budget and inter-measurement period (ranging stopped).

        ST requires the period to be at least the budget; unsupported pairs raise
        ValueError before anything is written.
        """
        if mode not in MODE_REGISTERS or budget_ms not in BUDGETS[mode]:
            raise ValueError("unsupported timing: mode {} budget {} ms".format(mode, budget_ms))
        if period_ms < budget_ms:
            raise ValueError("inter-measurement period below the timing budget")
        phasecal, vcsel_a, vcsel_b, phase_high, woi, initial = MODE_REGISTERS[mode]
        self.write_u8(REG_PHASECAL_TIMEOUT, phasecal)
        self.write_u8(REG_VCSEL_PERIOD_A, vcsel_a)
        self.write_u8(REG_VCSEL_PERIOD_B, vcsel_b)
        self.write_u8(REG_VALID_PHASE_HIGH, phase_high)
        self.write_u16(REG_WOI_SD0, woi)
        self.write_u16(REG_INITIAL_PHASE_SD0, initial)
        timeout_a, timeout_b = BUDGETS[mode][budget_ms]
        self.write_u16(REG_TIMEOUT_A, timeout_a)
        self.write_u16(REG_TIMEOUT_B, timeout_b)
        clock_pll = self.read_u16(REG_OSC_CALIBRATE) & 0x3FF
        self.write_u32(REG_INTERMEASUREMENT, clock_pll * period_ms * 1075 // 1000)

    def init(self, sleep_ms) -> None:
        """Reset, check the model id, load defaults, settle. Raises OSError if absent."""
        self.write_u8(REG_SOFT_RESET, 0x00)
        sleep_ms(1)
        self.write_u8(REG_SOFT_RESET, 0x01)
        for _ in range(100):
            if self.read_u8(REG_BOOT_STATE) & 0x01:
                break
            sleep_ms(2)
        else:
            raise OSError("vl53l1x did not boot")
        model = self.read_u16(REG_MODEL_ID)
        if model != MODEL_ID:
            raise OSError("not a VL53L1X: model id 0x{:04x}".format(model))
        self._write(0x2D, DEFAULT_CONFIGURATION)
        self.start()
        for _ in range(100):
            if self.data_ready():
                break
            sleep_ms(2)
        self.clear_interrupt()
        self.stop()
        self.write_u8(REG_VHV_TIMEOUT, 0x09)
        self.write_u8(REG_VHV_START, 0x00)

    def start(self) -> None:
        self.write_u8(REG_MODE_START, 0x40)

    def stop(self) -> None:
        self.write_u8(REG_MODE_START, 0x00)

    def data_ready(self) -> bool:
        polarity = 0 if self.read_u8(REG_GPIO_HV_MUX_CTRL) & 0x10 else 1
        return (self.read_u8(REG_GPIO_TIO_HV_STATUS) & 0x01) == polarity

    def clear_interrupt(self) -> None:
        self.write_u8(REG_INTERRUPT_CLEAR, 0x01)

    def set_roi(self, width: int, height: int) -> None:
        self.write_u8(REG_ROI_SIZE, ((height - 1) << 4) | (width - 1))

    def set_roi_center(self, spad: int) -> None:
        self.write_u8(REG_ROI_CENTER, spad)

    def distance(self):
        """Distance in mm of the last ranging, or None if the range status is not valid."""
        status = self.read_u8(REG_RANGE_STATUS) & 0x1F
        mm = self.read_u16(REG_DISTANCE)
        return mm if status == RANGE_VALID and mm > 0 else None


FRESH_MS = 2000  # a zone reading at least this often, or the counter is failing
RETRY_FIRST_MS = 1000  # first wait before re-initialising a sensor that stopped answering
RETRY_MAX_MS = 60000
CALIBRATION_RETRY_MS = 5000  # first wait after a refused calibration; doubles each time
CALIBRATION_RETRY_MAX_MS = 300000
BUS_ERRORS_BEFORE_REINIT = 3


class DoorwayCounter:
    """Two ROI zones measured one ranging at a time, each reading fed to ``Doorway``.

    ``poll(now_ms)`` never blocks: it takes a finished ranging (if any), feeds it and
    starts the next zone's ranging. Call it every few milliseconds (``poll_ms``;
    ``main.py`` runs it in its own task); ``read(now_ms)`` polls once and returns the
    crossings since the previous ``read``. Calibration runs inside the same loop:
    ``tof_calibration_samples`` readings per zone, then thresholds, and on refusal a
    retry after 5 s, 10 s, ... up to 5 min while ranging continues. Every bus error is
    caught and counted (``bus_errors``); three in a row re-initialise the sensor, with
    the same kind of back-off if it stays absent.
    """

    kind = "vl53l1x"
    poll_ms = 5

    def __init__(self, tof: VL53L1X, cfg: dict, sleep_ms) -> None:
        self.tof = tof
        self.sleep_ms = sleep_ms
        self.door = Doorway(cfg["tof_threshold_pct"], cfg["tof_min_baseline_mm"],
                            cfg["tof_recalibrate_s"] * 1000)
        self.centers = (0, 0)
        self.roi = (0, 0)
        self.samples = 0
        self.error = None  # type: str | None
        self.bus_errors = 0
        self.timeouts = 0
        self.readings = 0
        self.timing = (LONG, 33, 33)
        self._inited = False
        self._ranging = False
        self._zone = 0
        self._retried = False
        self._started_ms = 0
        self._consecutive = 0
        self._retry_ms = None  # type: int | None  # re-init not before
        self._retry_wait = RETRY_FIRST_MS
        self._cal = None  # type: list | None  # [front samples, back samples] while calibrating
        self._cal_after = None  # type: int | None
        self._cal_wait = CALIBRATION_RETRY_MS
        self._last_ms = None  # type: int | None
        self._entered = 0
        self._left = 0
        self.apply(cfg)

    def apply(self, cfg: dict) -> list:
        """Take the ``tof_*`` options live; a change of zones or threshold recalibrates.
        Returns the errors to report (none: every option applies)."""
        centers = (cfg["tof_front_center"], cfg["tof_back_center"])
        roi = (cfg["tof_roi_width"], cfg["tof_roi_height"])
        door = self.door
        door.recalibrate_ms = cfg["tof_recalibrate_s"] * 1000
        self.samples = cfg["tof_calibration_samples"]
        changed = (self.centers != centers or self.roi != roi
                   or door.threshold_pct != cfg["tof_threshold_pct"]
                   or door.min_baseline_mm != cfg["tof_min_baseline_mm"])
        door.threshold_pct = cfg["tof_threshold_pct"]
        door.min_baseline_mm = cfg["tof_min_baseline_mm"]
        old_roi = self.roi
        self.centers = centers
        self.roi = roi
        if changed and self._inited:
            if old_roi != roi:
                self._inited = False  # the ROI size is written at (re-)initialisation
            self._begin_calibration()
        return []

    def start(self, now_ms: int):
        """Initialise the sensor and begin calibrating; None or why the sensor is absent."""
        self._init(now_ms)
        return self.error

    def _init(self, now_ms: int) -> None:
        try:
            self._ranging = False
            self.tof.init(self.sleep_ms)
            self.tof.set_timing(self.timing[0], self.timing[1], self.timing[2])
            self.tof.set_roi(self.roi[0], self.roi[1])
        except OSError as err:
            self.bus_errors += 1
            self.error = "vl53l1x: {}".format(err)
            self._retry_ms = now_ms + self._retry_wait
            self._retry_wait = min(self._retry_wait * 2, RETRY_MAX_MS)
            return
        self._inited = True
        self._retry_ms = None
        self._retry_wait = RETRY_FIRST_MS
        self._consecutive = 0
        self.error = None
        if not self.door.calibrated:
            self._begin_calibration()

    def _begin_calibration(self) -> None:
        self._cal = [[], []]
        self._cal_after = None

    @property
    def calibrating(self) -> bool:
        return self._cal is not None

    def _begin(self, now_ms: int) -> None:
        self.tof.set_roi_center(self.centers[self._zone])
        self.tof.start()
        self._started_ms = now_ms
        self._ranging = True

    def _timeout_ms(self) -> int:
        return 4 * (self.timing[1] + self.timing[2]) + 50

    def poll(self, now_ms: int) -> None:
        if not self._inited:
            if self._retry_ms is None or now_ms >= self._retry_ms:
                self._init(now_ms)
            if not self._inited:
                return
        try:
            if not self._ranging:
                self._begin(now_ms)
                return
            if not self.tof.data_ready():
                if now_ms - self._started_ms > self._timeout_ms():
                    self.timeouts += 1
                    self.tof.stop()
                    self._ranging = False
                return
            mm = self.tof.distance()
            zone = self._zone
            self.tof.clear_interrupt()
            self.tof.stop()
            self._ranging = False
            self._use(now_ms, zone, mm)
            # an invalid ranging is retried once in the same zone: losing the one
            # reading of a fast walker's front-only moment loses the crossing
            if mm is None and not self._retried:
                self._retried = True
            else:
                self._retried = False
                self._zone ^= 1
            self._begin(now_ms)
        except OSError as err:
            self._bus_error(now_ms, err)
            return
        self._consecutive = 0

    def _bus_error(self, now_ms: int, err) -> None:
        self.bus_errors += 1
        self._consecutive += 1
        self._ranging = False
        if self._consecutive >= BUS_ERRORS_BEFORE_REINIT:
            self._inited = False
            self.error = "vl53l1x: bus error ({})".format(err)
            self._retry_ms = now_ms + self._retry_wait
            self._retry_wait = min(self._retry_wait * 2, RETRY_MAX_MS)

    def _use(self, now_ms: int, zone: int, mm) -> None:
        self._last_ms = now_ms
        self.readings += 1
        if self._cal is not None:
            self._calibrating(now_ms, zone, mm)
            return
        if zone == 0:
            entered, left = self.door.update(now_ms, mm, None)
        else:
            entered, left = self.door.update(now_ms, None, mm)
        self._entered += entered
        self._left += left
        if self.door.needs_recalibration(now_ms):
            self._begin_calibration()

    def _calibrating(self, now_ms: int, zone: int, mm) -> None:
        cal = self._cal
        if cal is None or (self._cal_after is not None and now_ms < self._cal_after):
            return
        cal[zone].append(mm)
        if len(cal[0]) < self.samples or len(cal[1]) < self.samples:
            return
        error = self.door.calibrate(cal[0], cal[1])
        if error is not None:
            self.error = error
            self._cal = [[], []]
            self._cal_after = now_ms + self._cal_wait
            self._cal_wait = min(self._cal_wait * 2, CALIBRATION_RETRY_MAX_MS)
            return
        self.error = None
        self._cal = None
        self._cal_wait = CALIBRATION_RETRY_MS
        floor = min(self.door.baselines)
        timing = timing_for(floor)
        if timing != self.timing:
            self.timing = timing
            self.tof.set_timing(timing[0], timing[1], timing[2])

    def read(self, now_ms: int):
        """Poll once; (presence, entered, left) with the crossings since the last read.

        ``presence`` is None (a doorway has no presence sensing) or ``UNKNOWN`` while
        the counter is failing: no reading for ``FRESH_MS``, or not calibrated.
        """
        self.poll(now_ms)
        entered, left = self._entered, self._left
        self._entered = self._left = 0
        return (UNKNOWN if self.fault(now_ms) else None), entered, left

    def fault(self, now_ms: int):
        """None, or why the counts cannot be trusted now."""
        if not self.fresh(now_ms):
            return self.error or "vl53l1x: no reading for {} ms".format(FRESH_MS)
        if not self.door.calibrated:
            return self.error or "vl53l1x: calibrating"
        return None

    def fresh(self, now_ms: int) -> bool:
        return self._last_ms is not None and now_ms - self._last_ms <= FRESH_MS


class WithPresence:
    """A doorway counter plus a presence sensor (LD2410 or PIR) for drift correction.

    A failing doorway makes the whole reading unknown; a failing presence sensor only
    switches the drift correction off (None) while the doorway keeps counting.
    """

    def __init__(self, doorway, presence) -> None:
        self.doorway = doorway
        self.presence = presence
        self.kind = doorway.kind
        self.poll_ms = doorway.poll_ms

    def start(self, now_ms: int):
        return self.doorway.start(now_ms) or self.presence.start(now_ms)

    def apply(self, cfg: dict) -> list:
        errors = self.doorway.apply(cfg)
        apply = getattr(self.presence, "apply", None)
        return errors + (apply(cfg) if apply is not None else [])

    def poll(self, now_ms: int) -> None:
        self.doorway.poll(now_ms)

    def read(self, now_ms: int):
        door, entered, left = self.doorway.read(now_ms)
        present, _i, _o = self.presence.read(now_ms)
        if door == UNKNOWN:
            return UNKNOWN, entered, left
        return (None if present == UNKNOWN else present), entered, left

    def fault(self, now_ms: int):
        door = self.doorway.fault(now_ms)
        if door is not None:
            return door
        fault = getattr(self.presence, "fault", None)
        return fault(now_ms) if fault is not None else None

    def fresh(self, now_ms: int) -> bool:
        return self.doorway.fresh(now_ms) and self.presence.fresh(now_ms)
