"""The marketplace in the web app: public offer pages, JSON and iCalendar feeds, booking
forms and status links (no login), and the operator's accept/decline page.

"Free now" rule (``bookings.core.free_now``): a room shows "free" only when the stored
counts say nobody was there during the whole ``free_quiet_minutes`` (30) before the last
whole ``free_step_minutes`` (15) step; otherwise "not reported". Never a count, never
"occupied", and the state refers to a moment up to a step old.
"""

from __future__ import annotations

import csv
import datetime as dt
import hmac
import logging
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from bookings import ghosts
from bookings.core import (
    BookingRefusedError,
    BookingRequest,
    FreeNow,
    Requester,
    Status,
    WeeklySlot,
    Window,
    check_request,
    concrete_windows,
    free_now,
    subtract,
)
from bookings.feeds import FeedRoom, booking_ical, offers_ical
from bookings.settings import BookingsSettings
from bookings.store import Booking, BookingStore
from detector.report import SlotRow, build_report
from softplace.errors import StorageError, UnknownNameError
from softplace.registry import PlacedRoom, Site
from softplace.storage.base import Store
from softplace.timeutil import MS_PER_DAY
from web import data
from web.deps import Ctx, Db, Releases, Reports, WebContext
from web.security import LoginLimiter

log = logging.getLogger(__name__)

BOOK_CSRF_COOKIE = "softplace-book-csrf"
OFFERS_PATH = "/offers"
ICS = "text/calendar"
router = APIRouter(include_in_schema=True)


SLOTS_TTL_S = 300.0  # the recurring slots come from seven full past days: stable for hours


