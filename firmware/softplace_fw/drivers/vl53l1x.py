"""VL53L1X time-of-flight sensor over I2C, and the two-zone doorway counter built on it.

Register sequence after ST's ultra-lite driver (ULD): load the 91-byte default
configuration at 0x2D, run one ranging to settle the VHV loop, then range continuously
while switching the region of interest (ROI) centre between the two zones.
"""

from ..doorway import Doorway

ADDRESS = 0x29
MODEL_ID = 0xEACC
REG_SOFT_RESET = 0x0000
REG_VHV_TIMEOUT = 0x0008
REG_VHV_START = 0x000B
REG_GPIO_HV_MUX_CTRL = 0x0030
REG_GPIO_TIO_HV_STATUS = 0x0031
REG_ROI_CENTER = 0x007F
REG_ROI_SIZE = 0x0080
REG_INTERRUPT_CLEAR = 0x0086
REG_MODE_START = 0x0087
REG_RANGE_STATUS = 0x0089
REG_DISTANCE = 0x0096
REG_BOOT_STATE = 0x00E5
REG_MODEL_ID = 0x010F
RANGE_VALID = 9

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


class DoorwayCounter:
    """Two ROI zones measured alternately, fed to the ``Doorway`` state machine."""

    kind = "vl53l1x"

    def __init__(self, tof: VL53L1X, cfg: dict, sleep_ms) -> None:
        self.tof = tof
        self.sleep_ms = sleep_ms
        self.centers = (cfg["tof_front_center"], cfg["tof_back_center"])
        self.roi = (cfg["tof_roi_width"], cfg["tof_roi_height"])
        self.samples = cfg["tof_calibration_samples"]
        self.door = Doorway(cfg["tof_threshold_pct"], cfg["tof_min_baseline_mm"],
                            cfg["tof_recalibrate_s"] * 1000)
        self.error = None  # type: str | None
        self._zone = 0
        self._pending = [None, None]  # type: list[int | None]
        self._last_ms = None  # type: int | None

    def start(self, now_ms: int):
        try:
            self.tof.init(self.sleep_ms)
            self.tof.set_roi(self.roi[0], self.roi[1])
            self.tof.set_roi_center(self.centers[0])
            self.tof.start()
        except OSError as err:
            self.error = "vl53l1x: {}".format(err)
            return self.error
        return self.calibrate(now_ms)

    def _measure_pair(self):
        pair = [None, None]
        for zone in (0, 1):
            self.tof.set_roi_center(self.centers[zone])
            self.tof.clear_interrupt()
            for _ in range(50):
                if self.tof.data_ready():
                    pair[zone] = self.tof.distance()
                    break
                self.sleep_ms(5)
        self.tof.clear_interrupt()
        return pair

    def calibrate(self, now_ms: int):
        """Learn the empty-doorway baseline of both zones; None or the reason it failed."""
        front, back = [], []
        for _ in range(self.samples):
            f, b = self._measure_pair()
            front.append(f)
            back.append(b)
        self.error = self.door.calibrate(front, back)
        self._zone = 0
        self._pending = [None, None]
        self.tof.set_roi_center(self.centers[0])
        self.tof.clear_interrupt()
        if self.error is None:
            self._last_ms = now_ms
        return self.error

    def read(self, now_ms: int):
        if not self.door.calibrated or self.door.needs_recalibration(now_ms):
            self.calibrate(now_ms)
            return None, 0, 0
        if not self.tof.data_ready():
            return None, 0, 0
        self._pending[self._zone] = self.tof.distance()
        self._zone ^= 1
        self.tof.set_roi_center(self.centers[self._zone])
        self.tof.clear_interrupt()
        self._last_ms = now_ms
        if self._zone:  # only the front zone has been measured in this round
            return None, 0, 0
        entered, left = self.door.update(now_ms, self._pending[0], self._pending[1])
        return None, entered, left

    def fresh(self, now_ms: int) -> bool:
        return self._last_ms is not None and now_ms - self._last_ms <= 2000


class WithPresence:
    """A doorway counter plus a presence sensor (LD2410 or PIR) for drift correction."""

    def __init__(self, doorway, presence) -> None:
        self.doorway = doorway
        self.presence = presence
        self.kind = doorway.kind

    def start(self, now_ms: int):
        return self.doorway.start(now_ms) or self.presence.start(now_ms)

    def read(self, now_ms: int):
        _none, entered, left = self.doorway.read(now_ms)
        present, _i, _o = self.presence.read(now_ms)
        return present, entered, left

    def fresh(self, now_ms: int) -> bool:
        return self.doorway.fresh(now_ms) and self.presence.fresh(now_ms)
