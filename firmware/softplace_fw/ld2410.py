"""HLK-LD2410 serial protocol: report-frame parser and configuration-command builder.

Report frame (radar -> host, 256000 baud by default)::

    F4 F3 F2 F1 | len u16 LE | type | AA | target data ... | 55 | 00 | F8 F7 F6 F5

``type`` is 0x02 (basic) or 0x01 (engineering: per-gate energies follow the basic
target data). Command and ACK frames (both directions)::

    FD FC FB FA | len u16 LE | command word u16 LE | value ... | 04 03 02 01

An ACK carries ``command | 0x0100`` and a u16 status (0 = success). The parser is
streaming: feed it whatever the UART returned; it resynchronises after noise and
counts every rejected frame. Its buffer is bounded, so a babbling line cannot
exhaust the heap.
"""

REPORT_HEADER = b"\xf4\xf3\xf2\xf1"
REPORT_FOOTER = b"\xf8\xf7\xf6\xf5"
CMD_HEADER = b"\xfd\xfc\xfb\xfa"
CMD_FOOTER = b"\x04\x03\x02\x01"

TYPE_ENGINEERING = 0x01
TYPE_BASIC = 0x02
HEAD = 0xAA
TAIL = 0x55
CHECK = 0x00

CMD_ENABLE_CONFIG = 0x00FF
CMD_END_CONFIG = 0x00FE
CMD_MAX_GATES = 0x0060
CMD_READ_PARAMS = 0x0061
CMD_ENGINEERING_ON = 0x0062
CMD_ENGINEERING_OFF = 0x0063
CMD_SENSITIVITY = 0x0064
ALL_GATES = 0xFFFF
MAX_GATE = 8

STATE_NONE = 0
STATE_MOVING = 1
STATE_STILL = 2
STATE_BOTH = 3

_MAX_PAYLOAD = 64  # the longest real frame (engineering) carries 35 bytes
_MAX_BUFFER = 256


def _u16(data, at: int) -> int:
    return data[at] | (data[at + 1] << 8)


def _le16(value: int) -> bytes:
    return bytes((value & 0xFF, (value >> 8) & 0xFF))


def _le32(value: int) -> bytes:
    return bytes((value & 0xFF, (value >> 8) & 0xFF, (value >> 16) & 0xFF, (value >> 24) & 0xFF))


class Report:
    """One decoded target report. Distances in cm, energies 0..100."""

    def __init__(
        self, state: int, moving_cm: int, moving_energy: int, still_cm: int,
        still_energy: int, detect_cm: int, moving_gates=None, still_gates=None,
    ) -> None:
        self.state = state
        self.moving_cm = moving_cm
        self.moving_energy = moving_energy
        self.still_cm = still_cm
        self.still_energy = still_energy
        self.detect_cm = detect_cm
        self.moving_gates = moving_gates  # engineering mode: energy per gate
        self.still_gates = still_gates

    @property
    def presence(self) -> bool:
        return self.state != STATE_NONE

    def __repr__(self) -> str:
        return "Report(state={}, moving={}cm/{}, still={}cm/{}, detect={}cm)".format(
            self.state, self.moving_cm, self.moving_energy, self.still_cm,
            self.still_energy, self.detect_cm)


class Ack:
    """The radar's answer to a command frame."""

    def __init__(self, command: int, status: int, value: bytes) -> None:
        self.command = command
        self.status = status
        self.value = value

    @property
    def ok(self) -> bool:
        return self.status == 0

    def __repr__(self) -> str:
        return "Ack(command=0x{:04x}, status={})".format(self.command, self.status)


