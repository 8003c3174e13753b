"""HLK-LD2410 on a UART: streaming reports, configuration with acknowledged commands."""

from .. import ld2410 as proto

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

    def start(self, now_ms: int):
        """Returns the error of the last ``configure`` (reported on the status topic)."""
        self._last_ms = None
        return self.config_error

    def _pump(self) -> list:
        data = self.uart.read()
        return self.parser.feed(data) if data else []

    def read(self, now_ms: int):
        for item in self._pump():
            if isinstance(item, proto.Report):
                self.report = item
                self._last_ms = now_ms
        if self.report is None or not self.fresh(now_ms):
            return None, 0, 0
        return self.report.presence, 0, 0

    def fresh(self, now_ms: int) -> bool:
        return self._last_ms is not None and now_ms - self._last_ms <= STALE_MS

    def _command(self, frame: bytes, word: int):
        """Send one command and wait (bounded) for its ACK; None or an error string."""
        self.uart.write(frame)
        waited = 0
        while waited <= self._ack_timeout_ms:
            for item in self._pump():
                if isinstance(item, proto.Ack) and item.command == word:
                    return None if item.ok else "ld2410 refused 0x{:04x}".format(word)
            if self._sleep_ms is None:
                break
            self._sleep_ms(20)
            waited += 20
        return "ld2410 no ack for 0x{:04x}".format(word)

    def configure(self, cfg: dict):
        """Gates, no-one delay and sensitivity from the device config; None or an error."""
        steps = (
            (proto.enable_config(), proto.CMD_ENABLE_CONFIG),
            (proto.max_gates(cfg["ld2410_moving_gate"], cfg["ld2410_still_gate"],
                             cfg["ld2410_unmanned_s"]), proto.CMD_MAX_GATES),
            (proto.gate_sensitivity(proto.ALL_GATES, cfg["ld2410_moving_sensitivity"],
                                    cfg["ld2410_still_sensitivity"]), proto.CMD_SENSITIVITY),
        )
        error = None
        for frame, word in steps:
            error = self._command(frame, word)
            if error is not None:
                break
        end_error = self._command(proto.end_config(), proto.CMD_END_CONFIG)
        self.config_error = error or end_error
        return self.config_error
