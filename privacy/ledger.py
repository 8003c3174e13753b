"""The epsilon ledger: per-recipient privacy budget in SQLite, append-only and hash-chained.

Accounting is by parallel composition over room-days (``docs/privacy.md`` §4): a release
covering the days ``[first_day, end_day)`` only reads those days' room-days, so the privacy
loss of any one room-day is the sum of the epsilons of the releases whose days contain it.
A recipient's budget bounds that sum for every day; a monthly feed therefore spends its
epsilon per month and never runs out.

Every entry (a charge, or an area hidden by a release) carries the SHA-256 of its content
and of the entry before it; triggers refuse UPDATE and DELETE. ``verify`` walks the chain,
so an edited row is found; a truncated ledger is found by comparing it with the spending
the store recorded (``privacy_budget``), which ``check_against_store`` does.

A release is charged only once its files are on disk (``privacy.commands.export``), in one
``BEGIN IMMEDIATE`` transaction that re-reads the spending and inserts the charge, so two
concurrent exports cannot both squeeze under the limit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from softplace.errors import PrivacyError
from softplace.schema import BudgetField
from softplace.sqlitefile import immediate, open_durable
from softplace.storage.base import Sample
from softplace.timeutil import now_ms as clock_ms

CHARGE, HIDDEN, PUBLISHED = "charge", "hidden", "published"
GENESIS = "0" * 64
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entry (
    seq INTEGER PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('charge', 'hidden', 'published')),
    release_id TEXT NOT NULL,
    recipient TEXT NOT NULL DEFAULT '',
    epsilon REAL NOT NULL DEFAULT 0 CHECK (epsilon >= 0),
    first_day TEXT NOT NULL DEFAULT '',
    end_day TEXT NOT NULL DEFAULT '',
    area TEXT NOT NULL DEFAULT '',
    created_ms INTEGER NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS entry_recipient ON entry (kind, recipient);
CREATE TRIGGER IF NOT EXISTS entry_no_update BEFORE UPDATE ON entry
BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS entry_no_delete BEFORE DELETE ON entry
BEGIN SELECT RAISE(ABORT, 'the privacy ledger is append-only'); END;
"""
_COLUMNS = ("seq", "kind", "release_id", "recipient", "epsilon", "first_day", "end_day",
            "area", "created_ms", "note")
_SLACK = 1e-9  # float sums of charges; far below any meaningful epsilon
# a charge from the ledger format before windows: it is counted against every day
_FOREVER = (dt.date.min.isoformat(), dt.date.max.isoformat())


@dataclass(frozen=True, slots=True)
class Charge:
    release_id: str
    recipient: str
    epsilon: float
    created_ms: int
    note: str
    first_day: dt.date = dt.date.min
    end_day: dt.date = dt.date.max  # exclusive

    def covers(self, day: dt.date) -> bool:
        return self.first_day <= day < self.end_day


@dataclass(frozen=True, slots=True)
class BudgetState:
    """A recipient's spending: ``spent`` is the worst room-day's total (over all days, or
    over ``window`` when given); ``total`` the plain sum over every release."""

    recipient: str
    spent: float
    limit: float
    releases: int
    total: float = 0.0
    window: tuple[dt.date, dt.date] | None = None

    @property
    def remaining(self) -> float:
        return max(self.limit - self.spent, 0.0)


@dataclass(frozen=True, slots=True)
class ChainProblem:
    seq: int
    detail: str


