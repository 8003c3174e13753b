"""The marketplace against the real uvicorn server: public offers and feeds, booking
requests with CSRF and a rate limit, concurrent clients that never double-book, the
status link with its .ics, retention of requesters' data and ghost bookings in the report."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from icalendar import Calendar

from bookings.settings import BookingsSettings
from bookings.store import BookingStore
from softplace.schema import RoomCountField, SeriesName
from softplace.storage.base import Sample
from softplace.storage.sqlite import SqliteStore
from softplace.timeutil import MS_PER_DAY
from tests.web.conftest import CSRF, HTTP_TIMEOUT_S, Clock, Served
from tests.web.fixtures import CHEAP_HASHER, SITE, WebData
from web.app import create_app
from web.security import CSP
from web.server import BackgroundServer
from web.users import Role

ROOM = "meeting-a"
OFFER = f"/offers/{SITE}/{ROOM}"
CLIENTS = 8
LOCATION = re.compile(r"^/booking/([A-Za-z0-9_-]{16,})$")


def serve(data: WebData, folder: Path, **market: Any) -> Iterator[Served]:
    """The session's data with a bookings file and a store of this test's own: accepting
    a booking writes to the store."""
    store_path = folder / "store.sqlite"
    shutil.copyfile(data.store_path, store_path)
    section = BookingsSettings(path=folder / "bookings.sqlite", **market)
    storage = data.settings.storage.model_copy(update={"sqlite_path": store_path})
    settings = data.settings.model_copy(update={"bookings": section, "storage": storage})
    data = dataclasses.replace(data, settings=settings, store_path=store_path)
    clock = Clock()
    app = create_app(settings, data.registry, config=data.config, clock=clock,
                     hasher=CHEAP_HASHER)
    with BackgroundServer(app) as server:
        yield Served(data, server, clock)


@pytest.fixture
def market(web_data: WebData, tmp_path: Path) -> Iterator[Served]:
    yield from serve(web_data, tmp_path, requests_per_window=1000)


def windows(client: httpx.Client) -> list[dict[str, str]]:
    offers = client.get("/api/offers").json()
    offer = next(o for o in offers if o["room"] == ROOM)
    found: list[dict[str, str]] = offer["free_windows"]
    return found


def free_windows(base: str) -> list[dict[str, str]]:
    with httpx.Client(base_url=base, timeout=HTTP_TIMEOUT_S) as client:
        return windows(client)


def local(text: str) -> str:
    return dt.datetime.fromisoformat(text).strftime("%Y-%m-%dT%H:%M")


def request_booking(base: str, start: str, end: str, attendance: int = 4,
                    name: str = "Ada Lovelace") -> httpx.Response:
    with httpx.Client(base_url=base, timeout=HTTP_TIMEOUT_S) as client:
        token = CSRF.search(client.get(OFFER).text)
        assert token is not None
        return client.post(f"{OFFER}/book", data={
            "csrf": token[1], "start": start, "end": end, "attendance": str(attendance),
            "name": name, "organisation": "Association des voisins",
            "email": "ada@example.org", "purpose": "Neighbourhood meeting",
        })


def test_market_offers_are_public_with_sheets_and_feeds(market: Served) -> None:
    with market.client() as client:
        page = client.get("/offers")
        assert page.status_code == 200
        assert "Part-Dieu meeting room A" in page.text
        assert page.headers["Content-Security-Policy"] == CSP
        offers = client.get("/api/offers").json()
        assert [o["room"] for o in offers] == [ROOM]  # opt-in: one room offered
        offer = offers[0]
        assert offer["amenity_feature"] == ["step_free_access", "tables", "screen", "wifi"]
        assert offer["public_category"] == "ERP type W, category 5"
        assert offer["free_windows"] and offer["recurring_idle"]
        assert offer["free_now"] in ("free", "not reported")
        assert "count" not in str(offer)
        feed = Calendar.from_ical(client.get(f"/api{OFFER}.ics").content)
        events = list(feed.walk("VEVENT"))
        assert len(events) == len(offer["free_windows"])
        assert {str(e["transp"]) for e in events} == {"TRANSPARENT"}
        assert client.get(f"/offers/{SITE}/meeting-b").status_code == 404  # not offered


def test_market_booking_needs_the_form_token(market: Served) -> None:
    first = free_windows(market.url)[1]
    with httpx.Client(base_url=market.url) as client:
        response = client.post(f"{OFFER}/book", data={
            "csrf": "forged", "start": local(first["start"]), "end": local(first["end"]),
            "attendance": "2", "name": "x", "email": "x@example.org", "purpose": "x"})
    assert response.status_code == 403


@pytest.mark.parametrize(("attendance", "shift_h", "status", "message"), [
    (11, 0, 409, "at most 10"),
    (2, 100, 409, "not inside"),
    (2, -24 * 30, 409, "already started"),
    (2, 0, 422, "is not a date and time"),
])
def test_market_booking_refusals_are_shown(market: Served, attendance: int, shift_h: int,
                                           status: int, message: str) -> None:
    window = free_windows(market.url)[1]
    start = dt.datetime.fromisoformat(window["start"]) + dt.timedelta(hours=shift_h)
    end = dt.datetime.fromisoformat(window["end"]) + dt.timedelta(hours=shift_h)
    text = "next tuesday" if status == 422 else local(start.isoformat())
    response = request_booking(market.url, text, local(end.isoformat()), attendance)
    assert response.status_code == status
    assert message in response.text


def _accept(client: httpx.Client, booking_id: str, decision: str = "accept") -> int:
    page = client.get("/manage/bookings").text
    token = CSRF.search(page)
    assert token is not None
    return client.post(f"/manage/bookings/{booking_id}",
                       data={"csrf": token[1], "decision": decision}).status_code


def test_market_concurrent_clients_never_double_book(market: Served) -> None:
    window = free_windows(market.url)[1]
    start, end = local(window["start"]), local(window["end"])
    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        asked = list(pool.map(lambda i: request_booking(market.url, start, end, 2, f"R{i}"),
                              range(CLIENTS)))
    assert [r.status_code for r in asked] == [303] * CLIENTS  # pending requests may overlap
    ids = [m[1] for r in asked if (m := LOCATION.match(r.headers["location"]))]
    assert len(set(ids)) == CLIENTS
    operators = [market.login(Role.FACILITIES) for _ in range(CLIENTS)]
    clients = [o.__enter__() for o in operators]
    try:
        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            decided = list(pool.map(lambda p: _accept(p[0], p[1]), zip(clients, ids, strict=True)))
    finally:
        for o in operators:
            o.__exit__(None, None, None)
    assert sorted(decided) == [303] + [409] * (CLIENTS - 1)
    with httpx.Client(base_url=market.url) as client:
        assert window not in windows(client)  # the slot disappeared for others
        statuses = {client.get(f"/api/bookings/{i}").json()["status"] for i in ids}
        assert statuses == {"accepted", "pending"}
        accepted = next(i for i in ids if client.get(f"/api/bookings/{i}").json()["status"]
                        == "accepted")
        feed = Calendar.from_ical(client.get(f"/api{OFFER}.ics").content)
        assert "OPAQUE" in {str(e["transp"]) for e in feed.walk("VEVENT")}
        status_page = client.get(f"/booking/{accepted}")
        assert 'data-status="accepted"' in status_page.text
        assert "Ada" not in status_page.text and "R0" not in status_page.text
        ics = Calendar.from_ical(client.get(f"/booking/{accepted}.ics").content)
        assert str(next(iter(ics.walk("VEVENT")))["status"]) == "CONFIRMED"
    late = request_booking(market.url, start, end)
    assert late.status_code == 409
    # the web accept wrote the booking to the store, as `softplace bookings accept` does
    start_ms = int(dt.datetime.fromisoformat(window["start"]).timestamp() * 1000)
    store = SqliteStore(market.data.store_path, create=False)
    try:
        points = store.query(SeriesName.BOOKING, start_ms, start_ms + 1,
                             {"site": SITE, "room": ROOM})
    finally:
        store.close()
    assert len(points) == 1


def test_market_rate_limits_booking_requests(web_data: WebData, tmp_path: Path) -> None:
    for served in serve(web_data, tmp_path, requests_per_window=2):
        window = free_windows(served.url)[1]
        codes = [request_booking(served.url, local(window["start"]), local(window["end"])
                                 ).status_code for _ in range(3)]
        assert codes == [303, 303, 429]


def test_market_ghost_booking_shows_in_the_report_and_personal_data_expires(
    market: Served, tmp_path: Path
) -> None:
    window = free_windows(market.url)[1]
    asked = request_booking(market.url, local(window["start"]), local(window["end"]))
    match = LOCATION.match(asked.headers["location"])
    assert match is not None
    with market.login(Role.MANAGER) as manager:
        assert _accept(manager, match[1]) == 303
    tags = market.data.registry.site(SITE).room(ROOM).tags
    lo = round(dt.datetime.fromisoformat(window["start"]).timestamp() * 1000)
    hi = round(dt.datetime.fromisoformat(window["end"]).timestamp() * 1000)
    store = SqliteStore(market.data.store_path)
    try:  # the sensors saw the room empty all through the booking
        store.write([Sample(SeriesName.ROOM_COUNT, tags,
                            {RoomCountField.COUNT: 0, RoomCountField.SOURCES: 1}, t)
                     for t in range(lo - 600_000, hi, 300_000)])
    finally:
        store.close()
    market.clock.now = hi / 1000 + 86_400  # the next day: the booking's day is the last full one
    day = dt.datetime.fromisoformat(window["start"]).date()
    with market.login(Role.MANAGER) as manager:
        report = manager.get(f"/report?start={day}&end={day}").text
    assert 'id="booked-summary" data-ghost="1"' in report
    assert 'data-room="meeting-a" data-ghost="true"' in report
    with market.login(Role.REGULATOR) as regulator:
        counts = regulator.get("/api/bookings-by-district")
        page = regulator.get("/releases").text
    # the regulator gets the releases' noised, suppressed figures, never an exact count
    cells = counts.json()
    assert cells and all(set(c) >= {"ghost_bookings", "ghost_bookings_low", "booked_used_h"}
                         and not {"booked", "used", "ghost"} & set(c) for c in cells)
    released = [c for c in cells if c["status"] == "released"]
    assert released and all(c["ghost_bookings_low"] <= c["ghost_bookings_high"]
                            for c in released)
    assert all(c["ghost_bookings"] is None for c in cells if c["status"] != "released")
    assert ROOM not in counts.text and "Ada" not in counts.text
    assert 'id="district-bookings"' in page and "ghost bookings" in page
    market.clock.now = hi / 1000 + 40 * 86_400
    with market.login(Role.PRIVACY_OFFICER) as officer:
        privacy = officer.get("/privacy").text
    assert "past the 30-day limit" in privacy
    assert 'id="deletions"' not in privacy
    path = tmp_path / "bookings.sqlite"
    with BookingStore(path) as books:
        assert books.purge_personal(hi + 29 * MS_PER_DAY, 30) == 0
        assert books.purge_personal(hi + 31 * MS_PER_DAY, 30) == 1
        assert books.get(match[1]) is not None
        assert books.get(match[1]).requester is None  # type: ignore[union-attr]
    with market.login(Role.PRIVACY_OFFICER) as officer:  # the officer sees what went, when
        privacy = officer.get("/privacy").text
    assert 'id="deletions"' in privacy and "1 requester record(s)" in privacy
    assert "past the 30-day limit" not in privacy


def test_market_booking_ahead_leaves_the_idle_slot_feed(market: Served) -> None:
    """The booked-time rule through the web app: an accepted booking ahead, as
    `softplace bookings reconcile` stores it, takes its week out of the slot feed."""
    window = free_windows(market.url)[1]  # a window starting where a weekly slot starts
    start = dt.datetime.fromisoformat(window["start"])
    lo = round(start.timestamp() * 1000)
    tags = market.data.registry.site(SITE).room(ROOM).tags

    def excluded() -> list[dt.datetime]:
        with market.login(Role.MANAGER) as manager:
            ics = manager.get(f"/api/sites/{SITE}/slots.ics?room={ROOM}&weeks=4")
        assert ics.status_code == 200, ics.text
        found: list[dt.datetime] = []
        for event in Calendar.from_ical(ics.content).walk("VEVENT"):
            exdate: Any = event.get("EXDATE")
            found += [] if exdate is None else [d.dt for d in exdate.dts]
        return found

    assert excluded() == []
    store = SqliteStore(market.data.store_path)
    try:
        store.write([Sample(SeriesName.BOOKING, tags, {
            "end_ms": lo + 3_600_000, "booked_h": 1.0, "used_h": 0.0, "checked": 0,
            "ghost": 0, "unknown": 0}, lo)])
    finally:
        store.close()
    assert excluded() == [start]
