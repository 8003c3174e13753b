"""The bookings file: one SQLite transaction (BEGIN IMMEDIATE) per request or decision, so
two clients asking or accepting at once are serialised by SQLite and never both win."""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from bookings.core import BookingRefusedError, BookingRequest, Requester, Status, Window
from softplace.sqlitefile import immediate, open_durable
from softplace.timeutil import MS_PER_DAY

SCHEMA = """
CREATE TABLE IF NOT EXISTS booking (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    room TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    attendance INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    decided_ms INTEGER
);
CREATE INDEX IF NOT EXISTS booking_room ON booking (site, room, start_ms);
-- personal data apart, so that retention deletes whole rows
CREATE TABLE IF NOT EXISTS requester (
    booking TEXT PRIMARY KEY REFERENCES booking (id),
    name TEXT NOT NULL,
    organisation TEXT NOT NULL,
    email TEXT NOT NULL,
    purpose TEXT NOT NULL
);
-- what retention deleted and when (counts and dates only: the audit trail of the deletions)
CREATE TABLE IF NOT EXISTS purge_log (
    purged_ms INTEGER NOT NULL,
    requesters INTEGER NOT NULL,
    ended_before_ms INTEGER NOT NULL
);
"""
# the check sees the accepted bookings of the room and raises BookingRefusedError
CheckFn = Callable[[list[Window]], None]
_COLUMNS = "b.id, b.site, b.room, b.start_ms, b.end_ms, b.attendance, b.status, b.created_ms," \
    " b.decided_ms, r.name, r.organisation, r.email, r.purpose"


@dataclass(frozen=True, slots=True)
class Booking:
    id: str  # unguessable: the requester's status link is its only key
    site: str
    room: str
    window: Window
    attendance: int
    status: Status
    created_ms: int
    decided_ms: int | None
    requester: Requester | None  # None once retention deleted it


def _row(row: tuple[object, ...]) -> Booking:
    (bid, site, room, start, end, attendance, status, created, decided,
     name, organisation, email, purpose) = row
    requester = None if name is None else Requester(
        name=str(name), organisation=str(organisation), email=str(email), purpose=str(purpose),
    )
    return Booking(
        str(bid), str(site), str(room), Window(int(str(start)), int(str(end))),
        int(str(attendance)), Status(str(status)), int(str(created)),
        None if decided is None else int(str(decided)), requester,
    )


@dataclass(frozen=True, slots=True)
class Purge:
    purged_ms: int
    requesters: int  # requester records deleted
    ended_before_ms: int  # of bookings that ended before this


class BookingStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection = open_durable(path, SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> BookingStore:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _select(self, where: str, args: tuple[object, ...]) -> list[Booking]:
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM booking b LEFT JOIN requester r ON r.booking = b.id"
            f" WHERE {where} ORDER BY b.start_ms, b.id", args,
        ).fetchall()
        return [_row(r) for r in rows]

    def _accepted(self, site: str, room: str, window: Window) -> list[Booking]:
        return self._select(
            "b.site = ? AND b.room = ? AND b.status = ? AND b.start_ms < ? AND b.end_ms > ?",
            (site, room, Status.ACCEPTED, window.end_ms, window.start_ms),
        )

    def request(self, request: BookingRequest, now_ms: int, check: CheckFn) -> Booking:
        """Store a pending request after ``check`` (given the room's accepted bookings)
        passes, both inside one IMMEDIATE transaction."""
        window = request.window
        bid = secrets.token_urlsafe(16)
        with immediate(self._db):
            accepted = self.accepted(request.site, request.room)
            check([b.window for b in accepted])
            self._db.execute(
                "INSERT INTO booking VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                (bid, request.site, request.room, window.start_ms, window.end_ms,
                 request.attendance, Status.PENDING, now_ms),
            )
            who = request.requester
            self._db.execute("INSERT INTO requester VALUES (?, ?, ?, ?, ?)",
                             (bid, who.name, who.organisation, who.email, who.purpose))
        return self.get(bid) or _missing(bid)

    def decide(self, booking_id: str, accept: bool, now_ms: int) -> Booking:
        """Accept (refused if it now overlaps an accepted booking) or decline a pending one."""
        with immediate(self._db):
            found = self._select("b.id = ?", (booking_id,))
            if not found:
                raise KeyError(booking_id)
            booking = found[0]
            if booking.status is not Status.PENDING:
                raise BookingRefusedError(f"booking {booking_id} is already {booking.status}")
            if accept and self._accepted(booking.site, booking.room, booking.window):
                raise BookingRefusedError("the slot overlaps a booking accepted meanwhile")
            self._db.execute(
                "UPDATE booking SET status = ?, decided_ms = ? WHERE id = ?",
                (Status.ACCEPTED if accept else Status.DECLINED, now_ms, booking_id),
            )
        return self.get(booking_id) or _missing(booking_id)

    def get(self, booking_id: str) -> Booking | None:
        found = self._select("b.id = ?", (booking_id,))
        return found[0] if found else None

    def accepted(self, site: str, room: str | None = None) -> list[Booking]:
        if room is None:
            return self._select("b.site = ? AND b.status = ?", (site, Status.ACCEPTED))
        return self._select("b.site = ? AND b.room = ? AND b.status = ?",
                            (site, room, Status.ACCEPTED))

    def all(self, status: Status | None = None) -> list[Booking]:
        if status is None:
            return self._select("1 = 1", ())
        return self._select("b.status = ?", (status,))

    def purge_personal(self, now_ms: int, days: int) -> int:
        """Delete requesters' data of bookings that ended more than ``days`` ago; a purge
        that deletes something is logged (when, how many, the cut-off) for the audit."""
        cutoff = now_ms - days * MS_PER_DAY
        with immediate(self._db):
            cursor = self._db.execute(
                "DELETE FROM requester WHERE booking IN"
                " (SELECT id FROM booking WHERE end_ms < ?)", (cutoff,),
            )
            if cursor.rowcount > 0:
                self._db.execute("INSERT INTO purge_log VALUES (?, ?, ?)",
                                 (now_ms, cursor.rowcount, cutoff))
        return cursor.rowcount

    def purges(self) -> list[Purge]:
        """Every purge that deleted requesters' data, oldest first."""
        rows = self._db.execute(
            "SELECT purged_ms, requesters, ended_before_ms FROM purge_log ORDER BY purged_ms"
        ).fetchall()
        return [Purge(int(a), int(b), int(c)) for a, b, c in rows]

    def personal_count(self) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM requester").fetchone()
        return int(row[0]) if row else 0

    def oldest_personal_end_ms(self) -> int | None:
        """The end of the oldest booking whose requester is still stored (for the audit)."""
        row = self._db.execute(
            "SELECT MIN(b.end_ms) FROM booking b JOIN requester r ON r.booking = b.id"
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])


def _missing(booking_id: str) -> Booking:
    raise KeyError(booking_id)