def decode_report(payload) -> Report:
    """Decode a report payload (the bytes between length and footer); ValueError if bad."""
    n = len(payload)
    if n < 13:
        raise ValueError("report too short: {} bytes".format(n))
    kind = payload[0]
    if kind not in (TYPE_BASIC, TYPE_ENGINEERING):
        raise ValueError("unknown data type 0x{:02x}".format(kind))
    if payload[1] != HEAD:
        raise ValueError("bad head byte 0x{:02x}".format(payload[1]))
    if payload[n - 2] != TAIL or payload[n - 1] != CHECK:
        raise ValueError("bad tail/check bytes")
    state = payload[2]
    if state > STATE_BOTH:
        raise ValueError("bad target state {}".format(state))
    moving_energy = payload[5]
    still_energy = payload[8]
    if moving_energy > 100 or still_energy > 100:
        raise ValueError("energy out of range")
    report = Report(state, _u16(payload, 3), moving_energy, _u16(payload, 6), still_energy,
                    _u16(payload, 9))
    if kind == TYPE_ENGINEERING:
        _decode_gates(payload, report)
    elif n != 13:
        raise ValueError("basic report of {} bytes".format(n))
    return report


def _decode_gates(payload, report: Report) -> None:
    max_move, max_still = payload[11], payload[12]
    if max_move > MAX_GATE or max_still > MAX_GATE:
        raise ValueError("gate count out of range")
    start = 13
    end = start + max_move + 1 + max_still + 1
    if end > len(payload) - 2:
        raise ValueError("engineering report truncated")
    report.moving_gates = list(payload[start:start + max_move + 1])
    report.still_gates = list(payload[start + max_move + 1:end])


class FrameParser:
    """Streaming parser for report and ACK frames; ``feed`` returns what completed."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.rejected = 0
        self.reports = 0

    def feed(self, data) -> list:
        if data:
            self._buf.extend(data)
        if len(self._buf) > _MAX_BUFFER:  # keep the newest bytes only
            self._buf = self._buf[len(self._buf) - _MAX_BUFFER:]
            self.rejected += 1
        out = []  # type: list[Report | Ack]
        while True:
            item = self._next()
            if item is None:
                return out
            out.append(item)

    def _next(self):
        while True:
            buf = self._buf
            start = _find_header(buf)
            if start < 0:
                # keep a possible partial header at the end
                keep = 3 if len(buf) >= 3 else len(buf)
                self._buf = buf[len(buf) - keep:]
                return None
            if start:
                self._buf = buf[start:]
                buf = self._buf
            if len(buf) < 6:
                return None
            length = _u16(buf, 4)
            if length > _MAX_PAYLOAD or length < 2:
                self._reject()
                continue
            total = 4 + 2 + length + 4
            if len(buf) < total:
                return None
            is_report = buf[0] == 0xF4
            footer = REPORT_FOOTER if is_report else CMD_FOOTER
            if bytes(buf[total - 4:total]) != footer:
                self._reject()
                continue
            payload = bytes(buf[6:6 + length])
            self._buf = buf[total:]
            try:
                if is_report:
                    report = decode_report(payload)
                    self.reports += 1
                    return report
                return _decode_ack(payload)
            except ValueError:
                self.rejected += 1

    def _reject(self) -> None:
        self.rejected += 1
        self._buf = self._buf[1:]


def _find_header(buf) -> int:
    a = buf.find(REPORT_HEADER)
    b = buf.find(CMD_HEADER)
    if a < 0:
        return b
    if b < 0:
        return a
    return a if a < b else b


def _decode_ack(payload: bytes) -> Ack:
    if len(payload) < 4:
        raise ValueError("ack too short")
    word = _u16(payload, 0)
    if not word & 0x0100:
        raise ValueError("not an ack: 0x{:04x}".format(word))
    return Ack(word & 0xFEFF, _u16(payload, 2), payload[4:])


def command(word: int, value: bytes = b"") -> bytes:
    """A command frame for ``word`` with its little-endian ``value`` bytes."""
    return CMD_HEADER + _le16(2 + len(value)) + _le16(word) + value + CMD_FOOTER


def enable_config() -> bytes:
    return command(CMD_ENABLE_CONFIG, _le16(1))


def end_config() -> bytes:
    return command(CMD_END_CONFIG)


def max_gates(moving_gate: int, still_gate: int, unmanned_s: int) -> bytes:
    """Farthest moving/still gate (2..8, 0.75 m each) and the radar's own no-one delay."""
    for name, gate in (("moving_gate", moving_gate), ("still_gate", still_gate)):
        if not 2 <= gate <= MAX_GATE:
            raise ValueError("{} must be 2..8, got {}".format(name, gate))
    if not 0 <= unmanned_s <= 65535:
        raise ValueError("unmanned_s must be 0..65535")
    return command(CMD_MAX_GATES, _le16(0) + _le32(moving_gate) + _le16(1) + _le32(still_gate)
                   + _le16(2) + _le32(unmanned_s))


