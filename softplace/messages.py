"""Wire contracts: every MQTT payload SoftPlace sends or accepts, defined once.

All messages are JSON objects carrying ``"v": 1``. Models are frozen and refuse
unknown fields, so a firmware change that adds a field fails loudly here (and in
``tests/fixtures/``) instead of being dropped silently.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from typing import Annotated, Any, Final, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from softplace.errors import MessageError

SCHEMA_VERSION = 1
DEAD_LETTER_KEEP_BYTES = 2048
# Checked before parsing: every message we define is a flat object of well under 4 KB
MAX_PAYLOAD_BYTES = 16 * 1024
MAX_NESTING = 8
MAX_INT_DIGITS = 20  # a longer JSON integer is refused before Python converts it
# what SQLite (signed 64-bit) and InfluxDB (int64 fields) can hold
INT64_MAX = 2**63 - 1
# boot and seq: exact even in a double (JavaScript dashboards), far above any device's life
COUNTER_MAX = 2**53 - 1
UNIX_S_MAX = 253_402_300_799  # 9999-12-31: a ts above cannot become milliseconds anywhere
SensorKind = Literal["ld2410", "vl53l1x", "pir", "virtual"]
DeviceId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
M = TypeVar("M", bound="_Message")
UnixSeconds = Annotated[
    float, Field(ge=0, le=UNIX_S_MAX, description="Unix time in seconds (UTC)")
]
Int64 = Annotated[int, Field(ge=-INT64_MAX, le=INT64_MAX)]
Counter = Annotated[int, Field(ge=0, le=COUNTER_MAX)]


class _Message(BaseModel):
    # strict: "3" is not 3, "true" is not true, true is not 1
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=True)

    v: Literal[1] = 1

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class DeviceReading(_Message):
    """What a sensor publishes on ``softplace/v1/<site>/dev/<device>/reading``.

    ``(device, boot, seq)`` identifies a reading, so a redelivered one is recognised.
    """

    device: DeviceId
    boot: Counter = Field(description="persisted boot counter")
    seq: Counter = Field(description="sequence number, restarts at 0 on each boot")
    ts: UnixSeconds
    synced: bool = Field(description="whether the clock was NTP-synced when ts was taken")
    count: Int64 = Field(description="people in the watched space (0 or 1 for presence-only)")
    sensor: SensorKind
    battery_pct: float | None = Field(default=None, ge=0, le=100)
    rssi_dbm: int | None = Field(default=None, ge=-127, le=0)

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.device, self.boot, self.seq)


# the device re-sends its unacknowledged readings when no DeviceAck covered the oldest one
# it sent for this long (and after every reconnect)
ACK_RESEND_S = 30.0


class DeviceAck(_Message):
    """Gateway -> device on ``.../dev/<device>/ack`` (QoS 1, never retained): every reading
    of the device with ``(boot, seq) <= (this boot, this seq)``, compared as a pair, that
    reached the gateway is durably in its outbox or dead-lettered; the device may forget it.
    Published after the outbox commit, at most one per device per committed batch."""

    boot: Counter
    seq: Counter

    @property
    def key(self) -> tuple[int, int]:
        return (self.boot, self.seq)


class DeviceStatus(_Message):
    """Retained on ``.../dev/<device>/status``; the last will says ``offline``."""

    state: Literal["online", "offline"]
    device: DeviceId | None = None
    ts: UnixSeconds | None = None
    reset_cause: str | None = Field(default=None, max_length=32)
    fw: str | None = Field(default=None, max_length=32)
    error: str | None = Field(default=None, max_length=200, description="e.g. a refused config")


class RoomReading(_Message):
    """Gateway -> ingest on ``softplace/v1/<site>/room/<room>``: no device identity."""

    site: Identifier
    room: Identifier
    ts: UnixSeconds
    count: int = Field(ge=0, le=INT64_MAX)
    sources: int = Field(ge=1, le=INT64_MAX, description="how many fresh sensors this count "
                         "combines")


class SensorHealth(_Message):
    """Gateway -> ingest on ``softplace/v1/<site>/health/<device>``: never carries a count."""

    site: Identifier
    device: DeviceId
    room: Identifier | None = None
    ts: UnixSeconds
    online: bool
    last_seen: UnixSeconds | None = None
    battery_pct: float | None = Field(default=None, ge=0, le=100)
    rssi_dbm: int | None = Field(default=None, ge=-127, le=0)


class GatewayStatus(_Message):
    """Gateway -> ingest on ``softplace/v1/<site>/gateway``, once a minute with the sensor
    health (``gateway.health``): the gateway's own state, never a count or a device."""

    site: Identifier
    ts: UnixSeconds
    backlog_s: float = Field(ge=0, le=UNIX_S_MAX, description="how long the oldest status "
                             "still in the outbox has waited, in whole health periods; 0 "
                             "while it drains")
    upstream: bool = Field(description="the upstream broker was connected")


