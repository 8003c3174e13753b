"""The gateway's own status (``gateway_status``): once a slot, carried upstream in the
batches, its backlog saying when forwarding stopped and never when readings came in."""

from __future__ import annotations

import itertools
import json
import random
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from dashboards import alerts
from devkit.services import Mosquitto
from gateway.core import Outgoing
from gateway.health import HEALTH_PERIOD_S, StatusReporter
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from ingest.core import IngestCore
from softplace import topics
from softplace.messages import BatchAck, GatewayStatus, RoomReadingBatch
from softplace.mqtt import QOS_AT_LEAST_ONCE
from softplace.registry import load_registry
from softplace.settings import MqttSettings
from softplace.storage.influx import InfluxStore
from tests.e2e.stack import wait_for, write_registry
from tests.recorder import TopicRecorder

SITE = "status-site"
START = 1_795_000_013.0
HOURS = 2
CUT = START + 40 * 60 + 17  # upstream goes away then, and stays away
HEARTBEAT_S = 60
TIMEOUT_S = 30
Row = tuple[float, str, float]  # queued at, kind, stamped (a status: its slot)
Oldest = Callable[[list[Row]], float | None]


def _oldest_status(waiting: list[Row]) -> float | None:
    """What the gateway measures: the slot stamp of the oldest status waiting."""
    return min((stamp for _, kind, stamp in waiting if kind == "status"), default=None)


def _oldest_row(waiting: list[Row]) -> float | None:
    """The outbox's own figure (its oldest_queued_ms, the Prometheus age gauge)."""
    return min((queued for queued, _, _ in waiting), default=None)


def _replay(arrival: float, departure: float, oldest: Oldest) -> list[bytes]:
    """A one-person office reporting on change and heartbeat, the gateway queuing each
    reading, each slot's health and its status; rows drain at once while upstream is there,
    never after ``CUT``. Returns the statuses, ``oldest`` choosing the row they measure."""
    reporter = StatusReporter()
    waiting: list[Row] = []
    statuses: list[bytes] = []
    last: tuple[int, float] | None = None
    jitter = random.Random(3)
    for second in range(HOURS * 3600):
        now = START + second
        count = int(arrival <= now < departure)
        if last is None or count != last[0] or now - last[1] >= HEARTBEAT_S:
            last = (count, now)
            at = now + jitter.random() * 0.2
            waiting.append((at, "reading", at))
        slot = reporter.due(now + 0.5)
        if slot is not None:
            waiting.append((now + 0.5, "health", now + 0.5))
            status = reporter.report(SITE, slot, oldest(waiting), upstream=now < CUT)
            statuses.append(status.to_json())
            waiting.append((now + 0.5, "status", slot))
        if now < CUT:
            waiting.clear()
    return statuses


def _scenarios(n: int) -> list[tuple[float, float]]:
    rng = random.Random(17)
    return [(a, a + rng.uniform(120, 1800))
            for a in (CUT + rng.uniform(-600, 1200) for _ in range(n))]


def test_status_backlog_is_the_same_whatever_the_occupant_does() -> None:
    streams = {tuple(_replay(a, d, _oldest_status)) for a, d in _scenarios(12)}
    assert len(streams) == 1
    backlogs = [GatewayStatus.model_validate_json(s).backlog_s for s in streams.pop()]
    after = backlogs[-10:]  # long after the cut: one period more per slot
    assert [b - a for a, b in itertools.pairwise(after)] == [HEALTH_PERIOD_S] * 9
    assert backlogs[0] == 0


def test_status_backlog_of_the_oldest_row_of_any_kind_would_tell_the_readings() -> None:
    """The negative control: measured on the outbox's queue times, a reading between the
    cut and the next slot's rows shows as one period more: the stream depends on the
    occupant."""
    streams = {tuple(_replay(a, d, _oldest_row)) for a, d in _scenarios(12)}
    assert len(streams) > 1


def test_status_reporter_waits_for_the_next_slot_and_rounds_down() -> None:
    reporter = StatusReporter()
    assert reporter.due(600.5) == 600.0 and reporter.due(659.0) is None
    assert reporter.backlog_s(None, 600.0) == 0.0
    assert reporter.backlog_s(600.0, 600.0) == 0.0
    assert reporter.backlog_s(480.0, 600.0) == 120.0
    assert reporter.backlog_s(480.4, 600.0) == 60.0  # an older outbox's odd stamp


# -- on the real mosquitto --------------------------------------------------------------

def _gateway(tmp_path: Path, broker: MqttSettings, clock: Callable[[], float],
             upstream: MqttSettings | None = None) -> Gateway:
    registry = tmp_path / "registry.yaml"
    write_registry(registry, SITE, rooms=1)
    settings = GatewaySettings(site=SITE, state_dir=tmp_path / "state", upstream=upstream,
                               client_id=f"gw-{tmp_path.name}", upstream_ack_timeout_s=3600)
    return Gateway(load_registry(registry).site(SITE), broker, settings, clock=clock)