def gate_sensitivity(gate: int, moving: int, still: int) -> bytes:
    """Energy thresholds (0..100) for one gate, or every gate with ``ALL_GATES``."""
    if gate != ALL_GATES and not 0 <= gate <= MAX_GATE:
        raise ValueError("gate must be 0..8 or ALL_GATES, got {}".format(gate))
    for name, value in (("moving", moving), ("still", still)):
        if not 0 <= value <= 100:
            raise ValueError("{} sensitivity must be 0..100, got {}".format(name, value))
    return command(CMD_SENSITIVITY, _le16(0) + _le32(gate) + _le16(1) + _le32(moving)
                   + _le16(2) + _le32(still))


def read_params() -> bytes:
    return command(CMD_READ_PARAMS)


class Params:
    """The radar's stored configuration, as its read-parameters ACK reports it."""

    def __init__(self, moving_gate: int, still_gate: int, moving, still, unmanned_s: int) -> None:
        self.moving_gate = moving_gate
        self.still_gate = still_gate
        self.moving = list(moving)  # energy threshold per gate 0..8
        self.still = list(still)
        self.unmanned_s = unmanned_s

    def __repr__(self) -> str:
        return "Params(gates={}/{}, moving={}, still={}, unmanned={}s)".format(
            self.moving_gate, self.still_gate, self.moving, self.still, self.unmanned_s)


def decode_params(value: bytes) -> Params:
    """The value of a CMD_READ_PARAMS ACK (after its status word); ValueError if bad.

    0xAA, top gate N (8), max moving gate, max still gate, N+1 moving thresholds,
    N+1 still thresholds, no-one duration u16 LE.
    """
    if len(value) < 4 or value[0] != HEAD:
        raise ValueError("bad parameter block")
    top = value[1]
    end = 4 + 2 * (top + 1)
    if top != MAX_GATE or len(value) < end + 2:
        raise ValueError("parameter block of {} bytes for {} gates".format(len(value), top))
    return Params(value[2], value[3], value[4:4 + top + 1], value[4 + top + 1:end],
                  _u16(value, end))


def params_value(params: Params) -> bytes:
    """Encode a parameter block as the radar sends it (the test radar uses this)."""
    return (bytes((HEAD, MAX_GATE, params.moving_gate, params.still_gate)) + bytes(params.moving)
            + bytes(params.still) + _le16(params.unmanned_s))


def engineering(on: bool) -> bytes:
    return command(CMD_ENGINEERING_ON if on else CMD_ENGINEERING_OFF)


def report_frame(report: Report) -> bytes:
    """Encode a report as the radar would (used to synthesise traces and in tests)."""
    body = bytes((report.state,)) + _le16(report.moving_cm) + bytes((report.moving_energy,)) \
        + _le16(report.still_cm) + bytes((report.still_energy,)) + _le16(report.detect_cm)
    if report.moving_gates is not None and report.still_gates is not None:
        body += bytes((len(report.moving_gates) - 1, len(report.still_gates) - 1))
        body += bytes(report.moving_gates) + bytes(report.still_gates)
        body += b"\x00\x00"  # light level and OUT pin: present on real frames, unused here
        kind = TYPE_ENGINEERING
    else:
        kind = TYPE_BASIC
    payload = bytes((kind, HEAD)) + body + bytes((TAIL, CHECK))
    return REPORT_HEADER + _le16(len(payload)) + payload + REPORT_FOOTER


def ack_frame(word: int, status: int = 0, value: bytes = b"") -> bytes:
    """Encode an ACK as the radar would (tests and the fake UART use this)."""
    return command(word | 0x0100, _le16(status) + value)
