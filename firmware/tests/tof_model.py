"""A timing-true register model of the VL53L1X in a doorway, for the real driver.

Timing: a ranging takes the configured timing budget plus the inter-measurement period
(read back from the registers the driver wrote, in ST's encoding) before its result is
ready; in continuous mode the next ranging starts as the previous one ends; a stop
aborts the ranging under way. ROI: with ``lag=True`` (ST's behaviour, UM2356/UM2555) a
ranging is filed under the ROI centre that was in the register when it *started*; with
``lag=False`` under the one in the register when it ends (the optimistic model the old
fake used). The driver must count right under both.

Scene: the sensor ``mount_mm`` above the floor; the walking axis x (metres) runs from
the corridor (x < 0) to the room (x > 0). At head height the front zone sees
x in [-ZONE_M, 0), the back zone [0, ZONE_M). A person is a body ``BODY_M`` long along x
whose top is ``height_mm`` above the floor; a zone reads the nearest top over it, else
the floor. Readings carry noise (sd about 15 mm) and a share of invalid rangings.
Everything is integer milliseconds and a private LCG, so it runs unchanged under
MicroPython and CPython.
"""

from softplace_fw.drivers import vl53l1x as reg

BODY_M = 0.4
ZONE_M = 0.2
CLOCK_PLL = 0x01E0
FRONT_CENTER = 167
BACK_CENTER = 231
FALLBACK_MS = 50  # timing of the power-on defaults (not one of ULD's budget pairs)
STATUS_OUT_OF_BOUNDS = 4


