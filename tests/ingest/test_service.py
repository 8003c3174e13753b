"""Ingest's shell against an unreachable broker: it says where and when it retries."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from devkit.embedded_broker import free_port
from ingest.service import Ingest
from ingest.settings import IngestSettings
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
