"""The ASGI app: pages (Jinja2) and a JSON API (FastAPI), behind sessions and roles.

``create_app`` takes the validated settings, the registry and a clock; each request opens
the configured store (SQLite or InfluxDB) and closes it after, so the app holds no
connection between requests and shows what the services wrote a moment ago.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from argon2 import PasswordHasher
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from bookings.settings import BookingsSettings
from softplace.observe import WebMetrics
from softplace.registry import Registry
from softplace.settings import KernelSettings
from web import api, charts, market, pages
from web.deps import Clock, Forbidden, LoginRequired, WebContext
from web.security import HSTS, SECURITY_HEADERS, Area, LoginLimiter
from web.settings import WebSettings
from web.users import UserStore

HERE = Path(__file__).resolve().parent
API_PREFIX = "/api/"
STATIC_PREFIX = "/static/"
UNROUTED = "unrouted"  # the route label of a request no route matched (a 404)


def _utc_text(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M")


def create_app(
    settings: KernelSettings, registry: Registry, *, config: Path | None = None,
    clock: Clock = time.time, hasher: PasswordHasher | None = None,
    metrics: WebMetrics | None = None,
) -> FastAPI:
    """The app; ``hasher`` defaults to argon2-cffi's (tests pass a cheaper one);
    ``metrics``, when given, counts and times every answer (``softplace web`` serves them
    on ``observe.port``, apart from the app's public port)."""
    section = settings.section(WebSettings)
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.globals.update(Area=Area, charts=charts)
    templates.env.filters["utc"] = _utc_text
    ctx = WebContext(
        settings, registry, UserStore(section.users_file(config), hasher),
        LoginLimiter(section.login_attempts, section.login_window_s, clock), templates, clock,
    )
    app = FastAPI(
        title="SoftPlace", version="1", openapi_url="/api/openapi.json", docs_url=None,
        redoc_url=None,  # their pages load scripts from a CDN
        description="Sites, rooms, live state, reports, intervals, idle slots and releases."
        " Every route needs a session cookie (log in at /login); each role sees its own,"
        " except the marketplace's offers, feeds and booking status (public).",
    )
    app.state.ctx = ctx
    booking_section = settings.section(BookingsSettings)
    app.state.market = market.Market(
        booking_section, booking_section.file(config),
        LoginLimiter(booking_section.requests_per_window, booking_section.request_window_s, clock),
        config,
    )
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(market.router)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if section.secure_cookies:
            response.headers[HSTS[0]] = HSTS[1]
        if not request.url.path.startswith(STATIC_PREFIX):
            response.headers["Cache-Control"] = "no-store"
        return response

    if metrics is not None:
        @app.middleware("http")
        async def measured(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            started = time.perf_counter()
            response = await call_next(request)
            route = request.scope.get("route")
            metrics.observe(getattr(route, "path", UNROUTED), request.method,
                            response.status_code, time.perf_counter() - started)
            return response

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, _exc: LoginRequired) -> Response:
        if request.url.path.startswith(API_PREFIX):
            return JSONResponse({"detail": "login required"}, 401)
        return RedirectResponse("/login", 303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, _exc: Forbidden) -> Response:
        if request.url.path.startswith(API_PREFIX):
            return JSONResponse({"detail": "not for this role"}, 403)
        return templates.TemplateResponse(request, "error.html", {
            "session": None, "title": "Not for this role",
            "message": "Your role does not include this page.",
        }, status_code=403)

    return app
