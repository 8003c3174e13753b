"""The epsilon ledger: per-recipient privacy budget in SQLite, refusing releases over budget.

A release is charged *before* its noise is drawn, in one ``BEGIN IMMEDIATE`` transaction
that reads the recipient's total and inserts the charge, so two concurrent exports cannot
both squeeze under the limit and a crash after the charge leaves the budget spent (the safe
side). The file survives restarts; keep it with the backups.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from softplace.errors import PrivacyError
from softplace.sqlitefile import immediate, open_durable
from softplace.timeutil import now_ms as clock_ms

_SCHEMA = """
CREATE TABLE IF NOT EXISTS charge (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id TEXT NOT NULL UNIQUE,
    recipient TEXT NOT NULL,
    epsilon REAL NOT NULL CHECK (epsilon >= 0),
    created_ms INTEGER NOT NULL,
    note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS charge_recipient ON charge (recipient);
"""
_SLACK = 1e-9  # float sums of charges; far below any meaningful epsilon


@dataclass(frozen=True, slots=True)
class Charge:
    release_id: str
    recipient: str
    epsilon: float
    created_ms: int
    note: str


@dataclass(frozen=True, slots=True)
class BudgetState:
    recipient: str
    spent: float
    limit: float
    releases: int

    @property
    def remaining(self) -> float:
        return max(self.limit - self.spent, 0.0)


class Ledger:
    def __init__(self, path: Path, limits: dict[str, float]) -> None:
        self.path = path
        self.limits = dict(limits)
        self._db = open_durable(path, _SCHEMA)

    def limit(self, recipient: str) -> float:
        try:
            return self.limits[recipient]
        except KeyError:
            known = ", ".join(sorted(self.limits)) or "none"
            raise PrivacyError(
                f"no privacy budget configured for recipient {recipient!r}"
                f" (privacy.budgets knows: {known})"
            ) from None

    def charge(
        self, recipient: str, epsilon: float, *, release_id: str | None = None,
        note: str = "", now_ms: int | None = None,
    ) -> Charge:
        """Record ``epsilon`` against ``recipient`` or raise PrivacyError if over budget."""
        if epsilon < 0:
            raise PrivacyError(f"epsilon must be >= 0, got {epsilon}")
        limit = self.limit(recipient)
        charge = Charge(
            release_id or uuid.uuid4().hex, recipient, epsilon,
            clock_ms() if now_ms is None else now_ms, note,
        )
        with immediate(self._db):  # a refusal raised inside rolls back
            (spent,) = self._db.execute(
                "SELECT COALESCE(SUM(epsilon), 0) FROM charge WHERE recipient = ?", (recipient,)
            ).fetchone()
            if spent + epsilon > limit + _SLACK:
                raise PrivacyError(
                    f"release refused: {recipient!r} has spent epsilon {spent:g} of {limit:g};"
                    f" this release needs {epsilon:g}"
                )
            self._db.execute(
                "INSERT INTO charge (release_id, recipient, epsilon, created_ms, note)"
                " VALUES (?, ?, ?, ?, ?)",
                (charge.release_id, recipient, epsilon, charge.created_ms, note),
            )
        return charge

    def state(self, recipient: str) -> BudgetState:
        spent, count = self._db.execute(
            "SELECT COALESCE(SUM(epsilon), 0), COUNT(*) FROM charge WHERE recipient = ?",
            (recipient,),
        ).fetchone()
        return BudgetState(recipient, float(spent), self.limits.get(recipient, 0.0), int(count))

    def states(self) -> list[BudgetState]:
        rows = self._db.execute("SELECT DISTINCT recipient FROM charge").fetchall()
        recipients = sorted({r for (r,) in rows} | set(self.limits))
        return [self.state(r) for r in recipients]

    def charges(self, recipient: str | None = None) -> list[Charge]:
        query = "SELECT release_id, recipient, epsilon, created_ms, note FROM charge"
        args: tuple[str, ...] = ()
        if recipient is not None:
            query += " WHERE recipient = ?"
            args = (recipient,)
        rows = self._db.execute(query + " ORDER BY id", args).fetchall()
        return [Charge(r[0], r[1], float(r[2]), int(r[3]), r[4]) for r in rows]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