@dataclass(slots=True)
class Market:
    settings: BookingsSettings
    path: Path
    limiter: LoginLimiter  # reused as a plain sliding-window counter per client
    config: Path | None  # the settings file, which stages' local files sit next to
    _slots: dict[tuple[str, dt.date, dt.date], tuple[float, list[SlotRow]]] = field(
        default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def idle_slots(self, ctx: WebContext, db: Store, site: Site) -> list[SlotRow]:
        """The detector's recurring idle slots of the last seven full days, cached a few
        minutes: every public page and booking needs them and the report takes ~0.3 s."""
        first, last = ctx.period(site, None, None)
        key, now = (site.id, first, last), ctx.clock()
        with self._lock:
            cached = self._slots.get(key)
        if cached is not None and now - cached[0] < SLOTS_TTL_S:
            return cached[1]
        report = build_report(db, ctx.registry, site.id, first, last, settings=ctx.detector)
        with self._lock:
            self._slots[key] = (now, report.idle_slots)
        return report.idle_slots


def market(request: Request) -> Market:
    found: Market = request.app.state.market
    return found


Mkt = Annotated[Market, Depends(market)]


def booking_store(mkt: Mkt) -> Iterator[BookingStore]:
    opened = BookingStore(mkt.path)
    try:
        yield opened
    finally:
        opened.close()


Books = Annotated[BookingStore, Depends(booking_store)]


class SlotOut(BaseModel):
    weekday: str
    start: str
    end: str


class WindowOut(BaseModel):
    start: dt.datetime
    end: dt.datetime

    @classmethod
    def of(cls, window: Window, tz: dt.tzinfo) -> WindowOut:
        return cls(start=dt.datetime.fromtimestamp(window.start_ms / 1000, tz),
                   end=dt.datetime.fromtimestamp(window.end_ms / 1000, tz))


class OfferOut(BaseModel):
    """A room's space sheet (schema.org ``Place`` names) and when it can be booked."""

    site: str
    room: str
    url: str
    ical: str
    name: str
    description: str
    amenity_feature: list[str]
    seats: int | None
    maximum_attendee_capacity: int
    area_m2: float
    public_category: str | None
    house_rules: str
    email: str
    telephone: str
    recurring_idle: list[SlotOut]
    free_windows: list[WindowOut]
    free_now: FreeNow
    free_now_as_of: dt.datetime


@dataclass(frozen=True, slots=True)
class RoomOffer:
    placed: PlacedRoom
    out: OfferOut
    free: list[Window]
    booked: list[Booking]


def offered_rooms(site: Site) -> list[PlacedRoom]:
    return [p for p in site.placed_rooms() if p.room.offer is not None]


def _category(placed: PlacedRoom) -> str | None:
    offer = placed.room.offer
    if offer is None or offer.public_category is None:
        return None
    cat = offer.public_category
    return f"ERP type {cat.type}, category {cat.category}"


def site_offers(ctx: WebContext, mkt: Market, db: Store, books: BookingStore, site: Site,
                only: str | None = None) -> list[RoomOffer]:
    rooms = [p for p in offered_rooms(site) if only is None or p.room.id == only]
    if not rooms:
        return []
    idle = mkt.idle_slots(ctx, db, site)
    now_ms = ctx.now_ms()
    found: list[RoomOffer] = []
    for placed in rooms:
        offer = placed.room.offer
        assert offer is not None
        slots = [WeeklySlot(s.weekday, s.start, s.end) for s in idle
                 if s.room == placed.room.id]
        booked = books.accepted(site.id, placed.room.id)
        free = subtract(concrete_windows(slots, site.tz, now_ms, mkt.settings.horizon_days),
                        [b.window for b in booked])
        free = [w for w in free if w.minutes >= mkt.settings.min_minutes]
        hold = ghosts.hold_ms_of(site, placed.room.id)
        quiet_ms = (mkt.settings.free_quiet_minutes + mkt.settings.free_step_minutes) * 60_000
        state = free_now(
            ghosts.room_readings(db, site, placed.room.id, now_ms - quiet_ms, now_ms, hold),
            now_ms, quiet_minutes=mkt.settings.free_quiet_minutes,
            step_minutes=mkt.settings.free_step_minutes, hold_ms=hold,
        )
        url = f"{OFFERS_PATH}/{site.id}/{placed.room.id}"
        found.append(RoomOffer(placed, OfferOut(
            site=site.id, room=placed.room.id, url=url, ical=f"/api{url}.ics", name=offer.name,
            description=offer.description,
            amenity_feature=[a.value for a in offer.amenity_feature], seats=offer.seats,
            maximum_attendee_capacity=placed.room.attendance_limit,
            area_m2=placed.room.area_m2, public_category=_category(placed),
            house_rules=offer.house_rules, email=offer.email, telephone=offer.telephone,
            recurring_idle=[SlotOut(weekday=s.weekday, start=s.start, end=s.end)
                            for s in slots],
            free_windows=[WindowOut.of(w, site.tz) for w in free],
            free_now=state.state,
            free_now_as_of=dt.datetime.fromtimestamp(state.as_of_ms / 1000, site.tz),
        ), free, [b for b in booked if b.window.end_ms > now_ms]))
    return found


def _room_offer(ctx: WebContext, mkt: Market, db: Store, books: BookingStore, site_id: str,
                room: str) -> RoomOffer:
    site = ctx.site(site_id)
    found = site_offers(ctx, mkt, db, books, site, room)
    if not found:
        raise HTTPException(404, f"room {room!r} is not offered")
    return found[0]


def _page(request: Request, ctx: WebContext, name: str, status: int = 200, **context: Any
          ) -> HTMLResponse:
    return ctx.templates.TemplateResponse(request, name, {
        "session": None, "grants": frozenset(), "sites": ctx.registry.sites, **context,
    }, status_code=status)


# -- public pages and feeds ----------------------------------------------------------------


@router.get(OFFERS_PATH, response_class=HTMLResponse, include_in_schema=False)
def offers_page(request: Request, ctx: Ctx, mkt: Mkt, db: Db, books: Books) -> HTMLResponse:
    offers = [o for site in ctx.registry.sites for o in site_offers(ctx, mkt, db, books, site)]
    return _page(request, ctx, "offers.html", offers=offers, settings=mkt.settings)


def _form_page(request: Request, ctx: WebContext, mkt: Market, offer: RoomOffer,
               status: int = 200, error: str | None = None,
               values: dict[str, str] | None = None) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = _page(request, ctx, "offer.html", status, offer=offer.out, csrf=token,
                     error=error, values=values or dict(request.query_params),
                     settings=mkt.settings)
    response.set_cookie(BOOK_CSRF_COOKIE, token, max_age=3600, httponly=True,
                        secure=ctx.web.secure_cookies, samesite="strict", path=OFFERS_PATH)
    return response


@router.get(OFFERS_PATH + "/{site}/{room}", response_class=HTMLResponse,
            include_in_schema=False)
def offer_page(request: Request, ctx: Ctx, mkt: Mkt, db: Db, books: Books, site: str,
               room: str) -> HTMLResponse:
    return _form_page(request, ctx, mkt, _room_offer(ctx, mkt, db, books, site, room))


def _local(text: str, tz: dt.tzinfo) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text).replace(tzinfo=tz)
    except ValueError as err:
        raise BookingRefusedError(f"{text!r} is not a date and time like 2026-11-24T14:00") from err


