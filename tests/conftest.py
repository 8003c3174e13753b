"""Session fixtures: a private mosquitto and a private influxd, real processes on free
loopback ports with temporary directories, stopped by PID at the end.

The test tiers are marked here, at collection, so ``-m`` selects on them:

- ``slow``: every ``node`` test and every Hypothesis search (test modules that spawn
  processes mark themselves ``slow``, as do Monte Carlo and long CLI tests);
- ``services``: every test whose fixture closure holds a fixture in ``SERVICE_FIXTURES``
  (directly or through another fixture, e.g. the e2e ``stack``), and every ``slow`` one:
  whatever is not the fast pure tier.

The fast pure tier, ``-m "not services"``, needs no mosquitto, influxd, node or subprocess;
a services fixture requested anyway (``request.getfixturevalue``) fails the run.
"""

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

SERVICES = "services"
SLOW = "slow"
NODE = "node"
SERVICE_FIXTURES = frozenset({
    "mosquitto", "influxd", "influx_store",
    "deployed_broker",  # tests/test_compose.py: the Debian mosquitto with deploy/'s config
})
_SERVICES_SELECTED = pytest.StashKey[bool]()


@pytest.hookimpl(tryfirst=True)  # before the mark plugin deselects on these markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(SERVICES)
        # node runs MicroPython; a Hypothesis test (it has ``.hypothesis``) is a search
        if item.get_closest_marker(NODE) is not None or hasattr(
                getattr(item, "obj", None), "hypothesis"):
            item.add_marker(SLOW)
        if item.get_closest_marker(SLOW) is not None:
            item.add_marker(SERVICES)


def pytest_collection_finish(session: pytest.Session) -> None:
    session.config.stash[_SERVICES_SELECTED] = any(
        item.get_closest_marker(SERVICES) is not None for item in session.items)


def _require_services_selected(config: pytest.Config, name: str) -> None:
    """A run without any services test must not start a service: the tiers would lie."""
    if not config.stash.get(_SERVICES_SELECTED, True):
        pytest.fail(f"{name} requested in a run that selected no '{SERVICES}' test: mark the "
                    f"test that requests it '{SERVICES}'", pytrace=False)


ServiceT = TypeVar("ServiceT", Mosquitto, Influxd)


def _running(kind: type[ServiceT], factory: pytest.TempPathFactory,
             config: pytest.Config) -> Iterator[ServiceT]:
    """Start a private service; a missing binary or a failed start fails the test run."""
    _require_services_selected(config, kind.name)
    try:
        service = kind(factory.mktemp(kind.name))
        service.start()
    except ServiceError as err:
        pytest.fail(f"cannot start {kind.name}: {err}", pytrace=False)
    yield service
    service.stop()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory,
              pytestconfig: pytest.Config) -> Iterator[Mosquitto]:
    yield from _running(Mosquitto, tmp_path_factory, pytestconfig)


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory,
            pytestconfig: pytest.Config) -> Iterator[Influxd]:
    yield from _running(Influxd, tmp_path_factory, pytestconfig)


@pytest.fixture
def influx_store(influxd: Influxd, request: pytest.FixtureRequest) -> Iterator[InfluxStore]:
    """A fresh database (with SoftPlace's retention policies) on the session's influxd."""
    if request.node.get_closest_marker(SERVICES) is None:  # requested by getfixturevalue
        pytest.fail(f"{request.node.nodeid} uses influx_store: mark it '{SERVICES}'",
                    pytrace=False)
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
