"""HLK-LD2410 on a UART: streaming reports, configuration with acknowledged commands.

Configuration reads the radar's stored parameters first and writes only what differs
(the radar keeps them in flash; rewriting every gate at every boot wears it and hides
a radar that silently ignores writes), then reads them back to check. Per-gate energy
thresholds default to ESPHome's ld2410 values. With ``ld2410_engineering`` the radar
sends engineering frames and ``energies()`` gives the installer the per-gate energies.
"""

from .. import ld2410 as proto
from ..presence import UNKNOWN

STALE_MS = 2000  # the radar reports about 10 times a second


class LD2410Sensor:
    kind = "ld2410"

    def __init__(self, uart, sleep_ms=None, ack_timeout_ms: int = 500) -> None:
        self.uart = uart
        self.parser = proto.FrameParser()
        self.report = None  # type: proto.Report | None
        self._sleep_ms = sleep_ms
        self._ack_timeout_ms = ack_timeout_ms
        self._last_ms = None  # type: int | None
        self.config_error = None  # type: str | None
        self.params = None  # type: proto.Params | None  # as last read back
        self.writes = 0  # parameter commands actually sent (not skipped as unchanged)
        self.engineering = False
        self.uart_errors = 0

    def start(self, now_ms: int):
        """Returns the error of the last ``configure`` (reported on the status topic)."""
        self._last_ms = None
        return self.config_error

    def _pump(self) -> list:
        try:
            data = self.uart.read()
        except OSError:
            self.uart_errors += 1
            return []
        return self.parser.feed(data) if data else []

    def read(self, now_ms: int):
        """(presence, 0, 0); presence is ``UNKNOWN`` once the radar has been silent 2 s."""
        for item in self._pump():
            if isinstance(item, proto.Report):
                self.report = item
                self._last_ms = now_ms
        if self.report is None or not self.fresh(now_ms):
            return UNKNOWN, 0, 0
        return self.report.presence, 0, 0

    def fresh(self, now_ms: int) -> bool:
        return self._last_ms is not None and now_ms - self._last_ms <= STALE_MS

    def fault(self, now_ms: int):
        if not self.fresh(now_ms):
            return "ld2410: no report for {} ms".format(STALE_MS)
        return self.config_error

    def energies(self):
        """The latest per-gate energies {"moving": [...], "still": [...]} or None."""
        rep = self.report
        if rep is None or rep.moving_gates is None:
            return None
        return {"moving": rep.moving_gates, "still": rep.still_gates}

    def _command(self, frame: bytes, word: int):
        """Send one command and wait (bounded) for its ACK; (error or None, ack)."""
        try:
            self.uart.write(frame)
        except OSError as err:
            self.uart_errors += 1
            return "ld2410 uart: {}".format(err), None
        waited = 0
        while waited <= self._ack_timeout_ms:
            for item in self._pump():
                if isinstance(item, proto.Ack) and item.command == word:
                    if item.ok:
                        return None, item
                    return "ld2410 refused 0x{:04x}".format(word), item
            if self._sleep_ms is None:
                break
            self._sleep_ms(20)
            waited += 20
        return "ld2410 no ack for 0x{:04x}".format(word), None

    def _read_params(self):
        error, ack = self._command(proto.read_params(), proto.CMD_READ_PARAMS)
        if error is not None or ack is None:
            return None
        try:
            return proto.decode_params(ack.value)
        except ValueError:
            return None

    def _steps(self, cfg: dict, have) -> list:
        moving, still = cfg["ld2410_moving_thresholds"], cfg["ld2410_still_thresholds"]
        steps = []
        if (have is None or have.moving_gate != cfg["ld2410_moving_gate"]
                or have.still_gate != cfg["ld2410_still_gate"]
                or have.unmanned_s != cfg["ld2410_unmanned_s"]):
            steps.append((proto.max_gates(cfg["ld2410_moving_gate"], cfg["ld2410_still_gate"],
                                          cfg["ld2410_unmanned_s"]), proto.CMD_MAX_GATES))
        for gate in range(proto.MAX_GATE + 1):
            if have is None or have.moving[gate] != moving[gate] or have.still[gate] != still[gate]:
                steps.append((proto.gate_sensitivity(gate, moving[gate], still[gate]),
                              proto.CMD_SENSITIVITY))
        return steps

    def configure(self, cfg: dict):
        """Gates, no-one delay, per-gate thresholds and engineering mode; None or an error."""
        error, _ack = self._command(proto.enable_config(), proto.CMD_ENABLE_CONFIG)
        if error is None:
            have = self._read_params()
            for frame, word in self._steps(cfg, have):
                self.writes += 1
                error, _ack = self._command(frame, word)
                if error is not None:
                    break
            if error is None:
                self.params = self._read_params()
                if self.params is None or self._steps(cfg, self.params):
                    error = "ld2410 parameters did not read back as written"
            if error is None:
                on = cfg["ld2410_engineering"]
                error, _ack = self._command(proto.engineering(on), proto.CMD_ENGINEERING_ON
                                            if on else proto.CMD_ENGINEERING_OFF)
                if error is None:
                    self.engineering = on
        end_error, _ack = self._command(proto.end_config(), proto.CMD_END_CONFIG)
        self.config_error = error or end_error
        return self.config_error

    def apply(self, cfg: dict) -> list:
        """Live reconfiguration; the errors to report (the radar keeps what it had)."""
        error = self.configure(cfg)
        return [] if error is None else [error]