INTERNAL_ERROR: Final = "internal_error"
DeadLetterReason = Literal[
    "malformed_json",
    "invalid_payload",
    "unknown_schema_version",
    "unknown_device",
    "device_topic_mismatch",
    "implausible_count",
    "timestamp_in_future",
    "timestamp_too_old",
    "duplicate",
    "unknown_topic",
    "internal_error",  # handling raised: a bug; the detail names the exception type
]


class DeadLetter(_Message):
    """Rejected input, kept with its reason on ``softplace/v1/<site>/deadletter``."""

    site: Identifier
    topic: str = Field(max_length=256)
    payload_b64: str = Field(
        max_length=4 * DEAD_LETTER_KEEP_BYTES // 3 + 4,
        description=f"the original payload, base64; only its first {DEAD_LETTER_KEEP_BYTES} "
        "bytes when longer, so a junk message cannot outgrow the broker's packet limit",
    )
    payload_bytes: int = Field(ge=0, le=INT64_MAX, description="length of the original payload")
    payload_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    reason: DeadLetterReason
    detail: str = Field(max_length=500)
    received_at: UnixSeconds

    @classmethod
    def of(
        cls, *, site: str, topic: str, payload: bytes, reason: DeadLetterReason,
        detail: str, received_at: float,
    ) -> DeadLetter:
        return cls(
            site=site, topic=topic[:256],
            payload_b64=base64.b64encode(payload[:DEAD_LETTER_KEEP_BYTES]).decode(),
            payload_bytes=len(payload), payload_sha256=hashlib.sha256(payload).hexdigest(),
            reason=reason, detail=detail[:500], received_at=received_at,
        )

    def without_payload(self) -> DeadLetter:
        """The same letter with the payload left out (its length and hash stay)."""
        return self.model_copy(update={"payload_b64": ""})

    @property
    def payload(self) -> bytes:
        """The original payload (its first DEAD_LETTER_KEEP_BYTES bytes when longer)."""
        return base64.b64decode(self.payload_b64)


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MessageError("malformed_json", f"duplicate key {key!r}")
            seen.add(key)
    return result


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise MessageError("malformed_json", f"integer of {len(text)} characters")
    return int(text)


def _refuse_constant(name: str) -> Any:
    raise MessageError("malformed_json", f"{name} is not JSON")


# Built once (json.loads would build one per call). Integers go through _bounded_int only
# when the payload holds a run of more than MAX_INT_DIGITS digits (in a number or not):
# every shorter integer is within bounds already, and int() in C is the cheap way to it.
_DECODER = json.JSONDecoder(object_pairs_hook=_refuse_duplicate_keys,
                            parse_constant=_refuse_constant)
_BOUNDED_DECODER = json.JSONDecoder(object_pairs_hook=_refuse_duplicate_keys,
                                    parse_int=_bounded_int, parse_constant=_refuse_constant)
# a run of more than MAX_INT_DIGITS digits: every digit mapped to "0", everything else to a
# space, then one substring search (both in C: a quarter of a regex search's cost)
_DIGITS_TO_ZEROS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_RUN = b"0" * (MAX_INT_DIGITS + 1)


def _long_digit_run(payload: bytes) -> bool:
    return _LONG_RUN in payload.translate(_DIGITS_TO_ZEROS)


