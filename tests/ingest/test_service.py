"""Ingest's shell against an unreachable broker: it says where and when it retries."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from devkit.embedded_broker import free_port
from ingest.service import BATCH_LINGER_S, Ingest
from ingest.settings import IngestSettings
from softplace import topics
from softplace.consumer import Received
from softplace.registry import load_registry
from softplace.settings import MqttSettings
from softplace.storage.sqlite import SqliteStore

WAIT_S = 10.0


def test_ingest_logs_the_broker_address_and_retry_schedule_when_it_cannot_connect(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there
    store = SqliteStore(tmp_path / "store.sqlite")
    ingest = Ingest(load_registry(), store, MqttSettings(url=f"mqtt://127.0.0.1:{port}"),
                    IngestSettings(client_id=f"ingest-{tmp_path.name}"))
    caplog.set_level(logging.WARNING, logger="softplace.mqtt")
    ingest.start()
    try:
        deadline = time.monotonic() + WAIT_S
        while "cannot connect" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        ingest.stop()
        store.close()
    assert f"ingest: cannot connect to the broker at 127.0.0.1:{port}" in caplog.text
    assert "retries after 1 s, doubling up to 30 s" in caplog.text


def test_ingest_lingers_briefly_after_a_gateway_batch_and_fully_after_a_single_message(
    tmp_path: Path,
) -> None:
    """A gateway batch is a batch already: waiting batch_interval_s for company would hold
    up the gateway's window of batches in flight (the chain's rate)."""
    store = SqliteStore(tmp_path / "store.sqlite")
    settings = IngestSettings(client_id=f"ingest-{tmp_path.name}", batch_interval_s=2.0)
    ingest = Ingest(load_registry(), store, MqttSettings(), settings)

    def received(topic: str) -> Received:
        return Received(topic, b"{}", 1, 1, 0, 0.0, redelivered=False)

    try:
        assert ingest.linger_for(received(topics.batch("site-a"))) == BATCH_LINGER_S
        assert ingest.linger_for(received(topics.room("site-a", "room-1"))) == 2.0
        assert ingest.linger_for(received(topics.deadletter("site-a"))) == 2.0
    finally:
        store.close()
