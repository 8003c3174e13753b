"""The storage interface both backends implement; ``tests/test_storage_contract.py``
runs one suite against each."""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from softplace.schema import Family, series

FieldValue = int | float | str | bool
DEFAULT_SQLITE_PATH = Path(".softplace/softplace.sqlite")  # its directory is created on demand
_COERCE: dict[str, type[int] | type[float] | type[str] | type[bool]] = {
    "int": int, "float": float, "str": str, "bool": bool,
}


@dataclass(frozen=True, slots=True)
class Sample:
    """One point: series name, tags, fields and time in Unix milliseconds.

    ``(series, tags, time_ms)`` is the point's identity in both backends: writing the same
    key twice keeps one point, which makes redelivery harmless.
    """

    series: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time_ms: int

    def __post_init__(self) -> None:
        known = series(self.series)  # UnknownSeriesError for a name outside the schema
        object.__setattr__(self, "series", known.name)
        unknown_tags = set(self.tags) - set(known.tags)
        unknown_fields = set(self.fields) - set(known.fields)
        if unknown_tags or unknown_fields:
            raise ValueError(f"{self.series}: unknown tags {sorted(unknown_tags)} "
                             f"or fields {sorted(unknown_fields)}")
        if not self.fields:
            raise ValueError(f"{self.series}: a point needs at least one field")
        # Both backends store each field with the schema's type, so an int-looking float
        # never conflicts with earlier points in InfluxDB and reads back the same everywhere.
        coerced = {
            str(name): _COERCE[known.fields[name]](value) for name, value in self.fields.items()
        }
        object.__setattr__(self, "fields", coerced)
        object.__setattr__(self, "tags", {k: str(v) for k, v in self.tags.items()})

    @classmethod
    def checked_upstream(
        cls, series_name: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue],
        time_ms: int,
    ) -> Sample:
        """A point built on a hot path from names of the schema and values already
        validated to the schema's types (ingest's room counts): the checks of ``__init__``
        skipped. Anything else goes through ``Sample(...)``."""
        sample = object.__new__(cls)
        for name, value in (("series", series_name), ("tags", tags), ("fields", fields),
                            ("time_ms", time_ms)):
            object.__setattr__(sample, name, value)
        return sample

    @property
    def key(self) -> tuple[str, tuple[tuple[str, str], ...], int]:
        return (self.series, tuple(sorted(self.tags.items())), self.time_ms)


def _int64() -> array[int]:
    return array("q")


@dataclass(frozen=True, slots=True)
class CountColumns:
    """One room's ``room_count`` points as two columns: Unix ms times and counts.

    The detector's read of the bulk of the raw data: two machine-integer arrays per room
    instead of a ``Sample`` per point.
    """

    times_ms: array[int] = field(default_factory=_int64)
    counts: array[int] = field(default_factory=_int64)

    def __len__(self) -> int:
        return len(self.times_ms)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    family: Family
    days: int  # 0 means keep forever


class Store(Protocol):
    """What gateway-side services, ingest, the detector and privacy code need of storage."""

    def write(self, samples: Sequence[Sample]) -> None:
        """Write durably and idempotently; on return the points survive a crash.

        Raises StorageError when the store cannot take them (the caller retries), and
        UnknownSeriesError, writing nothing, for a series outside the schema.
        """

    def query(
        self,
        series_name: str,
        start_ms: int,
        end_ms: int,
        tags: Mapping[str, str] | None = None,
    ) -> list[Sample]:
        """Points of one series with ``start_ms <= time < end_ms`` and matching tags,
        ordered by time (then by tags); UnknownSeriesError for a series outside the schema
        (a typo must not read as "no data")."""
        ...

    def room_counts(self, site: str, start_ms: int, end_ms: int) -> dict[str, CountColumns]:
        """The ``count`` of every ``room_count`` point of ``site`` with
        ``start_ms <= time < end_ms``, per room, in time order (points of one room at the
        same instant in any order); points without a ``room`` tag are left out."""
        ...

    def oldest_ms(self, series_name: str) -> int | None:
        """Time of the oldest stored point of a series, or None when it is empty.

        Any name is accepted, so the privacy audit can inspect a stray series outside the
        schema."""
        ...

    def stored_series(self) -> dict[str, set[str]]:
        """What is actually stored: series name -> field keys present."""
        ...

    def stored_tags(self) -> dict[str, set[str]]:
        """What is actually stored: series name -> tag keys present."""
        ...

    def apply_retention(
        self, policies: Sequence[RetentionPolicy], now_ms: int | None = None
    ) -> None:
        """Make the store keep each family no longer than its policy (idempotent).

        InfluxDB enforces it itself (retention policies); SQLite deletes what is older than
        ``now_ms`` minus the policy (now by default)."""

    def delete_series(self, series_name: str, tags: Mapping[str, str] | None = None) -> None:
        """Drop the points of a series (optionally only those with these tags)."""

    def replace_range(
        self, series_names: Sequence[str], start_ms: int, end_ms: int,
        tags: Mapping[str, str], samples: Sequence[Sample],
    ) -> None:
        """Make ``samples`` the only points of these series with ``start_ms <= time <
        end_ms`` and these tags: a recompute's results replace the range's, and what it no
        longer concludes is gone. SQLite: one transaction. InfluxDB: a DELETE, then one
        write; a failure between leaves the range without results (never stale ones, never
        doubled), which the next recompute fills.
        """

    def close(self) -> None: ...


@runtime_checkable
class CountPacker(Protocol):
    """A store that can keep a derived, packed copy of ``room_count`` (both backends do;
    a wrapper of a store may not)."""

    def pack_room_counts(self, site: str, start_ms: int, end_ms: int) -> int:
        """Pack the whole spans (six hours) of ``[start_ms, end_ms)`` of ``site``'s room
        counts so that ``room_counts`` reads them cheaply, in place of any earlier packing;
        returns the points packed. ``room_counts`` answers the same with or without it: a
        packed span that a room-count write touched since is read from the raw series."""
        ...
