"""Sensor health carries no occupancy timing (issue 13): the arrival/departure recovery
from health data, replayed against the gateway core with the firmware's report-on-change."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from gateway.core import GatewayCore
from gateway.health import HEALTH_PERIOD_S, HealthReporter, slot_start
from gateway.settings import GatewaySettings
from softplace import topics
from softplace.messages import SensorHealth
from softplace.registry import load_registry

SITE = "branch-lyon-part-dieu"
DEVICE = "lyon-office-1"
START = 1_795_000_000.0  # a slot boundary is not needed: the phase is part of the replay
HOURS = 3
HEARTBEAT_S = 60  # the firmware default (softplace_fw/config.py)


def _replay(arrival: float, departure: float, reporter: HealthReporter | None = None,
            heartbeat_s: int = HEARTBEAT_S) -> tuple[list[str], list[float]]:
    """One occupant in a one-person office from ``arrival`` to ``departure``; the sensor
    reports on change and on its heartbeat (the firmware's Reporter). Returns the health
    payloads that left the gateway and the readings' times."""
    core = GatewayCore(load_registry().site(SITE), GatewaySettings())
    if reporter is not None:
        core.health = reporter
    health: list[str] = []
    reading_times: list[float] = []
    last_value: int | None = None
    last_ms: int | None = None
    seq = 0
    jitter = random.Random(7)  # simulated radio latency
    for second in range(HOURS * 3600):
        now = START + second
        count = int(arrival <= now < departure)
        now_ms = second * 1000
        if last_ms is None or count != last_value or now_ms - last_ms >= heartbeat_s * 1000:
            last_value, last_ms, seq = count, now_ms, seq + 1
            ts = now + jitter.random() * 0.2
            payload = {"v": 1, "device": DEVICE, "boot": 1, "seq": seq, "ts": ts,
                       "synced": True, "count": count, "sensor": "vl53l1x",
                       "battery_pct": 80.0, "rssi_dbm": -60}
            decision = core.handle_reading(topics.device_reading(SITE, DEVICE),
                                           json.dumps(payload).encode(), ts + 0.05)
            assert decision.rejected is None
            assert all("/health/" not in o.topic for o in decision.outgoing)
            reading_times.append(ts)
        health += [o.payload.decode() for o in core.scheduled_health(now + 0.5)]
    return health, reading_times


def _scenarios(n: int) -> list[tuple[float, float]]:
    rng = random.Random(13)
    out = []
    for _ in range(n):
        arrival = START + rng.uniform(600, 3 * 3600 / 2)
        out.append((arrival, arrival + rng.uniform(300, 3600)))
    return out


def _guess_changes(health: list[str]) -> list[float]:
    """The issue's attack: every distinct last_seen in the health stream is a reading, and
    a reading off the heartbeat rhythm is a change (arrival or departure)."""
    values = {SensorHealth.model_validate_json(h).last_seen or 0.0 for h in health}
    seen = sorted(v for v in values if v + 1 not in values)  # one reading: one value
    return [b for a, b in itertools.pairwise(seen)
            if 1 < (b - a) % HEARTBEAT_S < HEARTBEAT_S - 1]


def _recovered(health: list[str], arrival: float, departure: float, within_s: float) -> int:
    guesses = _guess_changes(health)
    return sum(any(abs(g - t) <= within_s for g in guesses) for t in (arrival, departure))


def test_health_stream_is_the_same_whatever_the_occupant_does() -> None:
    """Every scenario yields byte-identical health, so whatever an attacker computes from it
    is independent of the arrival and departure: recovery is at chance, by construction."""
    baseline, _ = _replay(float("inf"), float("inf"))  # nobody comes
    assert len(baseline) == pytest.approx(HOURS * 3600 / HEALTH_PERIOD_S, abs=1)
    for arrival, departure in _scenarios(12):
        health, readings = _replay(arrival, departure)
        assert health == baseline
        stamps = {SensorHealth.model_validate_json(h).ts for h in health}
        assert not stamps & set(readings)  # no health point matches a reading's time
        assert all(ts == slot_start(ts, HEALTH_PERIOD_S) for ts in stamps)


def test_health_attack_recovers_changes_only_from_uncoarsened_health() -> None:
    """Negative control: the same replay with health that follows last_seen to the second
    (what the gateway did before) gives the changes back; the scheduled, coarsened health
    gives no more than a blind guess does."""
    scenarios = _scenarios(6)
    hits_leaky = sum(  # fresh_s is raised to the period: last_seen to the second
        _recovered(_replay(a, d, HealthReporter(fresh_s=0, period_s=1))[0], a, d, 2)
        for a, d in scenarios
    )
    hits = sum(_recovered(_replay(a, d)[0], a, d, 2) for a, d in scenarios)
    # a blind guess at a uniform time over the 3 h hits a +-2 s window 4/10800 of the time
    assert hits_leaky >= 10  # of 12 changes
    assert hits == 0


def test_health_silent_device_shows_when_it_was_last_heard() -> None:
    reporter = HealthReporter(fresh_s=900, period_s=60)
    assert reporter.due(1000.0) == 960.0 and reporter.due(1010.0) is None
    assert reporter.due(1020.0) == 1020.0
    assert reporter.coarse_last_seen(1001.0, 1020.0) == 960.0  # fresh: the slot before
    assert reporter.coarse_last_seen(70.0, 1020.0) == 60.0  # silent 16 min: its slot
    assert reporter.coarse_last_seen(None, 1020.0) is None
