"""iCalendar of a room's free windows and accepted bookings, and of one booking."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bookings.core import Window
from bookings.store import Booking

PRODID = "-//SoftPlace//marketplace//EN"


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


@dataclass(frozen=True, slots=True)
class FeedRoom:
    site: str
    room: str
    name: str
    free: Sequence[Window]
    booked: Sequence[Booking]


def offers_ical(rooms: Sequence[FeedRoom], stamp_ms: int, title: str) -> bytes:
    """Free windows (transparent) and accepted bookings (busy, no requester in them)."""
    from icalendar import Calendar, Event

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"SoftPlace offers: {title}")
    for r in rooms:
        for kind, windows in (("free", list(r.free)), ("booked", [b.window for b in r.booked])):
            for window in windows:
                event = Event()
                event.add("uid", f"{r.site}.{r.room}.{kind}.{window.start_ms}@softplace")
                event.add("summary", f"{'Free' if kind == 'free' else 'Booked'}: {r.name}")
                event.add("location", f"{r.site} / {r.room}")
                event.add("transp", "TRANSPARENT" if kind == "free" else "OPAQUE")
                _times(event, window, stamp_ms)
                calendar.add_component(event)
    data: bytes = calendar.to_ical()
    return data


def booking_ical(booking: Booking, name: str, location: str, status_url: str,
                 stamp_ms: int) -> bytes:
    from icalendar import Calendar, Event

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    event = Event()
    event.add("uid", f"booking.{booking.id}@softplace")
    event.add("summary", f"{name} ({booking.status.value})")
    event.add("location", location)
    event.add("url", status_url)
    event.add("status", "CONFIRMED" if booking.status == "accepted" else (
        "CANCELLED" if booking.status == "declined" else "TENTATIVE"))
    _times(event, booking.window, stamp_ms)
    calendar.add_component(event)
    data: bytes = calendar.to_ical()
    return data


def _times(event: Any, window: Window, stamp_ms: int) -> None:
    event.add("dtstamp", _utc(stamp_ms))
    event.add("dtstart", _utc(window.start_ms))
    event.add("dtend", _utc(window.end_ms))
