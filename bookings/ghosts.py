"""Accepted bookings compared with the stored room counts: used, ghost or unknown, and
published to the store as the ``booking`` series (room and times, never who asked), which
the detector's report and the regulator's releases read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bookings.core import Reading, Status, Use, booking_use
from bookings.settings import BookingsSettings
from bookings.store import Booking
from softplace.registry import Registry, Site
from softplace.schema import BookingField, RoomCountField, SeriesName
from softplace.storage.base import Sample, Store

DEFAULT_HOLD_MS = 15 * 60_000  # a reading holds at most this long when the room sets none


def room_readings(store: Store, site: Site, room: str, lo_ms: int, hi_ms: int,
                  hold_ms: int) -> list[Reading]:
    """The room's counts in [lo, hi), plus the ones that may still hold at ``lo``."""
    placed = site.room(room)
    tags = {"site": site.id, "room": placed.room.id}
    return [
        Reading(s.time_ms, float(s.fields.get(RoomCountField.COUNT, 0) or 0))
        for s in store.query(SeriesName.ROOM_COUNT, lo_ms - hold_ms, hi_ms, tags)
    ]


def hold_ms_of(site: Site, room: str) -> int:
    heartbeat = site.room(room).heartbeat_s
    return DEFAULT_HOLD_MS if heartbeat is None else round(heartbeat * 1000)


@dataclass(frozen=True, slots=True)
class BookingUse:
    booking: Booking
    use: Use


@dataclass(frozen=True, slots=True)
class GhostSummary:
    """Counts only: what the report and the regulator's aggregates show."""

    booked: int
    used: int
    ghost: int
    unknown: int
    booked_hours: float
    used_hours: float


def uses(store: Store, site: Site, bookings: Sequence[Booking], settings: BookingsSettings,
         now_ms: int) -> list[BookingUse]:
    """Each accepted booking that has ended, with what the sensors saw during it."""
    found: list[BookingUse] = []
    rooms = {p.room.id for p in site.placed_rooms()}
    for b in bookings:
        if b.window.end_ms > now_ms or b.room not in rooms:  # a room since removed: no counts
            continue
        hold = hold_ms_of(site, b.room)
        readings = room_readings(store, site, b.room, b.window.start_ms, b.window.end_ms, hold)
        found.append(BookingUse(b, booking_use(
            b.window, readings, hold_ms=hold, first_minutes=settings.ghost_first_minutes,
            min_share=settings.ghost_max_share,
        )))
    return found


def summarise(found: Sequence[BookingUse]) -> GhostSummary:
    used = [u for u in found if u.use.ghost is False]
    hours = sum(u.booking.window.minutes for u in found) / 60
    return GhostSummary(
        booked=len(found), used=len(used), ghost=sum(u.use.ghost is True for u in found),
        unknown=sum(u.use.ghost is None for u in found), booked_hours=round(hours, 2),
        used_hours=round(sum(u.booking.window.minutes for u in used) / 60, 2),
    )


def booking_sample(site: Site, booking: Booking, use: Use | None) -> Sample:
    """The booking as a ``booking`` point; ``use`` None: not compared yet (not over)."""
    hours = booking.window.minutes / 60
    checked = use is not None
    return Sample(SeriesName.BOOKING, site.room(booking.room).tags, {
        BookingField.END_MS: booking.window.end_ms, BookingField.BOOKED_H: round(hours, 4),
        BookingField.USED_H: round(hours, 4) if use is not None and use.ghost is False else 0.0,
        BookingField.CHECKED: int(checked),
        BookingField.GHOST: int(use is not None and use.ghost is True),
        BookingField.UNKNOWN: int(use is not None and use.ghost is None),
    }, booking.window.start_ms)


def publish(store: Store, site: Site, bookings: Sequence[Booking], settings: BookingsSettings,
            now_ms: int) -> int:
    """Write every accepted booking of ``site`` still in the registry as a ``booking``
    point: the ended ones with what the sensors saw, the others as booked time ahead.
    Idempotent (a point's key is its room and start), so it runs after every decision
    and daily (`softplace bookings reconcile`). A booking already stored as compared is
    left alone: its room counts may since have gone with the raw retention, and comparing
    again would turn it into "no readings". Returns the points written."""
    rooms = {p.room.id for p in site.placed_rooms()}
    mine = [b for b in bookings
            if b.status is Status.ACCEPTED and b.site == site.id and b.room in rooms]
    if mine:
        lo = min(b.window.start_ms for b in mine)
        hi = max(b.window.start_ms for b in mine) + 1
        done = {(s.tags.get("room"), s.time_ms)
                for s in store.query(SeriesName.BOOKING, lo, hi, {"site": site.id})
                if s.fields.get(BookingField.CHECKED)}
        mine = [b for b in mine if (b.room, b.window.start_ms) not in done]
    checked = {u.booking.id: u.use for u in uses(store, site, mine, settings, now_ms)}
    samples = [booking_sample(site, b, checked.get(b.id)) for b in mine]
    if samples:
        store.write(samples)
    return len(samples)


def publish_all(store: Store, registry: Registry, bookings: Sequence[Booking],
                settings: BookingsSettings, now_ms: int) -> int:
    """``publish`` for every site of the registry these bookings name (an accept from the
    CLI or the web app, the daily reconcile); the points written."""
    known = {s.id for s in registry.sites}
    return sum(publish(store, registry.site(site), bookings, settings, now_ms)
               for site in sorted({b.site for b in bookings} & known))
