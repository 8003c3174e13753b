"""The HTML pages (Jinja2) and the login, with its CSRF token and rate limit."""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from bookings import ghosts
from detector.report import build_report
from softplace.timeutil import MS_PER_H
from web import charts, data, market
from web.api import release_download
from web.deps import Ctx, Current, Day, Db, Live, Privacy, Releases, Reports
from web.security import GRANTS, home
from web.users import Session

log = logging.getLogger(__name__)

LOGIN_CSRF_COOKIE = "softplace-login-csrf"
CSRF_FIELD = "csrf"
router = APIRouter(include_in_schema=False)


def page(request: Request, ctx: Ctx, name: str, session: Session | None, **context: Any
         ) -> HTMLResponse:
    grants = GRANTS[session.user.role] if session else frozenset()
    return ctx.templates.TemplateResponse(request, name, {
        "session": session, "grants": grants, "sites": ctx.registry.sites, **context,
    })


@router.get("/healthz")
def healthz() -> dict[str, bool]:
    return {"ok": True}


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, ctx: Ctx, error: str | None = None) -> HTMLResponse:
    # before a session exists, CSRF is a double-submit token: cookie and form must match
    token = secrets.token_urlsafe(32)
    response = page(request, ctx, "login.html", None, csrf=token, error=error)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, httponly=True,
                        secure=ctx.web.secure_cookies, samesite="strict", path="/login")
    return response


@router.post("/login")
def login(
    request: Request, ctx: Ctx, name: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf: Annotated[str, Form(alias=CSRF_FIELD)],
) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf):
        raise HTTPException(403, "the form expired; reload the login page")
    client = f"client:{request.client.host if request.client else '-'}"
    name_key = f"name:{name.lower()}"
    if ctx.limiter.blocked(name_key, client):
        log.warning("login rate limit hit for %r from %s", name, client)
        return Response("too many failed logins; wait and try again", 429,
                        headers={"Retry-After": str(round(ctx.limiter.window_s))})
    user = ctx.users.authenticate(name.lower(), password)
    if user is None:
        ctx.limiter.fail(name_key, client)
        return RedirectResponse("/login?error=1", 303)
    ctx.limiter.succeed(name_key)
    lifetime_ms = round(ctx.web.session_hours * MS_PER_H)
    token, _ = ctx.users.open_session(user, ctx.now_ms(), lifetime_ms)
    response = RedirectResponse(home(user.role), 303)
    response.set_cookie(ctx.cookie, token, max_age=lifetime_ms // 1000, httponly=True,
                        secure=ctx.web.secure_cookies, samesite="strict", path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, ctx: Ctx, session: Current,
           csrf: Annotated[str, Form(alias=CSRF_FIELD)]) -> Response:
    if not hmac.compare_digest(session.csrf, csrf):
        raise HTTPException(403, "bad form token")
    ctx.users.close_session(request.cookies.get(ctx.cookie, ""))
    response = RedirectResponse("/login", 303)
    response.delete_cookie(ctx.cookie, path="/")
    return response


@router.get("/")
def index(session: Current) -> Response:
    return RedirectResponse(home(session.user.role), 303)


@router.get("/report", response_class=HTMLResponse)
def report_page(request: Request, session: Reports, ctx: Ctx, db: Db, site: str | None = None,
                start: Day = None, end: Day = None) -> HTMLResponse:
    placed = ctx.site(site)
    first, last = ctx.period(placed, start, end)
    branch = data.branch_report(db, ctx.registry, placed.id, first, last, ctx.detector)
    booked = market.period_ghosts(ctx, request.app.state.market, db, placed, first, last)
    return page(request, ctx, "report.html", session, site=placed, branch=branch,
                report=branch.report, figures=charts.report_charts(branch), booked=booked,
                booked_summary=ghosts.summarise(booked))


@router.get("/report.csv")
def report_csv(_: Reports, ctx: Ctx, db: Db, site: str | None = None, start: Day = None,
               end: Day = None) -> Response:
    placed = ctx.site(site)
    first, last = ctx.period(placed, start, end)
    report = build_report(db, ctx.registry, placed.id, first, last, settings=ctx.detector)
    return Response(data.report_csv(report), media_type="text/csv", headers={
        "Content-Disposition": f'attachment; filename="softplace-{placed.id}-{first}-{last}.csv"',
    })


@router.get("/live", response_class=HTMLResponse)
def live_page(request: Request, session: Live, ctx: Ctx, db: Db, site: str | None = None
              ) -> HTMLResponse:
    placed = ctx.site(site)
    state = data.live_state(db, placed, ctx.now_ms(), ctx.detector)
    return page(request, ctx, "live.html", session, site=placed, live=state,
                poll_ms=round(ctx.web.live_poll_s * 1000))


@router.get("/privacy", response_class=HTMLResponse)
def privacy_page(request: Request, session: Privacy, ctx: Ctx, db: Db) -> HTMLResponse:
    overview = data.privacy_overview(db, ctx.settings, ctx.now_ms(),
                                     request.app.state.market.config)
    return page(request, ctx, "privacy.html", session, overview=overview)


@router.get("/releases", response_class=HTMLResponse)
def releases_page(request: Request, session: Releases, ctx: Ctx, db: Db) -> HTMLResponse:
    return page(request, ctx, "releases.html", session,
                releases=data.releases(ctx.web.releases_dir),
                bookings=market.district_bookings(ctx, request.app.state.market, db))


@router.get("/releases/{release_id}/{name}")
def release_file(_: Releases, ctx: Ctx, release_id: str, name: str) -> FileResponse:
    return release_download(ctx, release_id, name)
