"""Adversarial payloads through the real gateway on the real mosquitto (issue 17): every
good reading lands in the outbox, every bad one becomes exactly one dead letter (under a
key no other one has), and the gateway neither stalls nor reconnects.

``run_fuzz`` is shared with ``bench/bench_fuzz.py`` (100,000 payloads)."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devkit.services import Mosquitto
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from ingest.service import Ingest
from ingest.settings import IngestSettings
from softplace import topics
from softplace.mqtt import QOS_AT_LEAST_ONCE, connect_async, make_client
from softplace.registry import load_registry
from softplace.schema import SeriesName
from softplace.settings import MqttSettings
from softplace.storage.base import Sample
from softplace.storage.sqlite import SqliteStore
from tests.e2e.stack import wait_for, write_registry

pytestmark = pytest.mark.services
SITE = "fuzz-site"
DEVICES = 10
BAD_BOOT = 999  # bad payloads that carry a key never share one with a good reading
FUZZ_BAD = 20_000
BAD_PER_GOOD = 4  # one good reading after every 4 bad payloads
PUBLISH_CHUNK = 20_000  # at most this many unacknowledged publishes
ALL_TIME_MS = 2**53  # the end of any query over every stored letter
Message = tuple[str, bytes]


def _good(device: str, seq: int, ts: float, synced: bool = True) -> dict[str, Any]:
    return {"v": 1, "device": device, "boot": 1, "seq": seq, "ts": ts, "synced": synced,
            "count": seq % 5, "sensor": "virtual", "rssi_dbm": -60}


def _reading_topic(device: str) -> str:
    return topics.device_reading(SITE, device)


def _bad(rng: random.Random, device: str, ts: float) -> dict[str, Any]:
    return _good(device, rng.randrange(10**6), ts) | {"boot": BAD_BOOT}


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def _huge_int(rng: random.Random, device: str, ts: float) -> Message:
    field_name = rng.choice(["seq", "boot", "count"])
    value = rng.choice([2**63, 2**64, -(2**63), 10**19, 2**63 + rng.randrange(10**6)])
    return _reading_topic(device), _dumps(_bad(rng, device, ts) | {field_name: value})


def _deep(rng: random.Random, device: str, ts: float) -> Message:
    depth = rng.choice([9, 50, 1000, 8000, 20_000])
    return _reading_topic(device), b'{"v":1,"x":' + b"[" * depth + b"]" * depth + b"}"


def _long_number(rng: random.Random, device: str, ts: float) -> Message:
    tail = rng.choices("0123456789", k=4300 + rng.randrange(200))
    digits = str(rng.randrange(1, 10)) + "".join(tail)
    return _reading_topic(device), (b'{"v":1,"device":"' + device.encode() + b'","seq":'
                                    + digits.encode() + b"}")


def _string_for_int(rng: random.Random, device: str, ts: float) -> Message:
    field_name, value = rng.choice([("count", "3"), ("ts", str(int(ts))), ("synced", "true"),
                                    ("v", True), ("seq", "7"), ("boot", 1.0)])
    return _reading_topic(device), _dumps(_bad(rng, device, ts) | {field_name: value})


def _duplicate_key(rng: random.Random, device: str, ts: float) -> Message:
    body = _dumps(_bad(rng, device, ts))
    key = rng.choice([b'"count":7', b'"v":1', b'"device":"x"'])
    return _reading_topic(device), body[:-1] + b"," + key + b"}"


def _whitespace(rng: random.Random, device: str, ts: float) -> Message:
    return _reading_topic(device), b" " * (60_000 + rng.randrange(1000)) + _dumps(
        _bad(rng, device, ts))


def _invalid_utf8(rng: random.Random, device: str, ts: float) -> Message:
    body = _dumps(_bad(rng, device, ts) | {"sensor": "SENSOR"})
    return _reading_topic(device), body.replace(b"SENSOR", rng.choice([b"\xff", b"\xc3\x28",
                                                                       b"\xed\xa0\x80"]))


def _wrong_topic(rng: random.Random, device: str, ts: float) -> Message:
    choice = rng.randrange(3)
    if choice == 0:  # a device in no room
        stranger = f"stranger-{rng.randrange(100)}"
        return _reading_topic(stranger), _dumps(_bad(rng, stranger, ts))
    if choice == 1:  # another device's payload on this device's topic
        return _reading_topic(device), _dumps(_bad(rng, "someone-else", ts))
    return topics.device_status(SITE, device), rng.randbytes(rng.randrange(1, 64))


def _random_bytes(rng: random.Random, device: str, ts: float) -> Message:
    return _reading_topic(device), rng.randbytes(rng.randrange(1, 512))


def _lenient_values(rng: random.Random, device: str, ts: float) -> Message:
    raw = rng.choice([b"", b"[]", b"null", b'{"v":1,"ts":NaN}', b'{"v":1,"ts":Infinity}',
                      b'{"v":1,"ts":1e999}'])
    if raw:
        return _reading_topic(device), raw
    return _reading_topic(device), _dumps(_bad(rng, device, ts) | {"ts": ts + 10**6})


KINDS: dict[str, Callable[[random.Random, str, float], Message]] = {
    "huge_int": _huge_int, "deep_nesting": _deep, "long_number": _long_number,
    "string_for_int": _string_for_int, "duplicate_key": _duplicate_key,
    "whitespace_60k": _whitespace, "invalid_utf8": _invalid_utf8, "wrong_topic": _wrong_topic,
    "random_bytes": _random_bytes, "lenient_values": _lenient_values,
}


@dataclass
class FuzzResult:
    good: int = 0
    bad: int = 0
    bad_by_kind: Counter[str] = field(default_factory=Counter)
    accepted: int = 0
    dead_lettered: int = 0
    letters_upstream: int = 0  # dead letters the gateway forwarded, counted upstream
    letter_keys: int = 0  # distinct (reason, received ms) among them
    reasons: Counter[str] = field(default_factory=Counter)  # of the forwarded letters
    reasons_counted: Counter[str] = field(default_factory=Counter)  # the gateway's own count
    good_missing: int = 0  # good readings not in the outbox's dedupe keys
    connections: int = 0
    seconds: float = 0.0

    def lines(self) -> list[str]:
        return [
            f"sent {self.good + self.bad}: good {self.good}, bad {self.bad} "
            f"({', '.join(f'{k} {n}' for k, n in sorted(self.bad_by_kind.items()))})",
            f"accepted {self.accepted}, good missing {self.good_missing}, dead-lettered "
            f"{self.dead_lettered}, forwarded letters {self.letters_upstream} under "
            f"{self.letter_keys} distinct keys, site connections {self.connections}, "
            f"{self.seconds:.1f} s",
            "reasons: " + ", ".join(f"{k} {n}" for k, n in sorted(self.reasons.items())),
        ]


def messages(bad: int, seed: int = 17) -> tuple[list[Message], list[tuple[str, int, int]],
                                                 Counter[str]]:
    """``bad`` adversarial payloads, each kind in turn, with a good reading (its own
    consecutive seq per device, some with an unsynced clock) after every few."""
    rng = random.Random(seed)
    devices = [f"dev-{r}-0" for r in range(DEVICES)]
    seqs = dict.fromkeys(devices, 0)
    start = time.time() - 3600
    out: list[Message] = []
    good: list[tuple[str, int, int]] = []
    kinds: Counter[str] = Counter()
    names = list(KINDS)
    for i in range(bad):
        device = devices[i % DEVICES]
        kind = names[i % len(names)]
        out.append(KINDS[kind](rng, device, start))
        kinds[kind] += 1
        if i % BAD_PER_GOOD == 0:
            device = devices[len(good) % DEVICES]  # every device in turn
            seq = seqs[device]
            seqs[device] += 1
            synced = seq % 7 != 0
            reading = _good(device, seq, start + len(out) / 1000 if synced else 86_400.0,
                            synced)
            out.append((_reading_topic(device), _dumps(reading)))
            good.append((device, 1, seq))
    return out, good, kinds


class LetterStore:
    """The dead letters the gateway forwarded, as the real ingest stored them upstream (the
    gateway deletes an outbox row only once ingest acknowledges its batch as stored)."""

    def __init__(self, broker: MqttSettings, workdir: Path, registry: Path) -> None:
        path = workdir / "store.sqlite"
        self.ingest = Ingest(load_registry(registry), SqliteStore(path), broker,
                             IngestSettings(client_id=f"fuzz-ingest-{workdir.name}"))
        self.reader = SqliteStore(path)  # its own connection, for this thread
        self.ingest.start()

    def letters(self) -> list[Sample]:
        return list(self.reader.query(SeriesName.DEADLETTER, 0, ALL_TIME_MS))

    def close(self) -> None:
        self.ingest.stop()
        self.reader.close()


def run_fuzz(broker: MqttSettings, workdir: Path, bad: int, timeout_s: float) -> FuzzResult:
    registry = workdir / "registry.yaml"
    write_registry(registry, SITE, rooms=DEVICES)
    site = load_registry(registry).site(SITE)
    settings = GatewaySettings(site=SITE, state_dir=workdir / "state",
                               client_id=f"fuzz-gw-{workdir.name}")
    gateway = Gateway(site, broker, settings)
    upstream = LetterStore(broker, workdir, registry)
    publisher = make_client(broker, f"fuzz-pub-{workdir.name}", persistent=False)
    connected = threading.Event()
    publisher.on_connect = lambda *_: connected.set()
    result = FuzzResult()
    payloads, good, kinds = messages(bad)
    result.good, result.bad, result.bad_by_kind = len(good), bad, kinds
    try:
        gateway.start()
        connect_async(publisher, broker, persistent=False)
        assert connected.wait(30), "no broker connection"
        wait_for(lambda: upstream.ingest.counts.connections >= 1, 30, "ingest not connected")
        assert gateway.subscribed.wait(30), "gateway never subscribed"
        started = time.monotonic()
        last = None
        for i, (topic, payload) in enumerate(payloads):
            if last is not None and i % PUBLISH_CHUNK == 0:
                last.wait_for_publish(timeout_s)  # packet ids wrap at 65,535
            last = publisher.publish(topic, payload, qos=QOS_AT_LEAST_ONCE)
        assert last is not None
        last.wait_for_publish(timeout_s)

        def done() -> bool:
            return (gateway.counts.received >= len(payloads) and gateway.outbox.size() == 0
                    and len(upstream.letters()) >= gateway.counts.dead_lettered)

        wait_for(done, timeout_s, "the gateway did not get through the fuzz",
                 describe=lambda: f"{gateway.summary()}; letters stored {len(upstream.letters())}")
        time.sleep(0.5)  # a doubled letter would show now
        result.seconds = time.monotonic() - started
        counts = gateway.counts
        result.accepted, result.dead_lettered = counts.accepted, counts.dead_lettered
        result.connections = counts.connections
        letters = upstream.letters()
        result.letters_upstream = len(letters)
        result.letter_keys = len({(x.tags["reason"], x.time_ms) for x in letters})
        result.reasons = Counter(x.tags["reason"] for x in letters)
        result.reasons_counted = Counter(gateway.dead_letters)
        kept = set(gateway.outbox.seen_keys(settings.dedupe_keys_per_device))
        result.good_missing = len(set(good) - kept)
        return result
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        gateway.stop()
        upstream.close()


def test_fuzz_every_adversarial_payload_is_dead_lettered_and_no_good_reading_lost(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    result = run_fuzz(mosquitto.settings, tmp_path, FUZZ_BAD, timeout_s=90)
    summary = "\n".join(result.lines())
    assert result.bad >= 20_000 and len(result.bad_by_kind) == len(KINDS), summary
    assert result.accepted == result.good and result.good_missing == 0, summary
    assert result.dead_lettered == result.bad, summary
    assert result.letters_upstream == result.letter_keys == result.bad, summary
    assert "internal_error" not in result.reasons, summary
    assert result.reasons_counted == result.reasons, summary
    assert result.connections == 1, summary  # never dropped, never restarted

