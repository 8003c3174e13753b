"""Session fixtures: a private mosquitto and a private influxd, real processes on free
loopback ports with temporary directories, stopped by PID at the end."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from softplace.settings import RetentionSettings
from softplace.storage.influx import InfluxStore
from softplace.storage.sqlite import SqliteStore
from tests.services import Influxd, Mosquitto, ServiceError

_database_numbers = itertools.count(1)


def _start(service: Mosquitto | Influxd) -> None:
    try:
        service.start()
    except ServiceError as err:
        pytest.fail(f"cannot start {service.name}: {err}", pytrace=False)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    try:
        broker = Mosquitto(tmp_path_factory.mktemp("mosquitto"))
    except ServiceError as err:
        pytest.fail(str(err), pytrace=False)
    _start(broker)
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    try:
        server = Influxd(tmp_path_factory.mktemp("influxd"))
    except ServiceError as err:
        pytest.fail(str(err), pytrace=False)
    _start(server)
    yield server
    server.stop()


@pytest.fixture
def influx_store(influxd: Influxd) -> Iterator[InfluxStore]:
    """A fresh database (with SoftPlace's retention policies) on the session's influxd."""
    influxd.start()  # a test may have stopped it
    store = InfluxStore(influxd.settings_for(f"test_{next(_database_numbers)}"))
    store.apply_retention(RetentionSettings().policies())
    yield store
    store.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "store.sqlite")
    store.apply_retention(RetentionSettings().policies())
    yield store
    store.close()
