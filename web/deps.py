"""What every route depends on: the app's context, the session and its grants, the store."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request
from fastapi.templating import Jinja2Templates

from detector.settings import DetectorSettings
from softplace.errors import UnknownNameError
from softplace.registry import Registry, Site
from softplace.settings import KernelSettings
from softplace.storage import open_store
from softplace.storage.base import Store
from softplace.timeutil import s_to_ms
from web.security import GRANTS, Area, LoginLimiter
from web.settings import WebSettings
from web.users import Session, UserStore

SESSION_COOKIE_SECURE = "__Host-softplace-session"  # the prefix makes browsers insist on it
SESSION_COOKIE_PLAIN = "softplace-session"
DEFAULT_DAYS = 7
MAX_PERIOD_DAYS = 400
Clock = Callable[[], float]


class LoginRequired(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by the auth dependency; HTML gets a redirect to the login page, the API 401."""


class Forbidden(Exception):  # noqa: N818
    """The user's role has no grant for this page or route."""


@dataclass(slots=True)
class WebContext:
    settings: KernelSettings
    registry: Registry
    users: UserStore
    limiter: LoginLimiter
    templates: Jinja2Templates
    clock: Clock = time.time
    web: WebSettings = field(init=False)
    detector: DetectorSettings = field(init=False)

    def __post_init__(self) -> None:
        self.web = self.settings.section(WebSettings)
        self.detector = self.settings.section(DetectorSettings)

    @property
    def cookie(self) -> str:
        return SESSION_COOKIE_SECURE if self.web.secure_cookies else SESSION_COOKIE_PLAIN

    def now_ms(self) -> int:
        return s_to_ms(self.clock())

    def site(self, site_id: str | None) -> Site:
        try:
            return self.registry.site(site_id) if site_id else self.registry.sites[0]
        except UnknownNameError as err:
            raise HTTPException(404, str(err)) from err

    def period(self, site: Site, start: dt.date | None, end: dt.date | None
               ) -> tuple[dt.date, dt.date]:
        """The last seven full local days by default; a period ends on or after its start."""
        if end is None:
            end = dt.datetime.fromtimestamp(self.clock(), site.tz).date() - dt.timedelta(days=1)
        if start is None:
            start = end - dt.timedelta(days=DEFAULT_DAYS - 1)
        if end < start or (end - start).days > MAX_PERIOD_DAYS:
            raise HTTPException(422, f"a period from {start} to {end} is refused")
        return start, end


def context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


Ctx = Annotated[WebContext, Depends(context)]


def current(request: Request, ctx: Ctx) -> Session:
    token = request.cookies.get(ctx.cookie)
    session = ctx.users.session(token, ctx.now_ms()) if token else None
    if session is None:
        raise LoginRequired
    return session


Current = Annotated[Session, Depends(current)]


def allow(*areas: Area) -> Callable[[Session], Session]:
    def check(session: Current) -> Session:
        if not GRANTS[session.user.role] & set(areas):
            raise Forbidden
        return session
    return check


def store(ctx: Ctx) -> Iterator[Store]:
    opened = open_store(ctx.settings, apply_retention=False)  # it writes accepted bookings only
    try:
        yield opened
    finally:
        opened.close()


Reports = Annotated[Session, Depends(allow(Area.REPORTS))]
Live = Annotated[Session, Depends(allow(Area.LIVE))]
Places = Annotated[Session, Depends(allow(Area.REPORTS, Area.LIVE))]
Privacy = Annotated[Session, Depends(allow(Area.PRIVACY))]
Releases = Annotated[Session, Depends(allow(Area.RELEASES))]
Db = Annotated[Store, Depends(store)]
Day = Annotated[dt.date | None, Query(description="local day, YYYY-MM-DD")]
