"""softplace.observe: a real consumer on the real mosquitto, scraped over HTTP and parsed by
prometheus-client's own OpenMetrics parser; health and readiness answered from real checks."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as paho
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as classic_families

from devkit.services import Mosquitto
from softplace import observe
from softplace.consumer import ConsumerCounts
from softplace.errors import ConfigError
from softplace.mqtt import connect_async, make_client
from softplace.settings import ObserveSettings
from tests.e2e.stack import wait_for
from tests.test_consumer import TIMEOUT_S, Recorder, _names, publish, started

pytestmark = pytest.mark.services
OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}
# Prometheus conventions: snake case, a prefix, no ``_total`` on a family (the sample has it)
NAME = re.compile(r"^(softplace|process|python)_[a-z0-9_]+$")


@pytest.fixture
def publisher(mosquitto: Mosquitto, request: pytest.FixtureRequest) -> Iterator[paho.Client]:
    client = make_client(mosquitto.settings, f"{_names(request)[1]}-pub", persistent=False)
    connect_async(client, mosquitto.settings, persistent=False)
    wait_for(client.is_connected, TIMEOUT_S, "the publisher never connected")
    yield client
    client.disconnect()
    client.loop_stop()


def _scrape(port: int) -> dict[str, float]:
    response = httpx.get(f"http://127.0.0.1:{port}{observe.METRICS_PATH}", headers=OPENMETRICS,
                         timeout=TIMEOUT_S)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(observe.OPENMETRICS_TYPE)
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):  # raises on a bad exposition
        assert NAME.match(family.name), family.name
        assert not family.name.endswith("_total"), family.name
        for sample in family.samples:
            assert "device" not in sample.labels
            if not sample.labels:
                samples[sample.name] = sample.value
    return samples


def test_observe_scrape_counts_what_a_real_consumer_did(
    mosquitto: Mosquitto, publisher: paho.Client, request: pytest.FixtureRequest,
) -> None:
    topic, client_id = _names(request)
    consumer = Recorder(mosquitto.settings, topic, client_id)
    registry = observe.new_registry()
    observe.consumer_metrics(registry, consumer)
    reasons: Counter[str] = Counter()
    observe.dead_letter_reasons(registry, lambda: reasons)
    server = observe.ObserveServer("127.0.0.1", 0, registry)
    server.start()
    started(consumer)
    try:
        publish(publisher, topic, ["a", "b", "c"])
        wait_for(lambda: consumer.counts.acknowledged == 3, TIMEOUT_S, "never acknowledged")
        reasons["invalid_payload"] += 2
        samples = _scrape(server.port)
        assert samples["softplace_messages_received_total"] == 3
        assert samples["softplace_messages_accepted_total"] == 3
        assert samples["softplace_messages_acknowledged_total"] == 3
        assert samples["softplace_messages_dead_lettered_total"] == 0
        assert samples["softplace_broker_connections_total"] == 1
        assert samples["softplace_consumer_queue_messages"] == 0
        assert "process_cpu_seconds_total" in samples
        publish(publisher, topic, ["d"])
        wait_for(lambda: consumer.counts.acknowledged == 4, TIMEOUT_S, "never acknowledged")
        assert _scrape(server.port)["softplace_messages_received_total"] == 4
    finally:
        consumer.stop()
        server.stop()


def test_observe_every_metric_definition_parses_in_both_formats() -> None:
    registry = observe.new_registry(process=False)
    observe.gateway_metrics(registry, outbox_depth=lambda: 7, outbox_oldest_age_s=lambda: None,
                            forwarder_inflight=lambda: 2, forwarded=lambda: 40, parked=lambda: 1)
    store = observe.store_metrics(registry)
    store.batch_size.observe(120)
    store.write_seconds.observe(0.02)
    store.write_failures.inc()
    observe.detector_metrics(registry, lag_s=lambda: 90.0, checkpoint_age_s=lambda: 5.0,
                             late_dropped=lambda: 3)
    server = observe.ObserveServer("127.0.0.1", 0, registry)
    server.start()
    try:
        samples = _scrape(server.port)
        classic = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=TIMEOUT_S)
    finally:
        server.stop()
    assert samples["softplace_outbox_messages"] == 7
    assert "softplace_outbox_oldest_age_seconds" not in samples  # an empty outbox: no age
    assert samples["softplace_messages_parked_total"] == 1
    assert samples["softplace_ingest_batch_size_messages_count"] == 1
    assert samples["softplace_store_write_failures_total"] == 1
    assert samples["softplace_detector_lag_seconds"] == 90
    assert classic.headers["content-type"].startswith("text/plain")
    names = {f.name for f in classic_families(classic.text)}
    assert "softplace_detector_late_readings_dropped" in names


def test_observe_readyz_follows_the_broker_and_the_outbox(
    mosquitto: Mosquitto, request: pytest.FixtureRequest,
) -> None:
    topic, client_id = _names(request)
    consumer = Recorder(mosquitto.settings, topic, client_id)
    depth = [0]
    settings = ObserveSettings(port=0, outbox_ready_max=5)
    server = observe.serve(settings, observe.new_registry(process=False), {
        "broker": consumer.subscribed.is_set,
        "outbox": observe.below(lambda: depth[0], settings.outbox_ready_max),
    })
    assert server is not None
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert httpx.get(f"{base}/healthz", timeout=TIMEOUT_S).status_code == 200
        not_yet = httpx.get(f"{base}/readyz", timeout=TIMEOUT_S)
        assert not_yet.status_code == 503
        assert not_yet.json()["checks"] == {"broker": False, "outbox": True}
        started(consumer)
        assert httpx.get(f"{base}/readyz", timeout=TIMEOUT_S).status_code == 200
        depth[0] = 5
        full = httpx.get(f"{base}/readyz", timeout=TIMEOUT_S)
        assert full.status_code == 503
        assert full.json()["checks"] == {"broker": True, "outbox": False}
        assert httpx.get(f"{base}/nothing", timeout=TIMEOUT_S).status_code == 404
    finally:
        consumer.stop()
        server.stop()


def test_observe_readyz_turns_not_ready_when_the_broker_goes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest,
) -> None:
    broker = Mosquitto(tmp_path / "broker")  # our own: this test kills it
    broker.start()
    topic, client_id = _names(request)
    consumer = Recorder(broker.settings, topic, client_id)
    server = observe.ObserveServer("127.0.0.1", 0, observe.new_registry(process=False),
                                   {"broker": consumer.subscribed.is_set})
    server.start()
    ready = f"http://127.0.0.1:{server.port}{observe.READY_PATH}"
    try:
        started(consumer)
        assert httpx.get(ready, timeout=TIMEOUT_S).status_code == 200
        with caplog.at_level(logging.WARNING):
            broker.kill()
            wait_for(lambda: httpx.get(ready, timeout=TIMEOUT_S).status_code == 503, TIMEOUT_S,
                     "still ready without a broker")
            wait_for(lambda: f"127.0.0.1:{broker.port}" in caplog.text, TIMEOUT_S,
                     "the lost broker's address was never logged")
        assert "retries after" in caplog.text
    finally:
        consumer.stop()
        server.stop()
        broker.stop()


def test_observe_serve_is_off_without_a_port() -> None:
    assert observe.serve(ObserveSettings(), observe.new_registry(process=False)) is None


def test_observe_a_port_in_use_is_a_one_line_settings_error() -> None:
    first = observe.ObserveServer("127.0.0.1", 0, observe.new_registry(process=False))
    try:  # a second process on the same observe.port (three services, one settings file)
        with pytest.raises(ConfigError, match=rf"observe.port: cannot listen on 127.0.0.1:"
                                              rf"{first.port} \(Address already in use\)"):
            observe.ObserveServer("127.0.0.1", first.port, observe.new_registry(process=False))
    finally:
        first.stop()


def test_observe_a_raising_check_is_not_ready() -> None:
    def broken() -> bool:
        raise OSError("store away")

    assert observe.run_checks({"store": observe.succeeds(broken), "ok": lambda: True}) == {
        "store": False, "ok": True}


def test_observe_promtool_accepts_the_exposition() -> None:
    """Prometheus's own linter on every metric we define (names, units, help, types)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool missing: install Debian's prometheus (scripts/test.sh does)",
                    pytrace=False)
    registry = observe.new_registry()
    observe.consumer_metrics(registry, _Idle())
    observe.dead_letter_reasons(registry, lambda: {"malformed_json": 1})
    observe.gateway_metrics(registry, outbox_depth=lambda: 3, outbox_oldest_age_s=lambda: 12.5,
                            forwarder_inflight=lambda: 1, forwarded=lambda: 9, parked=lambda: 0)
    observe.store_metrics(registry).write_seconds.observe(0.01)
    observe.detector_metrics(registry, lag_s=lambda: 4.0, checkpoint_age_s=lambda: 1.0,
                             late_dropped=lambda: 0)
    server = observe.ObserveServer("127.0.0.1", 0, registry)
    server.start()
    try:
        text = httpx.get(f"http://127.0.0.1:{server.port}{observe.METRICS_PATH}",
                         timeout=TIMEOUT_S).text
    finally:
        server.stop()
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout + done.stderr == ""  # no lint warning either


class _Idle:
    counts = ConsumerCounts()
    queued = 0
