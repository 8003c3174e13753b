"""The gateway's durable state: an ordered outbox of messages for upstream, and the
dedupe keys, both in one SQLite file so one transaction covers a handled reading."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

from gateway.core import Outgoing
from softplace.sqlitefile import immediate, open_durable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS parked (
    id INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
    device TEXT NOT NULL, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    UNIQUE (device, boot, seq)
);
"""


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = open_durable(path, _SCHEMA)
        self._lock = threading.Lock()

    def enqueue_many(
        self, handled: Iterable[tuple[Iterable[Outgoing], tuple[str, int, int] | None]]
    ) -> None:
        """Durably queue what several handled messages produced, in order, in one
        transaction: one fsync for the batch."""
        rows: list[tuple[str, bytes, int]] = []
        keys: list[tuple[str, int, int]] = []
        for messages, seen in handled:
            rows.extend((m.topic, m.payload, int(m.retain)) for m in messages)
            if seen is not None:
                keys.append(seen)
        with self._lock, immediate(self._db):
            self._db.executemany(
                "INSERT INTO outbox (topic, payload, retain) VALUES (?, ?, ?)", rows
            )
            self._db.executemany(
                "INSERT OR IGNORE INTO seen (device, boot, seq) VALUES (?, ?, ?)", keys
            )

    def pending(self, after_id: int, limit: int) -> list[tuple[int, Outgoing]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, retain FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [(row[0], Outgoing(row[1], bytes(row[2]), bool(row[3]))) for row in rows]

    def delete(self, ids: Iterable[int]) -> None:
        """Delete forwarded rows without waiting for the disk: a delete lost in a crash only
        sends those rows again, and their points rewrite the same keys. The next durable
        commit (an enqueue) flushes it anyway, the WAL being one file."""
        rows = [(i,) for i in ids]
        if not rows:
            return
        with self._lock:
            self._db.execute("PRAGMA synchronous=OFF")
            try:
                with immediate(self._db):
                    self._db.executemany("DELETE FROM outbox WHERE id = ?", rows)
            finally:
                self._db.execute("PRAGMA synchronous=FULL")

    def park(self, ids: Iterable[int], reason: str) -> None:
        """Move messages the upstream broker refused for good out of the way, keeping them."""
        rows = [(reason, i) for i in ids]
        with self._lock, immediate(self._db):
            self._db.executemany(
                "INSERT INTO parked (id, topic, payload, retain, reason) "
                "SELECT id, topic, payload, retain, ? FROM outbox WHERE id = ?", rows,
            )
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for _, i in rows])

    def parked(self) -> list[tuple[str, str]]:
        """(topic, reason) of every parked message, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT topic, reason FROM parked ORDER BY id").fetchall()
        return [(str(t), str(r)) for t, r in rows]

    def size(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        return int(count)

    def seen_keys(self, keys_per_device: int) -> list[tuple[str, int, int]]:
        """The most recent dedupe keys per device, oldest first (trims older ones)."""
        with self._lock:
            self._db.execute(
                "DELETE FROM seen WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER "
                "(PARTITION BY device ORDER BY id DESC) AS n FROM seen) WHERE n > ?)",
                (keys_per_device,),
            )
            rows = self._db.execute("SELECT device, boot, seq FROM seen ORDER BY id").fetchall()
        return [(str(d), int(b), int(s)) for d, b, s in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
