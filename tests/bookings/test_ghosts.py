"""Accepted bookings against a real SQLite store's room counts."""

from __future__ import annotations

from bookings.core import Status, Use, Window
from bookings.ghosts import booking_sample, publish, summarise, uses
from bookings.settings import BookingsSettings
from bookings.store import Booking
from softplace.registry import load_registry
from softplace.schema import RoomCountField, SeriesName
from softplace.storage.base import Sample
from softplace.storage.sqlite import SqliteStore

SITE = "branch-lyon-part-dieu"
T0 = 1_795_428_000_000
MIN = 60_000


def _booking(room: str, start: int, minutes: int = 60) -> Booking:
    return Booking(f"id-{room}-{start}", SITE, room, Window(start, start + minutes * MIN), 3,
                   Status.ACCEPTED, T0, T0, None)


def test_ghosts_used_ghost_unknown_and_removed_rooms(sqlite_store: SqliteStore) -> None:
    site = load_registry().site(SITE)
    tags = site.room("meeting-a").tags
    counts = [0] * 12 + [4] * 12  # an empty hour, then a busy one
    sqlite_store.write([
        Sample(SeriesName.ROOM_COUNT, tags, {RoomCountField.COUNT: c, RoomCountField.SOURCES: 1},
               T0 + i * 5 * MIN) for i, c in enumerate(counts)
    ])
    bookings = [_booking("meeting-a", T0), _booking("meeting-a", T0 + 60 * MIN),
                _booking("meeting-b", T0), _booking("gone", T0),
                _booking("meeting-a", T0 + 600 * MIN)]  # not over yet
    found = uses(sqlite_store, site, bookings, BookingsSettings(), now_ms=T0 + 300 * MIN)
    assert [(u.booking.room, u.use.ghost) for u in found] == [
        ("meeting-a", True), ("meeting-a", False), ("meeting-b", None)]
    total = summarise(found)
    assert (total.booked, total.used, total.ghost, total.unknown) == (3, 1, 1, 1)
    assert (total.booked_hours, total.used_hours) == (3.0, 1.0)


def test_ghosts_publish_keeps_an_outcome_once_compared(sqlite_store: SqliteStore) -> None:
    """Comparing again after the raw counts expired would say "no readings": a booking
    stored as compared is left as it is, one not yet compared is written."""
    site = load_registry().site(SITE)
    compared, ahead = _booking("meeting-a", T0), _booking("meeting-a", T0 + 600 * MIN)
    sqlite_store.write([booking_sample(site, compared, Use(0.0, True))])  # a ghost, earlier
    written = publish(sqlite_store, site, [compared, ahead], BookingsSettings(),
                      now_ms=T0 + 300 * MIN)  # no room count left in the store
    assert written == 1
    points = {p.time_ms: p.fields for p in sqlite_store.query(SeriesName.BOOKING, 0, 2**62)}
    assert points[T0]["ghost"] == 1 and points[T0]["unknown"] == 0
    assert points[T0 + 600 * MIN]["checked"] == 0
