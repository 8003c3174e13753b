"""The gateway's durable state: an ordered outbox of messages for upstream, the dedupe
keys and the core's state rows (room contributions, tie-break marks), all in one SQLite
file so one transaction covers a handled reading. The ``seen`` table is trimmed to the
newest ``keys_per_device`` keys of a device in that same transaction once it took
``keys_per_device // 8`` more since its last trim (each trim walks the device's
``keys_per_device`` newest keys: once per batch and device it was half the cost of a
commit), so it holds at most that many more per device while running.

Rows just committed are also kept in memory for the forwarder (``pending``): once it has
read the table to its end, what commits after is handed over without a SELECT back. The
table stays the durable truth: after a restart, a re-read from an earlier id, or a tail
that grew past ``MEMORY_ROWS`` (upstream down), ``pending`` reads SQLite as before."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from gateway.core import Outgoing
from softplace.sqlitefile import immediate, open_durable
from softplace.timeutil import now_ms

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    retain INTEGER NOT NULL DEFAULT 0,
    queued_ms INTEGER NOT NULL DEFAULT 0
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
CREATE INDEX IF NOT EXISTS seen_by_device ON seen (device, id);
CREATE TABLE IF NOT EXISTS core_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""
DEFAULT_KEYS_PER_DEVICE = 4096
TRIM_SLACK_DIVISOR = 8
# committed rows kept for the forwarder at most; past it the tail is dropped and read back
MEMORY_ROWS = 20_000


class Outbox:
    def __init__(self, path: Path, keys_per_device: int = DEFAULT_KEYS_PER_DEVICE) -> None:
        self.path = path
        self.keys_per_device = keys_per_device
        self._db = open_durable(path, _SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        if "queued_ms" not in columns:  # an outbox written before rows carried their time
            self._db.execute(
                "ALTER TABLE outbox ADD COLUMN queued_ms INTEGER NOT NULL DEFAULT 0")
        self._lock = threading.Lock()
        self._trim_after = max(1, keys_per_device // TRIM_SLACK_DIVISOR)
        self._untrimmed: dict[str, int] = {}  # keys queued per device since its last trim
        # every row with an id above _memory_after is in _memory, in id order; None: unknown
        self._memory: list[tuple[int, Outgoing]] = []
        self._memory_after: int | None = None

    def enqueue_many(
        self, handled: Iterable[tuple[Iterable[Outgoing], tuple[str, int, int] | None]],
        state: Mapping[str, str] | None = None,
    ) -> None:
        """Durably queue what several handled messages produced, in order, with their
        dedupe keys and the core's ``state`` rows, in one transaction: one fsync."""
        outgoing: list[Outgoing] = []
        keys: list[tuple[str, int, int]] = []
        for messages, seen in handled:
            outgoing.extend(messages)
            if seen is not None:
                keys.append(seen)
        self.enqueue(outgoing, keys, state)

    def enqueue(self, outgoing: list[Outgoing], keys: list[tuple[str, int, int]],
                state: Mapping[str, str] | None = None) -> None:
        """``enqueue_many`` with the batch's messages and dedupe keys already in two lists."""
        queued_ms = now_ms()
        with self._lock:
            untrimmed = dict(self._untrimmed)
            for device, _, _ in keys:
                untrimmed[device] = untrimmed.get(device, 0) + 1
            with immediate(self._db):
                last_id = 0
                if outgoing:
                    # an Outgoing is (topic, payload, retain); the int is ours, not input
                    self._db.executemany(
                        "INSERT INTO outbox (topic, payload, retain, queued_ms) "
                        f"VALUES (?, ?, ?, {int(queued_ms)})", outgoing,
                    )
                    # one transaction holding the write lock: AUTOINCREMENT ids are consecutive
                    (last_id,) = self._db.execute("SELECT last_insert_rowid()").fetchone()
                if keys:
                    self._db.executemany(
                        "INSERT OR IGNORE INTO seen (device, boot, seq) VALUES (?, ?, ?)", keys
                    )
                for device, n in untrimmed.items():
                    if n >= self._trim_after:
                        self._trim_seen(device)
                        untrimmed[device] = 0
                if state:
                    self._db.executemany(
                        "INSERT INTO core_state (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        list(state.items()),
                    )
            self._untrimmed = untrimmed  # committed: the counts hold
            if outgoing and self._memory_after is not None:
                if len(self._memory) + len(outgoing) > MEMORY_ROWS:
                    self._forget_memory()
                else:
                    first = int(last_id) - len(outgoing) + 1
                    self._memory.extend(enumerate(outgoing, first))

    def _forget_memory(self) -> None:
        self._memory = []
        self._memory_after = None

    def _trim_seen(self, device: str) -> None:
        """Keep the newest ``keys_per_device`` keys of a device (inside a transaction)."""
        self._db.execute(
            "DELETE FROM seen WHERE device = ? AND id <= (SELECT id FROM seen WHERE device = ?"
            " ORDER BY id DESC LIMIT 1 OFFSET ?)",
            (device, device, self.keys_per_device),
        )

    def core_state(self) -> dict[str, str]:
        """The core's state rows, the latest value of each key."""
        with self._lock:
            rows = self._db.execute("SELECT key, value FROM core_state").fetchall()
        return {str(k): str(v) for k, v in rows}

    def seen_count(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM seen").fetchone()
        return int(count)

    def pending(self, after_id: int, limit: int) -> list[tuple[int, Outgoing]]:
        """Up to ``limit`` rows with ids above ``after_id``, in order. Reading past
        ``after_id`` forgets the remembered rows up to it (the forwarder reads onwards)."""
        with self._lock:
            if self._memory_after is not None and after_id >= self._memory_after:
                memory = self._memory
                start = 0
                while start < len(memory) and memory[start][0] <= after_id:
                    start += 1
                if start:
                    del memory[:start]
                self._memory_after = after_id
                return memory[:limit]
            rows = self._db.execute(
                "SELECT id, topic, payload, retain FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
            if len(rows) < limit:  # the table's end: from here on, commits are remembered
                self._memory = []
                self._memory_after = rows[-1][0] if rows else after_id
        return [(row[0], Outgoing(row[1], bytes(row[2]), bool(row[3]))) for row in rows]

    def _drop_remembered(self, ids: list[int]) -> None:
        """Rows leaving the table leave the memory too (inside the lock)."""
        if self._memory and self._memory_after is not None and ids and max(ids) > (
                self._memory_after):
            gone = set(ids)
            self._memory = [row for row in self._memory if row[0] not in gone]

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
            self._drop_remembered([i for (i,) in rows])

    def park(self, ids: Iterable[int], reason: str) -> None:
        """Move messages the upstream broker refused for good out of the way, keeping them."""
        rows = [(reason, i) for i in ids]
        with self._lock, immediate(self._db):
            self._db.executemany(
                "INSERT INTO parked (id, topic, payload, retain, reason) "
                "SELECT id, topic, payload, retain, ? FROM outbox WHERE id = ?", rows,
            )
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for _, i in rows])
            self._drop_remembered([i for _, i in rows])

    def parked(self) -> list[tuple[str, str]]:
        """(topic, reason) of every parked message, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT topic, reason FROM parked ORDER BY id").fetchall()
        return [(str(t), str(r)) for t, r in rows]

    def oldest_queued_ms(self) -> int | None:
        """When the oldest waiting row was queued (0 for rows of an older outbox), or None
        when the outbox is empty."""
        with self._lock:
            row = self._db.execute("SELECT queued_ms FROM outbox ORDER BY id LIMIT 1").fetchone()
        return None if row is None else int(row[0])

    def first_payload(self, topic: str) -> bytes | None:
        """The payload of the oldest waiting row of ``topic``, or None when none waits."""
        with self._lock:
            row = self._db.execute("SELECT payload FROM outbox WHERE topic = ? ORDER BY id "
                                   "LIMIT 1", (topic,)).fetchone()
        return None if row is None else bytes(row[0])

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