def _statuses_waiting(gateway: Gateway) -> list[GatewayStatus]:
    return [GatewayStatus.model_validate_json(o.payload)
            for _, o in gateway.outbox.pending(0, 1000)
            if o.topic == topics.gateway_status(SITE)]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _step_slots(gateway: Gateway, clock: Clock, slots: int,
                queued: Callable[[], int]) -> None:
    """Move the gateway's clock one health period at a time; each slot's status queued."""
    for _ in range(slots):
        before = queued()
        clock.now += HEALTH_PERIOD_S
        wait_for(lambda before=before: queued() > before,  # type: ignore[misc]
                 TIMEOUT_S, "no status for the slot")


@pytest.mark.services
def test_status_cut_from_upstream_waits_in_the_outbox_with_a_growing_backlog(
    mosquitto: Mosquitto, tmp_path: Path,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on: upstream unreachable
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    clock = Clock(time.time())
    gateway = _gateway(tmp_path, mosquitto.settings, clock,
                       upstream=MqttSettings(url=f"mqtt://127.0.0.1:{closed}"))
    gateway.start()
    try:
        wait_for(lambda: len(_statuses_waiting(gateway)) >= 1, TIMEOUT_S, "no first status")
        _step_slots(gateway, clock, 4, lambda: len(_statuses_waiting(gateway)))
        waiting = _statuses_waiting(gateway)
    finally:
        gateway.stop()
    assert [s.upstream for s in waiting] == [False] * len(waiting)
    assert [s.backlog_s for s in waiting] == [0.0, 60.0, 120.0, 180.0, 240.0]


@pytest.mark.services
def test_status_rides_the_batches_and_ingest_stores_it(
    mosquitto: Mosquitto, tmp_path: Path, influx_store: InfluxStore,
) -> None:
    """Upstream connected, ingest away (nothing acknowledged): the statuses wait, and once
    batches are acknowledged they arrive with their growing backlog, which ingest stores;
    the next status, drained, says 0. (The rule itself is proven on such points in
    tests/dashboards/test_alert_rules.py: this clock runs ahead of influxd's now().)"""
    reader = TopicRecorder(mosquitto.settings, f"batch-reader-{tmp_path.name}",
                           topics.batch(SITE), RoomReadingBatch)
    acked: set[str] = set()

    def received() -> list[GatewayStatus]:
        return [s for batch in reader.messages() for s in batch.status]

    def acknowledge() -> bool:
        """Acknowledge what came (ingest back); True once nothing is left to send."""
        ids = {batch.batch for batch in reader.messages()} - acked
        for batch_id in sorted(ids):
            reader.client.publish(topics.batch_ack(SITE), BatchAck(site=SITE, batch=batch_id)
                           .to_json(), qos=QOS_AT_LEAST_ONCE).wait_for_publish(TIMEOUT_S)
        acked.update(ids)
        return gateway.outbox.size() == 0

    def store() -> list[float]:
        """What ingest makes of every batch so far, stored; the backlogs read back."""
        influx_store.write([s for b in reader.payloads() for s in ingest.batch_for(b).samples])
        return [float(p.fields["backlog_s"]) for p in influx_store.query(
            "gateway_status", 0, int(clock.now * 1000) + 1000, {"site": SITE})]

    clock = Clock(time.time())
    gateway = _gateway(tmp_path, mosquitto.settings, clock)
    ingest = IngestCore(load_registry(tmp_path / "registry.yaml"))
    gateway.start()
    try:
        wait_for(lambda: len(received()) >= 1, TIMEOUT_S, "no status in a batch")
        assert received()[0].upstream and received()[0].backlog_s == 0
        slots = int(alerts.OUTBOX_BACKLOG_S // HEALTH_PERIOD_S) + 2
        _step_slots(gateway, clock, slots, lambda: len(_statuses_waiting(gateway)))
        wait_for(acknowledge, TIMEOUT_S, "the outbox never drained")
        assert len(received()) == slots + 1
        backlogs = [s.backlog_s for s in received()]
        assert backlogs[-1] > alerts.OUTBOX_BACKLOG_S and backlogs == sorted(backlogs)
        assert store() == backlogs
        _step_slots(gateway, clock, 1, lambda: len(received()))
        latest = received()[-1]
        assert latest.backlog_s == 0 and latest.upstream
        assert store() == [*backlogs, 0.0]
    finally:
        gateway.stop()
        reader.close()


def test_status_batcher_puts_statuses_in_their_own_list() -> None:
    from gateway.batcher import Batcher

    status = GatewayStatus(site=SITE, ts=600, backlog_s=60, upstream=False)
    (batch,) = Batcher(SITE, {}, "e").build(
        [(1, Outgoing(topics.gateway_status(SITE), status.to_json()))], now=0).batches
    assert json.loads(batch.payload)["status"] == [json.loads(status.to_json())]
    assert RoomReadingBatch.model_validate_json(batch.payload).status == [status]
