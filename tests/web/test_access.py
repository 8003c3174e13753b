"""Accounts, sessions, CSRF, the login rate limit, security headers and, route by route,
what each role may open."""

from __future__ import annotations

import re

import pytest

from tests.web.conftest import CSRF, Served, login
from tests.web.fixtures import CHEAP_HASHER, FIRST, LAST, PASSWORD, SITE, USERS
from web.security import CSP
from web.users import Role, UserStore

Q = f"start={FIRST}&end={LAST}"
# route -> the roles that may open it; every other role gets 403
ROUTES: dict[str, frozenset[Role]] = {
    "/live": frozenset({Role.FACILITIES}),
    f"/report?{Q}": frozenset({Role.FACILITIES, Role.MANAGER}),
    f"/report.csv?{Q}": frozenset({Role.FACILITIES, Role.MANAGER}),
    "/privacy": frozenset({Role.PRIVACY_OFFICER}),
    "/releases": frozenset({Role.PRIVACY_OFFICER, Role.REGULATOR}),
    "/api/sites": frozenset({Role.FACILITIES, Role.MANAGER}),
    f"/api/sites/{SITE}/rooms": frozenset({Role.FACILITIES, Role.MANAGER}),
    f"/api/sites/{SITE}/live": frozenset({Role.FACILITIES}),
    f"/api/sites/{SITE}/report?{Q}": frozenset({Role.FACILITIES, Role.MANAGER}),
    f"/api/sites/{SITE}/intervals?{Q}": frozenset({Role.FACILITIES, Role.MANAGER}),
    f"/api/sites/{SITE}/slots?{Q}": frozenset({Role.FACILITIES, Role.MANAGER}),
    f"/api/sites/{SITE}/slots.ics?{Q}": frozenset({Role.FACILITIES, Role.MANAGER}),
    "/api/releases": frozenset({Role.PRIVACY_OFFICER, Role.REGULATOR}),
    "/manage/bookings": frozenset({Role.FACILITIES, Role.MANAGER}),
    "/api/bookings-by-district": frozenset({Role.PRIVACY_OFFICER, Role.REGULATOR}),
}
# the marketplace's offers and feeds are public (tests/web/test_market.py); a booking's
# status is public to whoever holds its unguessable id
PUBLIC = {"/api/offers", "/api/offers.ics", f"/api/offers/{SITE}/meeting-a.ics"}
PUBLIC_PATHS = {"/api/offers", "/api/offers.ics", "/api/offers/{site}/{room}.ics",
                "/api/bookings/{booking_id}"}
CASES = [(route, role) for route in ROUTES for role in Role]


@pytest.mark.parametrize(("route", "role"), CASES, ids=[f"{r.value}:{p}" for p, r in CASES])
def test_access_route_is_open_to_its_roles_only(served: Served, route: str, role: Role) -> None:
    with served.login(role) as client:
        status = client.get(route).status_code
    assert status == (200 if role in ROUTES[route] else 403)


@pytest.mark.parametrize("route", list(ROUTES))
def test_access_route_without_session_is_refused(served: Served, route: str) -> None:
    with served.client() as client:
        response = client.get(route)
    if route.startswith("/api/"):
        assert response.status_code == 401
    else:
        assert response.status_code == 303
        assert response.headers["location"] == "/login"


@pytest.mark.parametrize("route", sorted(PUBLIC))
def test_access_public_route_needs_no_session(served: Served, route: str) -> None:
    with served.client() as client:
        assert client.get(route).status_code == 200


def test_access_every_api_route_is_in_the_matrix(served: Served) -> None:
    with served.client() as client:
        spec = client.get("/api/openapi.json").json()
    paths = set(spec["paths"])
    covered = {re.sub(r"\?.*", "", r).replace(SITE, "{site}") for r in ROUTES}
    downloads = {"/api/releases/{release_id}/{name}"}  # tested in test_releases
    assert paths - downloads - PUBLIC_PATHS <= covered
    assert spec["components"]["schemas"]["Report"]["properties"]["under_used"]