class Rng:
    def __init__(self, seed: int) -> None:
        self.state = (seed * 2654435761 + 1) & 0x7FFFFFFF

    def below(self, n: int) -> int:
        self.state = (self.state * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.state >> 8) % n

    def noise(self, sd: int) -> int:
        # sum of 4 uniforms in [-sd*0.87, sd*0.87]: sd about ``sd``, bounded
        span = sd * 87 // 50 + 1
        return sum(self.below(span) - span // 2 for _ in range(4)) // 2


class Clock:
    def __init__(self) -> None:
        self.now = 0

    def sleep(self, ms: int) -> None:
        self.now += ms


class Walker:
    """A person moving along x through waypoints [(t_ms, x_m), ...] (linear between)."""

    def __init__(self, waypoints, height_mm: int = 1750) -> None:
        self.waypoints = waypoints
        self.height_mm = height_mm

    def x(self, t: int):
        pts = self.waypoints
        if t <= pts[0][0]:
            return None
        for i in range(1, len(pts)):
            t1, x1 = pts[i]
            if t <= t1:
                t0, x0 = pts[i - 1]
                return x0 + (x1 - x0) * (t - t0) / (t1 - t0)
        return None  # gone


def crossing(t0: int, speed: float, direction: int, height_mm: int = 1750,
             start_m: float = 1.2) -> Walker:
    """Walk straight through: ``direction`` +1 enters (corridor -> room), -1 leaves."""
    ms = int(2 * start_m / speed * 1000)
    return Walker([(t0, -start_m * direction), (t0 + ms, start_m * direction)], height_mm)


def turn_back(t0: int, speed: float, direction: int, reach_m: float = 0.1,
              height_mm: int = 1750, start_m: float = 1.2) -> Walker:
    """Walk in until the leading edge is ``reach_m`` past the centre line, then back out."""
    far = (reach_m - BODY_M / 2) * direction
    ms = int(abs(far + start_m * direction) / speed * 1000)
    return Walker([(t0, -start_m * direction), (t0 + ms, far), (t0 + ms + 400, far),
                   (t0 + 2 * ms + 400, -start_m * direction)], height_mm)


def hesitate(t0: int, speed: float, direction: int, pause_ms: int = 1500,
             height_mm: int = 1750, start_m: float = 1.2) -> Walker:
    """Walk to the centre line, stand there, step back a little, then walk through."""
    ms = int(start_m / speed * 1000)
    d = direction
    return Walker([(t0, -start_m * d), (t0 + ms, 0.0), (t0 + ms + pause_ms, 0.0),
                   (t0 + ms + pause_ms + 300, -0.1 * d), (t0 + ms + pause_ms + 800, -0.1 * d),
                   (t0 + 2 * ms + pause_ms + 1200, start_m * d)], height_mm)


class Scene:
    def __init__(self, mount_mm: int = 2200, seed: int = 1, invalid_pct: int = 2,
                 noise_mm: int = 15) -> None:
        self.mount_mm = mount_mm
        self.walkers = []  # type: list[Walker]
        self.leaves = []  # type: list[tuple[int, int, int]]  # door leaf (t0, t1, top mm)
        self.rng = Rng(seed)
        self.invalid_pct = invalid_pct
        self.noise_mm = noise_mm

    def add(self, walker: Walker) -> None:
        self.walkers.append(walker)

    def door_leaf(self, t0: int, t1: int, top_mm: int = 1950) -> None:
        """A door leaf swinging open under the front zone (corridor side) from t0 to t1."""
        self.leaves.append((t0, t1, top_mm))

    def truth(self, zone: int, t: int) -> int:
        lo, hi = (-ZONE_M, 0.0) if zone == 0 else (0.0, ZONE_M)
        top = 0
        for w in self.walkers:
            x = w.x(t)
            if x is not None and x - BODY_M / 2 < hi and x + BODY_M / 2 > lo and w.height_mm > top:
                top = w.height_mm
        if zone == 0:
            for t0, t1, leaf in self.leaves:
                if t0 <= t < t1 and leaf > top:
                    top = leaf
        return self.mount_mm - top

    def range(self, zone, t: int):
        """(status, mm) of a ranging that ends at ``t``; zone None: neither zone's ROI."""
        if self.rng.below(100) < self.invalid_pct:
            return STATUS_OUT_OF_BOUNDS, 0
        mm = self.mount_mm if zone is None else self.truth(zone, t)
        return reg.RANGE_VALID, max(1, mm + self.rng.noise(self.noise_mm))


class ToFModel:
    """machine.I2C stand-in holding one VL53L1X's registers and ranging timeline."""

    def __init__(self, clock: Clock, scene: Scene, lag: bool = True,
                 centers=(FRONT_CENTER, BACK_CENTER)) -> None:
        self.clock = clock
        self.scene = scene
        self.lag = lag
        self.centers = centers
        self.mem = bytearray(0x0200)
        self.mem[reg.REG_BOOT_STATE] = 1
        self.mem[reg.REG_MODEL_ID] = reg.MODEL_ID >> 8
        self.mem[reg.REG_MODEL_ID + 1] = reg.MODEL_ID & 0xFF
        self.mem[reg.REG_OSC_CALIBRATE] = CLOCK_PLL >> 8
        self.mem[reg.REG_OSC_CALIBRATE + 1] = CLOCK_PLL & 0xFF
        self.running = False
        self.started = 0
        self.started_roi = 0
        self.ready = False
        self.result = (0, 0)
        self.rangings = []  # type: list[tuple[int, int, object]]  # (start, end, zone)
        self.fail_next = 0  # raise OSError on the next n accesses (bus fault injection)
        self.present = True

    def _u16(self, at: int) -> int:
        return (self.mem[at] << 8) | self.mem[at + 1]

    def timing(self) -> tuple:
        """(budget, inter-measurement) in ms, decoded from the registers."""
        mode = reg.SHORT if self.mem[reg.REG_PHASECAL_TIMEOUT] == 0x14 else reg.LONG
        pair = (self._u16(reg.REG_TIMEOUT_A), self._u16(reg.REG_TIMEOUT_B))
        budget = FALLBACK_MS
        for ms, regs in reg.BUDGETS[mode].items():
            if regs == pair:
                budget = ms
        raw = (self._u16(reg.REG_INTERMEASUREMENT) << 16) | self._u16(reg.REG_INTERMEASUREMENT + 2)
        period = raw * 1000 // (CLOCK_PLL * 1075) if raw else FALLBACK_MS
        return budget, period

    def _zone_of(self, center):
        if center == self.centers[0]:
            return 0
        if center == self.centers[1]:
            return 1
        return None

    def _advance(self) -> None:
        if not self.running:
            return
        budget, period = self.timing()
        length = budget + period
        while self.started + length <= self.clock.now:
            end = self.started + length
            center = self.started_roi if self.lag else self.mem[reg.REG_ROI_CENTER]
            zone = self._zone_of(center)
            self.result = self.scene.range(zone, end)
            self.rangings.append((self.started, end, zone))
            if len(self.rangings) > 64:
                self.rangings.pop(0)
            self.ready = True
            self.started = end
            self.started_roi = self.mem[reg.REG_ROI_CENTER]

    def _bus(self) -> None:
        if not self.present:
            raise OSError(19)  # ENODEV: nothing answers at the address
        if self.fail_next:
            self.fail_next -= 1
            raise OSError(116)  # ETIMEDOUT, what machine.I2C raises on a stuck bus

    def writeto_mem(self, addr, mem, buf, addrsize=8):
        self._bus()
        self._advance()
        for i, b in enumerate(buf):
            self.mem[mem + i] = b
        if mem == reg.REG_MODE_START:
            if buf[0] == 0x40 and not self.running:
                self.running = True
                self.started = self.clock.now
                self.started_roi = self.mem[reg.REG_ROI_CENTER]
            elif buf[0] == 0x00:
                self.running = False
        elif mem == reg.REG_INTERRUPT_CLEAR:
            self.ready = False

    def readfrom_mem(self, addr, mem, n, addrsize=8):
        self._bus()
        self._advance()
        if mem == reg.REG_GPIO_TIO_HV_STATUS:
            return bytes((0x01 if self.ready else 0x00,))
        if mem == reg.REG_GPIO_HV_MUX_CTRL:
            return bytes((0x01,))  # interrupt active high
        if mem == reg.REG_RANGE_STATUS:
            return bytes((self.result[0],))
        if mem == reg.REG_DISTANCE:
            mm = self.result[1]
            return bytes((mm >> 8, mm & 0xFF))
        return bytes(self.mem[mem:mem + n])


def config(**kw) -> dict:
    from softplace_fw.config import DEFAULTS

    cfg = dict(DEFAULTS)
    cfg.update(kw)
    return cfg


class Run:
    """The real DoorwayCounter polled every ``poll_ms`` against a scene; counts over time."""

    def __init__(self, scene: Scene, lag: bool = True, poll_ms: int = 5, cfg=None,
                 counter_cls=None) -> None:
        from softplace_fw.drivers.vl53l1x import VL53L1X, DoorwayCounter

        self.clock = Clock()
        self.model = ToFModel(self.clock, scene, lag)
        cls = DoorwayCounter if counter_cls is None else counter_cls
        self.counter = cls(VL53L1X(self.model), cfg or config(), self.clock.sleep)
        self.poll_ms = poll_ms
        self.entered = 0
        self.left = 0
        self.error = self.counter.start(self.clock.now)

    def until(self, t_ms: int) -> tuple:
        counter = self.counter
        clock = self.clock
        while clock.now < t_ms:
            _p, e, o = counter.read(clock.now)
            self.entered += e
            self.left += o
            clock.now += self.poll_ms
        return self.entered, self.left


def calibrated_run(scene: Scene, lag: bool = True, cfg=None) -> Run:
    run = Run(scene, lag, cfg=cfg)
    run.until(3000)
    if not run.counter.door.calibrated:
        raise AssertionError("not calibrated after 3 s: {}".format(run.counter.error))
    return run


def detection(speed: float, lag: bool, n: int, seed: int = 1, gap_ms: int = 3000,
              mount_mm: int = 2200) -> tuple:
    """n single crossings each way at ``speed``; (right, wrong, missed) over 2n."""
    scene = Scene(mount_mm, seed)
    rng = Rng(seed + 100)
    t = 3000
    plan = []
    for i in range(2 * n):
        direction = 1 if i % 2 == 0 else -1
        w = crossing(t + rng.below(97), speed, direction, 1600 + rng.below(300))
        scene.add(w)
        end = w.waypoints[-1][0]
        plan.append((direction, end + 400))
        t = end + gap_ms
    run = calibrated_run(scene, lag)
    right = wrong = missed = 0
    for direction, until in plan:
        before = (run.entered, run.left)
        after = run.until(until)
        d_in, d_out = after[0] - before[0], after[1] - before[1]
        if (d_in, d_out) == ((1, 0) if direction > 0 else (0, 1)):
            right += 1
        elif d_in or d_out:
            wrong += 1
        else:
            missed += 1
    return right, wrong, missed


def pair_counted(spacing_m: float, speed: float, lag: bool = True, seed: int = 1) -> int:
    """Two people entering one behind the other, ``spacing_m`` centre to centre; entries."""
    scene = Scene(2200, seed)
    lead = crossing(3000, speed, 1, 1750)
    delay = int(spacing_m / speed * 1000)
    scene.add(lead)
    scene.add(crossing(3000 + delay, speed, 1, 1700))
    run = calibrated_run(scene, lag)
    entered, left = run.until(3000 + delay + lead.waypoints[-1][0] - 3000 + 500)
    return entered if left == 0 else -1


def tailgating_limit(speed: float, lag: bool = True) -> float:
    """Smallest centre-to-centre spacing (m, 0.05 steps) still counted as two entries."""
    spacing = 0.4
    while spacing < 3.0:
        if all(pair_counted(spacing, speed, lag, seed) == 2 for seed in (1, 2, 3)):
            return spacing
        spacing = int(spacing * 100 + 5.5) / 100
    return spacing
