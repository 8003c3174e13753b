"""The real ``softplace gateway`` and ``softplace ingest`` processes serve /metrics,
/healthz and /readyz when ``observe.port`` is set: scraped while readings flow through the
chain, and /readyz turning not-ready when the broker goes away."""

from __future__ import annotations

import functools
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from devkit.embedded_broker import free_port
from devkit.services import Mosquitto
from softplace.storage.influx import InfluxStore
from tests.e2e.stack import Stack, wait_for, write_registry
from tests.e2e.test_pipeline import SITE, Fleet, landed

pytestmark = pytest.mark.services
OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}
TIMEOUT_S = 60


def _samples(port: int) -> dict[str, float]:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", headers=OPENMETRICS, timeout=5)
    assert response.status_code == 200
    return {f"{s.name}{sorted(s.labels.items()) if s.labels else ''}": s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def _ready(port: int) -> int:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def _answers(port: int, status: int) -> bool:
    return _ready(port) == status


def test_services_expose_metrics_and_readiness_while_readings_flow(
    tmp_path: Path, influx_store: InfluxStore
) -> None:
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    registry = tmp_path / "registry.yaml"
    write_registry(registry, SITE, rooms=2)
    stack = Stack(tmp_path, SITE, registry, broker.settings, influx_store)
    fleet = Fleet([f"dev-{r}-0" for r in range(2)], broker.settings)
    ports = {"gateway": free_port(), "ingest": free_port()}
    try:
        fleet.connect()
        stack.start("ingest", "ingest", ready="ingest subscribed",
                    env={"SOFTPLACE_OBSERVE__PORT": str(ports["ingest"])})
        stack.start("gateway", "gateway", ready="connected to the site broker",
                    env={"SOFTPLACE_OBSERVE__PORT": str(ports["gateway"])})
        fleet.play(20)
        fleet.wait_sent()
        wait_for(lambda: sum(landed(influx_store, fleet.start_ts * 1000).values()) >= 40,
                 TIMEOUT_S, "the readings never landed")
        wait_for(lambda: _samples(ports["gateway"]).get("softplace_outbox_messages") == 0,
                 TIMEOUT_S, "the outbox never drained")
        gateway = _samples(ports["gateway"])
        assert gateway["softplace_messages_accepted_total"] >= 40
        assert gateway["softplace_messages_forwarded_total"] >= 40
        assert "softplace_outbox_oldest_age_seconds" not in gateway  # empty outbox: no age
        ingest = _samples(ports["ingest"])
        assert ingest["softplace_ingest_batch_size_messages_count"] >= 1
        assert ingest["softplace_store_write_failures_total"] == 0
        assert ingest["softplace_store_backoff_seconds"] == 0
        for port in ports.values():
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
            assert _ready(port) == 200
        broker.stop()
        for name, port in ports.items():
            wait_for(functools.partial(_answers, port, 503), TIMEOUT_S,
                     f"{name} stayed ready without its broker")
        broker.start()
        for name, port in ports.items():
            wait_for(functools.partial(_answers, port, 200), TIMEOUT_S,
                     f"{name} never became ready again")
    finally:
        fleet.close()
        stack.stop_all()
        broker.stop()
