"""iCalendar of a room's free windows and accepted bookings, and of one booking."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from bookings.core import Window
from bookings.store import Booking

PRODID = "-//SoftPlace//marketplace//EN"


def _utc(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def room_ical(site: str, room: str, name: str, free: Sequence[Window],
              booked: Sequence[Booking], stamp_ms: int) -> bytes:
    """Free windows (transparent) and accepted bookings (busy, no requester in them)."""
    from icalendar import Calendar, Event

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("x-wr-calname", f"SoftPlace offer: {name}")
    for window in free:
        event = Event()
        event.add("uid", f"{site}.{room}.free.{window.start_ms}@softplace")
        event.add("summary", f"Free: {name}")
        event.add("transp", "TRANSPARENT")
        _times(event, window, stamp_ms)
        calendar.add_component(event)
    for booking in booked:
        event = Event()
        event.add("uid", f"{site}.{room}.booked.{booking.window.start_ms}@softplace")
        event.add("summary", f"Booked: {name}")
        event.add("transp", "OPAQUE")
        _times(event, booking.window, stamp_ms)
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
