"""Session fixtures: a private mosquitto and a private influxd, real processes on free
loopback ports with temporary directories, stopped by PID at the end."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from devkit.services import Influxd, Mosquitto, ServiceError
from softplace.settings import RetentionSettings
from softplace.storage.influx import InfluxStore
from softplace.storage.sqlite import SqliteStore

_database_numbers = itertools.count(1)


ServiceT = TypeVar("ServiceT", Mosquitto, Influxd)


def _running(kind: type[ServiceT], factory: pytest.TempPathFactory) -> Iterator[ServiceT]:
    """Start a private service; a missing binary or a failed start fails the test run."""
    try:
        service = kind(factory.mktemp(kind.name))
        service.start()
    except ServiceError as err:
        pytest.fail(f"cannot start {kind.name}: {err}", pytrace=False)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    yield from _running(Mosquitto, tmp_path_factory)


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    yield from _running(Influxd, tmp_path_factory)


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