@router.post(OFFERS_PATH + "/{site}/{room}/book", include_in_schema=False)
def book(
    request: Request, ctx: Ctx, mkt: Mkt, db: Db, books: Books, site: str, room: str,
    start: Annotated[str, Form(max_length=32)], end: Annotated[str, Form(max_length=32)],
    attendance: Annotated[int, Form(ge=1, le=10_000)], name: Annotated[str, Form(max_length=120)],
    email: Annotated[str, Form(max_length=254)], purpose: Annotated[str, Form(max_length=1000)],
    csrf: Annotated[str, Form()], organisation: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    expected = request.cookies.get(BOOK_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf):
        raise HTTPException(403, "the form expired; reload the page")
    client = f"client:{request.client.host if request.client else '-'}"
    if mkt.limiter.blocked(client):
        log.warning("booking rate limit hit from %s", client)
        return Response("too many booking requests; wait and try again", 429,
                        headers={"Retry-After": str(round(mkt.limiter.window_s))})
    mkt.limiter.fail(client)
    offer = _room_offer(ctx, mkt, db, books, site, room)
    values = {"start": start, "end": end, "attendance": str(attendance), "name": name,
              "organisation": organisation, "email": email, "purpose": purpose}
    tz = offer.placed.site.tz
    try:
        booking_request = BookingRequest(
            site=site, room=room, start=_local(start, tz), end=_local(end, tz),
            attendance=attendance, requester=Requester(
                name=name, organisation=organisation, email=email, purpose=purpose),
        )
    except (ValidationError, BookingRefusedError) as err:
        message = err.errors()[0]["msg"] if isinstance(err, ValidationError) else str(err)
        return _form_page(request, ctx, mkt, offer, 422, message, values)
    now_ms = ctx.now_ms()

    def check(accepted: list[Window]) -> None:
        check_request(
            booking_request.window, attendance, limit=offer.placed.room.attendance_limit,
            offered=offer.free, accepted=accepted, now_ms=now_ms,
            min_minutes=mkt.settings.min_minutes, max_minutes=mkt.settings.max_minutes,
        )

    books.purge_personal(now_ms, mkt.settings.personal_data_days)
    try:
        booking = books.request(booking_request, now_ms, check)
    except BookingRefusedError as err:
        return _form_page(request, ctx, mkt, offer, 409, str(err), values)
    log.info("booking %s requested for %s/%s", booking.id, site, room)
    return RedirectResponse(f"/booking/{booking.id}", 303)


class BookingOut(BaseModel):
    id: str
    status: Status
    site: str
    room: str
    name: str
    start: dt.datetime
    end: dt.datetime
    attendance: int
    ical: str


def _booking_out(ctx: WebContext, booking: Booking) -> BookingOut:
    site = ctx.site(booking.site)
    try:
        offer = site.room(booking.room).room.offer
    except UnknownNameError:  # the room left the registry after the booking
        offer = None
    window = WindowOut.of(booking.window, site.tz)
    return BookingOut(
        id=booking.id, status=booking.status, site=booking.site, room=booking.room,
        name=offer.name if offer else booking.room, start=window.start, end=window.end,
        attendance=booking.attendance, ical=f"/booking/{booking.id}.ics",
    )


def _booking(books: BookingStore, booking_id: str) -> Booking:
    found = books.get(booking_id)
    if found is None:
        raise HTTPException(404, "no such booking")
    return found


@router.get("/booking/{booking_id}.ics", response_class=Response, include_in_schema=False)
def booking_ics(request: Request, ctx: Ctx, books: Books, booking_id: str) -> Response:
    booking = _booking(books, booking_id)
    out = _booking_out(ctx, booking)
    body = booking_ical(booking, out.name, f"{out.site} / {out.room}",
                        str(request.url_for("booking_status", booking_id=booking.id)),
                        ctx.now_ms())
    return Response(body, media_type=ICS)


@router.get("/booking/{booking_id}", response_class=HTMLResponse, include_in_schema=False)
def booking_status(request: Request, ctx: Ctx, books: Books, booking_id: str) -> HTMLResponse:
    """The requester's stable link: the id is unguessable; it shows no personal data."""
    return _page(request, ctx, "booking.html", booking=_booking_out(ctx, _booking(books,
                                                                                 booking_id)))


@router.get("/api/offers", tags=["marketplace"])
def api_offers(ctx: Ctx, mkt: Mkt, db: Db, books: Books) -> list[OfferOut]:
    """Every offered room with its sheet, free windows and free-now state (no login)."""
    return [o.out for site in ctx.registry.sites
            for o in site_offers(ctx, mkt, db, books, site)]


@router.get("/api/offers.ics", tags=["marketplace"], response_class=Response,
            responses={200: {"content": {ICS: {}}}})
def api_offers_ics(ctx: Ctx, mkt: Mkt, db: Db, books: Books) -> Response:
    """Every offered room's free windows and accepted bookings, one calendar (no login)."""
    offers = [o for site in ctx.registry.sites for o in site_offers(ctx, mkt, db, books, site)]
    return Response(offers_ical([_feed(o) for o in offers], ctx.now_ms(), "all rooms"),
                    media_type=ICS)


def _feed(offer: RoomOffer) -> FeedRoom:
    return FeedRoom(offer.out.site, offer.out.room, offer.out.name, offer.free, offer.booked)


@router.get("/api/offers/{site}/{room}.ics", tags=["marketplace"], response_class=Response,
            responses={200: {"content": {ICS: {}}}})
def api_offer_ics(ctx: Ctx, mkt: Mkt, db: Db, books: Books, site: str, room: str) -> Response:
    offer = _room_offer(ctx, mkt, db, books, site, room)
    return Response(offers_ical([_feed(offer)], ctx.now_ms(), offer.out.name),
                    media_type=ICS)


@router.get("/api/bookings/{booking_id}", tags=["marketplace"])
def api_booking(ctx: Ctx, books: Books, booking_id: str) -> BookingOut:
    return _booking_out(ctx, _booking(books, booking_id))


# -- the operator's side -------------------------------------------------------------------


@router.get("/manage/bookings", response_class=HTMLResponse, include_in_schema=False)
def manage_page(request: Request, session: Reports, ctx: Ctx, books: Books,
                error: str | None = None) -> HTMLResponse:
    from web.security import GRANTS

    rows = [(b, _booking_out(ctx, b)) for b in books.all()]
    return ctx.templates.TemplateResponse(request, "bookings.html", {
        "session": session, "grants": GRANTS[session.user.role], "sites": ctx.registry.sites,
        "rows": rows, "error": error,
    })


@router.post("/manage/bookings/{booking_id}", include_in_schema=False)
def decide(session: Reports, ctx: Ctx, mkt: Mkt, db: Db, books: Books, booking_id: str,
           decision: Annotated[str, Form(pattern="^(accept|decline)$")],
           csrf: Annotated[str, Form()]) -> Response:
    if not hmac.compare_digest(session.csrf, csrf):
        raise HTTPException(403, "bad form token")
    now_ms = ctx.now_ms()
    try:
        booking = books.decide(booking_id, decision == "accept", now_ms)
    except KeyError as err:
        raise HTTPException(404, "no such booking") from err
    except BookingRefusedError as err:
        return Response(str(err), 409)
    log.info("booking %s: %s by %s", booking_id, decision, session.user.name)
    if booking.status is Status.ACCEPTED:  # the detector and the releases read the store
        try:
            ghosts.publish_all(db, ctx.registry, [booking], mkt.settings, now_ms)
        except StorageError as err:  # the decision stands; `bookings reconcile` writes it
            log.warning("booking %s not written to the store yet: %s", booking_id, err)
    return RedirectResponse("/manage/bookings", 303)


# -- ghost bookings, for the report and the regulator ----------------------------------------


class DistrictBookings(BaseModel):
    """A release's district cell, bookings only: ghost bookings and booked-and-used hours,
    noised and suppressed with the release (None where the cell is hidden). The regulator
    sees these, never an exact count: whether a booked room was used is presence."""

    release: str  # the release folder, as listed on /releases
    district: str
    period: str
    status: str
    ghost_bookings: float | None
    ghost_bookings_low: float | None
    ghost_bookings_high: float | None
    booked_used_h: float | None
    booked_used_h_low: float | None
    booked_used_h_high: float | None


BOOKING_COLUMNS = ("ghost_bookings", "booked_used_h")


def _figure(row: dict[str, str], name: str) -> float | None:
    value = row.get(name, "")
    return float(value) if value else None


def district_bookings(ctx: WebContext, mkt: Market, db: Store) -> list[DistrictBookings]:
    """The district cells of every exported release, newest release first (``mkt`` and
    ``db`` are not read: the figures come from the release files alone)."""
    rows: list[DistrictBookings] = []
    folder = ctx.web.releases_dir
    for info in data.releases(folder):
        path = next((data.release_file(folder, info.id, name) for name in info.files
                     if name.endswith(".csv")), None)
        if path is None:
            continue
        with path.open(encoding="utf-8", newline="") as handle:
            cells = [r for r in csv.DictReader(handle) if r.get("level") == "district"]
        rows.extend(DistrictBookings(
            release=info.id, district=r["area"], period=r["period"], status=r["status"],
            **{f"{name}{suffix}": _figure(r, f"{name}{suffix}")
               for name in BOOKING_COLUMNS for suffix in ("", "_low", "_high")},
        ) for r in cells)
    return rows


@router.get("/api/bookings-by-district", tags=["marketplace"])
def api_district_bookings(_: Releases, ctx: Ctx, mkt: Mkt, db: Db) -> list[DistrictBookings]:
    """Ghost bookings and booked-and-used hours per district, as the releases carry them
    (noised, suppressed): what the regulator sees."""
    return district_bookings(ctx, mkt, db)


def period_ghosts(ctx: WebContext, mkt: Market, db: Store, site: Site, first: dt.date,
                  last: dt.date) -> list[ghosts.BookingUse]:
    lo = round(dt.datetime.combine(first, dt.time(0), site.tz).timestamp() * 1000)
    hi = round(dt.datetime.combine(last, dt.time(0), site.tz).timestamp() * 1000) + MS_PER_DAY
    with BookingStore(mkt.path) as books:
        accepted = [b for b in books.accepted(site.id)
                    if lo <= b.window.start_ms < hi]
    return ghosts.uses(db, site, accepted, mkt.settings, ctx.now_ms())
