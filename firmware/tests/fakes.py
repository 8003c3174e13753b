"""Host stand-ins for machine.UART, machine.I2C and machine.Pin that replay traces."""

from softplace_fw import ld2410
from softplace_fw.drivers import vl53l1x as reg


def _u32(frame, at: int) -> int:
    return frame[at] | (frame[at + 1] << 8) | (frame[at + 2] << 16) | (frame[at + 3] << 24)


class FakeUART:
    """Replays (t_ms, bytes) chunks as the radar would send them; answers commands.

    It keeps the radar's parameters (factory: gates 8/8, 5 s, Hi-Link's thresholds) the
    way the radar does: changed by 0x0060/0x0064, reported by 0x0061.
    """

    def __init__(self, chunks=None, clock=None, acks=True, ignore_writes=False) -> None:
        self.chunks = list(chunks or [])
        self.clock = clock
        self.written = []
        self.pending = b""
        self.acks = acks
        self.ignore_writes = ignore_writes
        self.params = ld2410.Params(8, 8, [50, 50, 40, 30, 20, 15, 15, 15, 15],
                                    [0, 0, 40, 40, 30, 30, 20, 20, 20], 5)
        self.fail_reads = 0

    def read(self):
        if self.fail_reads:
            self.fail_reads -= 1
            raise OSError(5)
        now = self.clock() if self.clock is not None else None
        data = self.pending
        self.pending = b""
        while self.chunks and (now is None or self.chunks[0][0] <= now):
            data += self.chunks.pop(0)[1]
        return data or None

    def write(self, frame: bytes) -> int:
        self.written.append(frame)
        if self.acks:
            word = frame[6] | (frame[7] << 8)
            value = b""
            if word == 0xFF:
                value = b"\x01\x00\x40\x00"
            elif word == ld2410.CMD_READ_PARAMS:
                value = ld2410.params_value(self.params)
            elif not self.ignore_writes:
                self._store(word, frame)
            self.pending += ld2410.ack_frame(word, 0, value)
        return len(frame)

    def _store(self, word: int, frame: bytes) -> None:
        p = self.params
        if word == ld2410.CMD_MAX_GATES:
            p.moving_gate, p.still_gate = _u32(frame, 10), _u32(frame, 16)
            p.unmanned_s = _u32(frame, 22)
        elif word == ld2410.CMD_SENSITIVITY:
            gate, moving, still = _u32(frame, 10), _u32(frame, 16), _u32(frame, 22)
            gates = range(9) if gate == ld2410.ALL_GATES else (gate,)
            for g in gates:
                p.moving[g] = moving
                p.still[g] = still


class FakePin:
    def __init__(self, levels=None) -> None:
        self.levels = list(levels or [0])

    def value(self) -> int:
        return self.levels.pop(0) if len(self.levels) > 1 else self.levels[0]


class FakeVL53L1X:
    """Register-level replay without timing: answers by the ROI centre currently selected
    (the no-lag assumption; ``tof_model.ToFModel`` is the timing-true model).

    ``pairs`` is a list of (front_mm, back_mm); each zone reading consumes that zone's
    value from the current pair, and the pair advances once both zones were read.
    """

    def __init__(self, pairs, centers=(167, 231), model=reg.MODEL_ID) -> None:
        self.pairs = list(pairs)
        self.centers = centers
        self.regs = {reg.REG_BOOT_STATE: 1, reg.REG_GPIO_HV_MUX_CTRL: 0x01,
                     reg.REG_GPIO_TIO_HV_STATUS: 0x01, reg.REG_RANGE_STATUS: reg.RANGE_VALID}
        self.model = model
        self.ranging = False
        self.config_written = b""
        self.read_zones = [False, False]

    def writeto_mem(self, addr, mem, buf, addrsize=8):
        if mem == 0x2D:
            self.config_written = bytes(buf)
            return
        self.regs[mem] = buf[0]
        if mem == reg.REG_MODE_START:
            self.ranging = buf[0] == 0x40

    def _zone(self) -> int:
        return 0 if self.regs.get(reg.REG_ROI_CENTER, self.centers[0]) == self.centers[0] else 1

    def readfrom_mem(self, addr, mem, n, addrsize=8):
        if mem == reg.REG_MODEL_ID:
            return bytes((self.model >> 8, self.model & 0xFF))
        if mem == reg.REG_DISTANCE:
            zone = self._zone()
            pair = self.pairs[0] if self.pairs else (2000, 2000)
            mm = pair[zone]
            self.read_zones[zone] = True
            if self.read_zones[0] and self.read_zones[1]:
                self.read_zones = [False, False]
                if len(self.pairs) > 1:
                    self.pairs.pop(0)
            return bytes((mm >> 8, mm & 0xFF))
        if mem == reg.REG_GPIO_TIO_HV_STATUS:
            return bytes((0x01 if self.ranging else 0x00,))  # active high: 1 = ready
        return bytes(self.regs.get(mem + i, 0) for i in range(n))
