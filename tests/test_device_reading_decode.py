"""``parse_device_reading`` (pydantic's one-pass JSON validation, guarded) answers exactly
what the strict ``parse_message(DeviceReading, ...)`` answers, for good and bad payloads;
``parse_device_readings`` (one pass over a batch) reads only what that answer reads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from softplace.errors import MessageError
from softplace.messages import (
    DeviceReading,
    parse_device_reading,
    parse_device_readings,
    parse_message,
)
from tests.gateway.test_fuzz import messages

GOOD: dict[str, Any] = {"v": 1, "device": "dev-1", "boot": 3, "seq": 12345,
                        "ts": 1764640000.123, "synced": True, "count": 2, "sensor": "ld2410"}
BASE = json.dumps(GOOD, separators=(",", ":")).encode()[:-1]  # without its closing brace


def _answer(parse: Any, payload: bytes) -> tuple[Any, ...]:
    try:
        reading = parse(payload)
    except MessageError as err:
        return ("refused", err.reason, err.detail)
    return ("read", reading, sorted(reading.model_fields_set), reading.model_dump())


EDGES = [
    BASE + b"}",
    BASE + b',"battery_pct":87.5,"rssi_dbm":-61}',
    BASE + b',"rssi_dbm":null,"battery_pct":null}',
    b' \n\t' + BASE + b'}\r\n ',
    b"\xef\xbb\xbf" + BASE + b"}",
    b"\x0c" + BASE + b"}",
    BASE + b"}\x0c",
    BASE + b"} x",
    BASE + b",}",
    BASE + b',"count":3}',  # a duplicate key
    BASE.replace(b'"boot"', b'"bo\\u006ft"') + b"}",
    BASE.replace(b'"boot"', b'"bo\\u006ft"') + b',"boot":4}',  # a duplicate, escaped
    BASE.replace(b'"v":1', b'"v":1.0') + b"}",
    BASE.replace(b'"v":1', b'"v":true') + b"}",
    BASE.replace(b'"v":1', b'"v":2') + b"}",
    BASE.replace(b'"v":1', b'"v" : 1 ') + b"}",
    BASE.replace(b'"v":1,', b"") + b"}",
    BASE.replace(b'"v":1,', b"") + b',"v":1}',
    BASE.replace(b'"v":1,', b'"v":1e0,') + b"}",
    BASE + b',"battery_pct":NaN}',
    BASE + b',"battery_pct":-Infinity}',
    BASE + b',"battery_pct":1e400}',
    BASE + b',"battery_pct":-0.0}',
    BASE + b',"battery_pct":100000000000000000000001e-21}',
    BASE + b',"battery_pct":"50"}',
    BASE + b',"rssi_dbm":-1e0}',
    BASE + b',"rssi_dbm":-61.0}',
    BASE + b',"extra":1}',
    BASE.replace(b'"seq":12345', b'"seq":12345.0') + b"}",
    BASE.replace(b'"seq":12345', b'"seq":9007199254740992') + b"}",
    BASE.replace(b'"seq":12345', b'"seq":123456789012345678901') + b"}",
    BASE.replace(b'"count":2', b'"count":9223372036854775807') + b"}",
    BASE.replace(b'"count":2', b'"count":-0') + b"}",
    BASE.replace(b'"count":2', b'"count":02') + b"}",
    BASE.replace(b'"count":2', b'"count":2.0') + b"}",
    BASE.replace(b"true", b"1") + b"}",
    BASE.replace(b"1764640000.123", b"1764640000.") + b"}",
    BASE.replace(b"1764640000.123", b"1.764640000123E9") + b"}",
    BASE.replace(b"1764640000.123", b"1764640000123456789012e-12") + b"}",
    BASE.replace(b"1764640000.123", b"1764640000") + b"}",
    BASE.replace(b"dev-1", b"dev\\u002d1") + b"}",
    BASE.replace(b"dev-1", b"dev-1\\n") + b"}",
    BASE.replace(b"dev-1", b"dev-1\\\"") + b"}",
    BASE.replace(b"dev-1", "d\u00e9v".encode()) + b"}",
    BASE.replace(b"dev-1", b"d\xffv") + b"}",
    BASE.replace(b"ld2410", b"ld2410\\u0000") + b"}",
    BASE.replace(b"ld2410", b"\\ud800") + b"}",
    b"[" + BASE + b"}]",
    b"{" * 10 + b"}" * 10,
    b" " * 17_000 + BASE + b"}",
    b"",
    b"null",
]


@pytest.mark.parametrize("payload", EDGES)
def test_parse_device_reading_edge_case_answers_as_the_strict_path(payload: bytes) -> None:
    assert _answer(parse_device_reading, payload) == _answer(
        lambda p: parse_message(DeviceReading, p), payload)


def test_parse_device_reading_fuzz_payloads_answer_as_the_strict_path() -> None:
    payloads, good, _ = messages(2_000)
    read = 0
    for _, payload in payloads:
        fast = _answer(parse_device_reading, payload)
        assert fast == _answer(lambda p: parse_message(DeviceReading, p), payload), payload
        read += fast[0] == "read"
    assert read >= len(good)


def _batch_agrees(payloads: list[bytes]) -> int:
    """Every reading ``parse_device_readings`` gives is the one the strict path reads from
    that same payload; how many it gave."""
    given = parse_device_readings(payloads)
    assert len(given) == len(payloads)
    for reading, payload in zip(given, payloads, strict=True):
        if reading is not None:
            assert ("read", reading, sorted(reading.model_fields_set),
                    reading.model_dump()) == _answer(
                lambda p: parse_message(DeviceReading, p), payload), payload
    return sum(reading is not None for reading in given)


GOOD_PAYLOAD = BASE + b"}"
OTHER = BASE.replace(b'"seq":12345', b'"seq":12346') + b',"battery_pct":50}'


def test_parse_device_readings_reads_a_batch_of_good_readings_in_one_pass() -> None:
    assert _batch_agrees([GOOD_PAYLOAD, OTHER, GOOD_PAYLOAD]) == 3


@pytest.mark.parametrize("payload", EDGES)
def test_parse_device_readings_edge_case_in_a_batch_answers_as_the_strict_path(
    payload: bytes,
) -> None:
    _batch_agrees([GOOD_PAYLOAD, payload, OTHER])
    _batch_agrees([payload, GOOD_PAYLOAD])


@pytest.mark.parametrize("payloads", [
    [GOOD_PAYLOAD + b"," + OTHER, GOOD_PAYLOAD],  # one payload, two readings
    [GOOD_PAYLOAD + b"," + OTHER, b"{}"],
    [BASE + b',"sensor":"x}', b'{"y":1}', OTHER],  # a string open across payloads
    [BASE + b',"x":[{}', b'{"a":1}', b'{}]}'],  # an array open across payloads
    [BASE + b"}", b"{" + BASE[1:] + b"}"],
    [GOOD_PAYLOAD.replace(b"}", b""), b'{},"count":1}'],
], ids=["two-in-one", "two-in-one-empty", "open-string", "open-array", "pair", "split"])
def test_parse_device_readings_never_takes_one_payload_for_another(
    payloads: list[bytes],
) -> None:
    _batch_agrees(payloads)


def test_parse_device_readings_fuzz_batches_answer_as_the_strict_path() -> None:
    payloads, _, _ = messages(2_000)
    corpus = [payload for _, payload in payloads]
    for start in range(0, len(corpus), 7):  # batches of 7 mixed good and bad payloads
        _batch_agrees(corpus[start:start + 7])
    good = [payload for payload in corpus if _answer(parse_device_reading, payload)[0] == "read"]
    assert _batch_agrees(good) == len(good)  # the good ones alone: all in one pass