def test_access_login_redirects_each_role_home(served: Served) -> None:
    homes = {Role.FACILITIES: "/live", Role.MANAGER: "/report",
             Role.PRIVACY_OFFICER: "/privacy", Role.REGULATOR: "/releases"}
    for role, page in homes.items():
        with served.client() as client:
            assert login(client, USERS[role], PASSWORD).headers["location"] == page


def test_access_wrong_password_opens_no_session(served: Served) -> None:
    with served.client() as client:
        response = login(client, USERS[Role.MANAGER], "not the password at all")
        assert response.headers["location"] == "/login?error=1"
        assert client.get("/api/sites").status_code == 401


def test_access_login_without_csrf_token_is_refused(served: Served) -> None:
    with served.client() as client:
        client.get("/login")
        response = client.post("/login", data={
            "name": USERS[Role.MANAGER], "password": PASSWORD, "csrf": "forged"})
    assert response.status_code == 403


def test_access_logout_needs_the_session_csrf_token(served: Served) -> None:
    with served.login(Role.MANAGER) as client:
        assert client.post("/logout", data={"csrf": "forged"}).status_code == 403
        assert client.get("/api/sites").status_code == 200
        token = CSRF.search(client.get(f"/report?{Q}").text)
        assert token is not None
        assert client.post("/logout", data={"csrf": token[1]}).status_code == 303
        assert client.get("/api/sites").status_code == 401


def test_access_session_expires(fresh: Served) -> None:
    with fresh.login(Role.MANAGER) as client:
        assert client.get("/api/sites").status_code == 200
        fresh.clock.now += fresh.data.settings.web.session_hours * 3600 + 1
        assert client.get("/api/sites").status_code == 401


def test_access_login_is_rate_limited_per_user_name(fresh: Served) -> None:
    limit = fresh.data.settings.web.login_attempts
    name = USERS[Role.REGULATOR]
    with fresh.client() as client:
        for _ in range(limit):
            assert login(client, name, "wrong password here").status_code == 303
        # now even the right password is refused until the window has passed
        assert login(client, name, PASSWORD).status_code == 429
        fresh.clock.now += fresh.data.settings.web.login_window_s + 1
        assert login(client, name, PASSWORD).status_code == 303


def test_access_security_headers_and_cookie_flags(served: Served) -> None:
    with served.client() as client:
        page = client.get("/login")
        response = login(client, USERS[Role.MANAGER], PASSWORD)
    assert page.headers["content-security-policy"] == CSP
    assert "unsafe-inline" not in CSP and "script-src 'self'" in CSP
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert "secure" not in cookie  # this app is configured for plain-HTTP localhost
    assert "<script>" not in page.text and " style=" not in page.text


def test_access_pages_carry_no_inline_script_or_style(served: Served) -> None:
    with served.login(Role.FACILITIES) as client:
        for route in ("/live", f"/report?{Q}"):
            text = client.get(route).text
            assert not re.search(r"<script(?![^>]*\bsrc=)", text), route
            assert " style=" not in text and "<style" not in text, route
            assert "http://" not in text and "https://" not in text, route  # no CDN


def test_access_users_file_keeps_argon2_hashes_and_no_session_token(served: Served) -> None:
    path = served.data.config.parent / "web-users.sqlite"
    with served.client() as client:
        login(client, USERS[Role.MANAGER], PASSWORD)
        token = str(client.cookies.get("softplace-session"))
    raw = path.read_bytes() + path.with_name(path.name + "-wal").read_bytes()
    assert b"$argon2id$" in raw
    assert PASSWORD.encode() not in raw and token.encode() not in raw


def test_access_user_store_refuses_short_password_and_duplicates(tmp_path: object) -> None:
    from pathlib import Path

    from web.users import AccountError

    with UserStore(Path(str(tmp_path)) / "u.sqlite", CHEAP_HASHER) as users:
        with pytest.raises(AccountError, match="at least"):
            users.add("ana", Role.MANAGER, "short")
        users.add("ana", Role.MANAGER, PASSWORD)
        with pytest.raises(AccountError, match="exists"):
            users.add("ana", Role.REGULATOR, PASSWORD)
        assert users.authenticate("ana", PASSWORD) is not None
        assert users.authenticate("ana", PASSWORD + "x") is None
        assert users.authenticate("nobody", PASSWORD) is None
