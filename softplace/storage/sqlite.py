"""The embedded store: one SQLite file, WAL journal, full fsync on commit."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from softplace.errors import RejectedWriteError, StorageError
from softplace.schema import SERIES, Family, RoomCountField, SeriesName, series
from softplace.sqlitefile import immediate, open_durable
from softplace.storage.base import CountColumns, FieldValue, RetentionPolicy, Sample
from softplace.timeutil import MS_PER_DAY
from softplace.timeutil import now_ms as clock_ms

_SCHEMA = """
CREATE TABLE IF NOT EXISTS points (
    series TEXT NOT NULL,
    tag_key TEXT NOT NULL,
    time_ms INTEGER NOT NULL,
    tags TEXT NOT NULL,
    fields TEXT NOT NULL,
    PRIMARY KEY (series, tag_key, time_ms)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_by_time ON points (series, time_ms);
CREATE TABLE IF NOT EXISTS retention (family TEXT PRIMARY KEY, days INTEGER NOT NULL);
"""


def _tag_key(tags: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(tags.items())), separators=(",", ":"))


class SqliteStore:
    """Implements :class:`softplace.storage.base.Store` on a local SQLite file."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        """Open the store at ``path``; ``create=False`` (read-only commands) refuses a missing
        file instead of leaving an empty store behind. Its directory must exist either way:
        a typo in a directory name must not start a second, empty store."""
        self.path = path
        if not create and not path.is_file():
            raise StorageError(f"{path}: no store here (check storage.sqlite_path, or run "
                               "ingest, import or the demo first)")
        if not path.parent.is_dir():
            raise StorageError(f"{path}: directory {path.parent} does not exist "
                               "(check storage.sqlite_path)")
        try:
            self._db = open_durable(path, _SCHEMA)
        except sqlite3.Error as err:
            raise StorageError(f"{path}: cannot open SQLite store: {err}") from err
        self._lock = threading.Lock()

    def write(self, samples: Sequence[Sample]) -> None:
        for name in {s.series for s in samples}:
            series(name)  # refuse the whole batch, like InfluxDB, before writing any of it
        rows = [
            (s.series, _tag_key(s.tags), s.time_ms, _tag_key(s.tags), json.dumps(dict(s.fields)))
            for s in samples
        ]
        with self._lock, self._transaction("write"):
            # like InfluxDB: same key -> one point, fields merged (newer values win)
            self._db.executemany(
                "INSERT INTO points (series, tag_key, time_ms, tags, fields) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (series, tag_key, time_ms) "
                "DO UPDATE SET fields = json_patch(points.fields, excluded.fields)",
                rows,
            )

    @contextlib.contextmanager
    def _transaction(self, what: str) -> Iterator[None]:
        """One IMMEDIATE transaction; any failure rolls back and becomes StorageError
        (RejectedWriteError for values SQLite cannot hold, which retrying cannot fix)."""
        try:
            with immediate(self._db):
                yield
        except (sqlite3.Error, OverflowError, ValueError) as err:
            kind = StorageError if isinstance(err, sqlite3.OperationalError) else (
                RejectedWriteError
            )
            raise kind(f"{self.path}: {what} failed: {err}") from err

    def query(
        self,
        series_name: str,
        start_ms: int,
        end_ms: int,
        tags: Mapping[str, str] | None = None,
    ) -> list[Sample]:
        series(series_name)
        sql = "SELECT tags, fields, time_ms FROM points WHERE series = ? AND time_ms >= ? " \
              "AND time_ms < ?"
        params: list[object] = [series_name, start_ms, end_ms]
        for key, value in sorted((tags or {}).items()):
            sql += " AND json_extract(tags, ?) = ?"
            params += [f'$."{key}"', value]
        sql += " ORDER BY time_ms, tag_key"
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        return [self._sample(series_name, t, f, ms) for t, f, ms in rows]

    def room_counts(self, site: str, start_ms: int, end_ms: int) -> dict[str, CountColumns]:
        sql = (
            "SELECT json_extract(tags, '$.room'), time_ms, json_extract(fields, ?) "
            "FROM points WHERE series = ? AND time_ms >= ? AND time_ms < ? "
            "AND json_extract(tags, '$.site') = ? ORDER BY time_ms"
        )
        params = (f"$.{RoomCountField.COUNT}", SeriesName.ROOM_COUNT, start_ms, end_ms, site)
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        found: dict[str, CountColumns] = {}
        for room, time_ms, count in rows:
            if room is None or count is None:
                continue
            columns = found.get(room)
            if columns is None:
                columns = found[room] = CountColumns()
            columns.times_ms.append(time_ms)
            columns.counts.append(int(count))
        return found

    def pack_room_counts(self, site: str, start_ms: int, end_ms: int) -> int:
        """Nothing to pack: reading a local file costs no server per point, and
        ``room_counts`` reads the raw rows in one indexed query."""
        del site, start_ms, end_ms
        return 0

    @staticmethod
    def _sample(series_name: str, tags: str, fields: str, time_ms: int) -> Sample:
        field_values: dict[str, FieldValue] = json.loads(fields)
        return Sample(series_name, json.loads(tags), field_values, time_ms)

    def oldest_ms(self, series_name: str) -> int | None:
        with self._lock:
            row = self._db.execute(
                "SELECT min(time_ms) FROM points WHERE series = ?", (series_name,)
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def stored_series(self) -> dict[str, set[str]]:
        return self._keys("fields")

    def stored_tags(self) -> dict[str, set[str]]:
        return self._keys("tags")

    def _keys(self, column: str) -> dict[str, set[str]]:
        """Series name -> the keys present in its ``fields`` or ``tags`` JSON."""
        assert column in {"fields", "tags"}
        with self._lock:
            rows = self._db.execute(
                f"SELECT DISTINCT series, key FROM points, json_each(points.{column})"
            ).fetchall()
        found: dict[str, set[str]] = {}
        for name, key in rows:
            found.setdefault(name, set()).add(key)
        return found

    def apply_retention(
        self, policies: Sequence[RetentionPolicy], now_ms: int | None = None
    ) -> None:
        now_ms = clock_ms() if now_ms is None else now_ms
        by_family: dict[Family, list[str]] = {}
        for item in SERIES.values():
            by_family.setdefault(item.family, []).append(item.name)
        with self._lock, self._transaction("retention"):
            for policy in policies:
                self._db.execute(
                    "INSERT INTO retention (family, days) VALUES (?, ?) "
                    "ON CONFLICT (family) DO UPDATE SET days = excluded.days",
                    (policy.family.value, policy.days),
                )
                if policy.days <= 0:
                    continue
                cutoff = now_ms - policy.days * MS_PER_DAY
                names = by_family.get(policy.family, [])
                self._db.execute(
                    f"DELETE FROM points WHERE time_ms < ? AND series IN "
                    f"({','.join('?' * len(names))})",
                    (cutoff, *names),
                )

    def retention_days(self) -> dict[str, int]:
        """The policies last applied (family -> days)."""
        with self._lock:
            return dict(self._db.execute("SELECT family, days FROM retention").fetchall())

    def delete_series(self, series_name: str, tags: Mapping[str, str] | None = None) -> None:
        sql = "DELETE FROM points WHERE series = ?"
        params: list[object] = [series_name]
        for key, value in sorted((tags or {}).items()):
            sql += " AND json_extract(tags, ?) = ?"
            params += [f'$."{key}"', value]
        with self._lock:
            self._db.execute(sql, params)

    def replace_range(
        self, series_names: Sequence[str], start_ms: int, end_ms: int,
        tags: Mapping[str, str], samples: Sequence[Sample],
    ) -> None:
        for name in {*series_names, *(s.series for s in samples)}:
            series(name)
        where = " AND ".join(["series = ?", "time_ms >= ?", "time_ms < ?",
                              *("json_extract(tags, ?) = ?" for _ in tags)])
        tag_params = [p for k, v in sorted(tags.items()) for p in (f'$."{k}"', v)]
        rows = [
            (s.series, _tag_key(s.tags), s.time_ms, _tag_key(s.tags), json.dumps(dict(s.fields)))
            for s in samples
        ]
        with self._lock, self._transaction("replace"):
            for name in series_names:
                self._db.execute(f"DELETE FROM points WHERE {where}",
                                 [name, start_ms, end_ms, *tag_params])
            self._db.executemany(
                "INSERT INTO points (series, tag_key, time_ms, tags, fields) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (series, tag_key, time_ms) "
                "DO UPDATE SET fields = excluded.fields",
                rows,
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
