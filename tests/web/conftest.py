"""The web tests' data (a week for the sample registry, one account per role) and the app,
served by uvicorn on a free loopback port with a clock the tests hold."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from detector.report import Report, build_report
from softplace.storage.sqlite import SqliteStore
from tests.web.fixtures import (
    CHEAP_HASHER,
    FIRST,
    LAST,
    NOW,
    PASSWORD,
    SITE,
    USERS,
    WebData,
    make_web_data,
)
from web.app import create_app
from web.server import BackgroundServer
from web.users import Role

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
HTTP_TIMEOUT_S = 30.0


@dataclass(slots=True)
class Clock:
    now: float = NOW.timestamp()

    def __call__(self) -> float:
        return self.now


@dataclass(slots=True)
class Served:
    data: WebData
    server: BackgroundServer
    clock: Clock

    @property
    def url(self) -> str:
        return self.server.url

    def client(self) -> contextlib.AbstractContextManager[httpx.Client]:
        return self.login(None)

    @contextlib.contextmanager
    def login(self, role: Role | None, password: str = PASSWORD) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=self.url, timeout=HTTP_TIMEOUT_S) as client:
            if role is not None:
                response = login(client, USERS[role], password)
                assert response.status_code == 303, response.text
            yield client


def login(client: httpx.Client, name: str, password: str) -> httpx.Response:
    token = CSRF.search(client.get("/login").text)
    assert token is not None
    return client.post("/login", data={"name": name, "password": password, "csrf": token[1]})


@pytest.fixture(scope="session")
def web_data(tmp_path_factory: pytest.TempPathFactory) -> WebData:
    return make_web_data(tmp_path_factory.mktemp("web"))


def _serve(data: WebData) -> Iterator[Served]:
    clock = Clock()
    app = create_app(data.settings, data.registry, config=data.config, clock=clock,
                     hasher=CHEAP_HASHER)
    with BackgroundServer(app) as server:
        yield Served(data, server, clock)


@pytest.fixture(scope="session")
def served(web_data: WebData) -> Iterator[Served]:
    yield from _serve(web_data)


@pytest.fixture
def fresh(web_data: WebData) -> Iterator[Served]:
    """An app of its own (its own login rate limiter and clock) on the same data."""
    yield from _serve(web_data)


@pytest.fixture(scope="session")
def expected(web_data: WebData) -> Report:
    """The branch report of the fixture's week, from the same code as ``softplace report``:
    what the pages and the API must show."""
    store = SqliteStore(web_data.store_path)
    try:
        return build_report(store, web_data.registry, SITE, FIRST, LAST,
                            settings=web_data.settings.detector)
    finally:
        store.close()