def nesting_depth(payload: bytes) -> int:
    """The deepest ``[``/``{`` nesting outside strings, without parsing."""
    if payload.count(b"[") + payload.count(b"{") <= MAX_NESTING:
        return MAX_NESTING  # cannot be deeper: the common case costs two scans in C
    depth = deepest = 0
    in_string = escaped = False
    for byte in payload:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def decode_json_object(payload: bytes) -> dict[str, Any]:
    """Parse a payload as one JSON object; raises MessageError("malformed_json").

    Size and nesting are checked before parsing, so no payload costs more than
    ``MAX_PAYLOAD_BYTES`` of work; duplicate keys, NaN/Infinity and integers longer than
    ``MAX_INT_DIGITS`` are refused while parsing."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MessageError("malformed_json",
                           f"payload of {len(payload)} bytes, more than {MAX_PAYLOAD_BYTES}")
    depth = nesting_depth(payload)
    if depth > MAX_NESTING:
        raise MessageError("malformed_json", f"nested {depth} deep, more than {MAX_NESTING}")
    try:
        text = payload.decode("utf-8")
        decoder = _BOUNDED_DECODER if _long_digit_run(payload) else _DECODER
        value = decoder.decode(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as err:  # JSONDecodeError too
        raise MessageError("malformed_json", f"not JSON: {err}") from err
    if not isinstance(value, dict):
        raise MessageError("malformed_json", f"expected a JSON object, got {type(value).__name__}")
    return value


def parse_message(model: type[M], payload: bytes) -> M:
    """Decode and validate; MessageError carries a dead-letter reason and a readable detail."""
    data = decode_json_object(payload)
    version = data.get("v")
    if type(version) is not int or version != SCHEMA_VERSION:  # true == 1 in Python
        raise MessageError(
            "unknown_schema_version", f"schema version {version!r}, expected {SCHEMA_VERSION}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise MessageError("invalid_payload", describe_validation_error(err)) from err


# a "v" key whose value is the integer token 1 (pydantic's JSON mode takes 1.0 for Literal[1])
_V_IS_ONE = re.compile(rb'"v"[ \t\n\r]*:[ \t\n\r]*1[ \t\n\r]*[,}]')
# the string values a valid reading holds: device and sensor (their two quotes each)
_READING_STRINGS = 2


def parse_device_reading(payload: bytes) -> DeviceReading:
    """``parse_message(DeviceReading, payload)``, in one pass for a valid reading.

    pydantic's own JSON parser validates in one go (a quarter of the cost) but is looser
    than ``decode_json_object`` in three ways, each ruled out here before its result is
    taken: it keeps the last of duplicate keys (a valid reading's keys are known fields and
    its only strings, device and sensor, cannot hold a quote, so its quotes number exactly
    two per key plus four), it reads integers of any length (the same digit-run check as
    the strict decoder), and it takes ``1.0`` or a missing ``v`` as ``v: 1``. Anything it
    refuses, or any payload in doubt, goes the strict way, so every refusal keeps its
    reason and detail."""
    if len(payload) <= MAX_PAYLOAD_BYTES and not _long_digit_run(payload):
        try:
            reading = DeviceReading.model_validate_json(payload)
        except ValidationError:
            pass
        else:
            quotes = 2 * len(reading.model_fields_set) + 2 * _READING_STRINGS
            if payload.count(b'"') == quotes and _V_IS_ONE.search(payload):
                return reading
    return parse_message(DeviceReading, payload)


_DEVICE_READINGS = TypeAdapter(list[DeviceReading])


def parse_device_readings(payloads: Sequence[bytes]) -> list[DeviceReading | None]:
    """``parse_device_reading``'s one-pass decode for a batch, in ONE pydantic call over
    the payloads joined into a JSON array: item i is the reading ``parse_device_reading``
    returns for ``payloads[i]``, or None where that payload must go through it itself (all
    of them when any payload is refused or in doubt).

    Each payload begins with ``{`` and ends with ``}``, so it is at least one element of the
    array; a payload that were several would need another that is none, or an element
    spanning two payloads, which holds a nested value or a key no reading has and is
    refused. So a valid array of as many readings as payloads is each payload's own,
    checked one by one as ``parse_device_reading`` checks it."""
    n = len(payloads)
    if n < 2 or any(len(p) > MAX_PAYLOAD_BYTES or p[:1] != b"{" or p[-1:] != b"}"
                    for p in payloads):
        return [None] * n
    joined = b"[" + b",".join(payloads) + b"]"
    if _long_digit_run(joined):  # the commas keep a run within one payload
        return [None] * n
    try:
        readings = _DEVICE_READINGS.validate_json(joined)
    except ValidationError:
        return [None] * n
    if len(readings) != n:
        return [None] * n
    return [reading if payload.count(b'"') == 2 * len(reading.model_fields_set)
            + 2 * _READING_STRINGS and _V_IS_ONE.search(payload) else None
            for reading, payload in zip(readings, payloads, strict=True)]


def describe_validation_error(err: ValidationError) -> str:
    parts = []
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "<root>"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


BatchId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


class RoomReadingBatch(_Message):
    """Gateway -> ingest on ``softplace/v1/<site>/batch``: one outbox batch in one message,
    acknowledged once by a ``BatchAck`` after ingest has stored it.

    Each list keeps the outbox order. ``prev`` holds, for rooms in ``readings``, the room
    reading the gateway sent just before this batch's first one of that room: the context
    ingest's change-only thinning (``softplace.thinning``) needs, so its decision depends on
    this message alone, whichever ingest process gets it and however often it is re-sent.
    """

    site: Identifier
    batch: BatchId = Field(description="unique per batch while the sending gateway runs")
    readings: list[RoomReading] = Field(default_factory=list)
    health: list[SensorHealth] = Field(default_factory=list)
    deadletters: list[DeadLetter] = Field(default_factory=list)
    prev: list[RoomReading] = Field(default_factory=list)
    status: list[GatewayStatus] = Field(default_factory=list)


class BatchAck(_Message):
    """Ingest -> gateway on ``softplace/v1/<site>/batch/ack``: batch ``batch`` is stored."""

    site: Identifier
    batch: BatchId