def _digest(prev_hash: str, row: tuple[object, ...]) -> str:
    body = json.dumps([prev_hash, *row], separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(body.encode()).hexdigest()


def worst_day(charges: Iterable[Charge], start: dt.date, end: dt.date) -> float:
    """Largest summed epsilon over the days of ``[start, end)``: the sum only changes where
    a charge begins, so those days (and ``start``) are the only candidates."""
    charges = [c for c in charges if c.first_day < end and c.end_day > start]
    days = {start} | {c.first_day for c in charges if start <= c.first_day < end}
    return max((sum(c.epsilon for c in charges if c.covers(d)) for d in days), default=0.0)


class Ledger:
    def __init__(self, path: Path, limits: dict[str, float]) -> None:
        self.path = path
        self.limits = dict(limits)
        try:
            self._db = open_durable(path, _SCHEMA)
            self._import_legacy()
        except sqlite3.DatabaseError as err:
            raise PrivacyError(f"privacy ledger {path} is unreadable ({err}): restore it"
                               " from a backup; never start a new one") from err

    def _import_legacy(self) -> None:
        """Chain the charges of the earlier ``charge`` table, once, against every day."""
        legacy = self._db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'charge'"
        ).fetchone()
        if legacy is None or self._db.execute("SELECT COUNT(*) FROM entry").fetchone()[0]:
            return
        rows = self._db.execute(
            "SELECT release_id, recipient, epsilon, created_ms, note FROM charge ORDER BY id"
        ).fetchall()
        with immediate(self._db):
            for release_id, recipient, epsilon, created_ms, note in rows:
                self._append(CHARGE, release_id, recipient=recipient, epsilon=epsilon,
                             days=_FOREVER, created_ms=created_ms, note=note)

    def _append(
        self, kind: str, release_id: str, *, recipient: str = "", epsilon: float = 0.0,
        days: tuple[str, str] = ("", ""), area: str = "", created_ms: int, note: str = "",
    ) -> None:
        last = self._db.execute("SELECT seq, hash FROM entry ORDER BY seq DESC LIMIT 1")
        seq, prev = last.fetchone() or (0, GENESIS)
        row = (seq + 1, kind, release_id, recipient, float(epsilon), days[0], days[1], area,
               created_ms, note)
        self._db.execute(
            f"INSERT INTO entry ({', '.join(_COLUMNS)}, prev_hash, hash)"
            f" VALUES ({', '.join('?' * (len(_COLUMNS) + 2))})",
            (*row, prev, _digest(prev, row)),
        )

    def limit(self, recipient: str) -> float:
        try:
            return self.limits[recipient]
        except KeyError:
            known = ", ".join(sorted(self.limits)) or "none"
            raise PrivacyError(
                f"no privacy budget configured for recipient {recipient!r}"
                f" (privacy.budgets knows: {known})"
            ) from None

    def check(self, recipient: str, epsilon: float, start: dt.date, end: dt.date) -> BudgetState:
        """What the recipient would have spent in ``[start, end)`` after this release, or
        PrivacyError if that exceeds the limit (nothing is written)."""
        if epsilon < 0:
            raise PrivacyError(f"epsilon must be >= 0, got {epsilon}")
        limit = self.limit(recipient)
        charges = self.charges(recipient)
        spent = worst_day(charges, start, end)
        if spent + epsilon > limit + _SLACK:
            raise PrivacyError(
                f"release refused: {recipient!r} has spent epsilon {spent:g} of {limit:g}"
                f" on some day of {start}..{end - dt.timedelta(days=1)};"
                f" this release needs {epsilon:g}"
            )
        return BudgetState(recipient, spent + epsilon, limit, len(charges) + 1,
                           sum(c.epsilon for c in charges) + epsilon, (start, end))

    def charge(
        self, recipient: str, epsilon: float, *, start: dt.date, end: dt.date,
        release_id: str | None = None, note: str = "", now_ms: int | None = None,
        hidden: Iterable[str] = (), published: Iterable[str] = (),
    ) -> Charge:
        """Record ``epsilon`` against ``recipient`` for the days ``[start, end)``, with the
        areas this release hid and published, or raise PrivacyError if over budget."""
        charge = Charge(
            release_id or uuid.uuid4().hex, recipient, epsilon,
            clock_ms() if now_ms is None else now_ms, note, start, end,
        )
        with immediate(self._db):  # a refusal raised inside rolls back
            self.check(recipient, epsilon, start, end)
            self._append(CHARGE, charge.release_id, recipient=recipient, epsilon=epsilon,
                         days=(start.isoformat(), end.isoformat()),
                         created_ms=charge.created_ms, note=note)
            known_hidden = self.hidden_areas()
            known_published = self.published_areas()
            for area in sorted(set(hidden) - known_hidden):
                self._append(HIDDEN, charge.release_id, area=area, created_ms=charge.created_ms)
            for area in sorted(set(published) - known_published):
                self._append(PUBLISHED, charge.release_id, area=area,
                             created_ms=charge.created_ms)
        return charge

    def _areas(self, kind: str) -> set[str]:
        rows = self._db.execute("SELECT area FROM entry WHERE kind = ?", (kind,)).fetchall()
        return {area for (area,) in rows}

    def hidden_areas(self) -> set[str]:
        """Areas any earlier release suppressed: they stay suppressed in every later one."""
        return self._areas(HIDDEN)

    def published_areas(self) -> set[str]:
        """Areas some release published: never again usable to hide a sibling."""
        return self._areas(PUBLISHED)

    def state(self, recipient: str, window: tuple[dt.date, dt.date] | None = None
              ) -> BudgetState:
        charges = self.charges(recipient)
        start, end = window or (dt.date.min, dt.date.max)
        return BudgetState(
            recipient, worst_day(charges, start, end), self.limits.get(recipient, 0.0),
            len(charges), sum(c.epsilon for c in charges), window,
        )

    def states(self) -> list[BudgetState]:
        rows = self._db.execute("SELECT DISTINCT recipient FROM entry WHERE kind = ?",
                                (CHARGE,)).fetchall()
        recipients = sorted({r for (r,) in rows} | set(self.limits))
        return [self.state(r) for r in recipients]

    def charges(self, recipient: str | None = None) -> list[Charge]:
        query = ("SELECT release_id, recipient, epsilon, created_ms, note, first_day, end_day"
                 " FROM entry WHERE kind = ?")
        args: tuple[str, ...] = (CHARGE,)
        if recipient is not None:
            query += " AND recipient = ?"
            args = (CHARGE, recipient)
        rows = self._db.execute(query + " ORDER BY seq", args).fetchall()
        return [
            Charge(r[0], r[1], float(r[2]), int(r[3]), r[4], dt.date.fromisoformat(r[5]),
                   dt.date.fromisoformat(r[6]))
            for r in rows
        ]

    def verify(self) -> list[ChainProblem]:
        """Walk the hash chain: every entry must hash to its stored hash, chain to the one
        before and follow it without a gap."""
        problems: list[ChainProblem] = []
        prev, expected_seq = GENESIS, 1
        rows = self._db.execute(
            f"SELECT {', '.join(_COLUMNS)}, prev_hash, hash FROM entry ORDER BY seq"
        ).fetchall()
        for row in rows:
            content, prev_hash, stored = tuple(row[:-2]), row[-2], row[-1]
            seq = int(content[0])
            if seq != expected_seq:
                problems.append(ChainProblem(seq, f"entries {expected_seq}..{seq - 1} missing"))
            if prev_hash != prev:
                problems.append(ChainProblem(seq, "does not chain to the entry before"))
            if _digest(prev_hash, content) != stored:
                problems.append(ChainProblem(seq, "content does not match its hash (edited)"))
            prev, expected_seq = stored, seq + 1
        return problems

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def recorded_spending(points: Iterable[Sample]) -> dict[str, tuple[float, int]]:
    """recipient -> (largest total epsilon, most releases) the store's ``privacy_budget``
    points recorded: both only grow, so the largest is the latest that was written."""
    found: dict[str, tuple[float, int]] = {}
    for point in points:
        recipient = point.tags.get("recipient", "")
        spent = float(point.fields.get(BudgetField.EPSILON_SPENT, 0.0))
        releases = int(point.fields.get(BudgetField.RELEASES, 0))
        old_spent, old_releases = found.get(recipient, (0.0, 0))
        found[recipient] = (max(spent, old_spent), max(releases, old_releases))
    return found


def store_mismatches(ledger: Ledger, recorded: dict[str, tuple[float, int]],
                     store_name: str) -> list[str]:
    """Recipients for whom the store recorded more spending than the ledger knows: the
    ledger was replaced, truncated or edited down. Each message names both."""
    problems: list[str] = []
    for recipient, (spent, releases) in sorted(recorded.items()):
        state = ledger.state(recipient)
        if spent > state.total + _SLACK or releases > state.releases:
            problems.append(
                f"{store_name} records epsilon {spent:g} in {releases} releases to"
                f" {recipient!r}, but the ledger {ledger.path} knows {state.total:g} in"
                f" {state.releases}: restore the ledger from a backup"
            )
    return problems
