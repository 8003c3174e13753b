"""Backfill historical room counts from CSV, as a site migrating from another system would.

Format (UTF-8, comma-separated, a header row naming the columns, any column order)::

    timestamp,room,count
    2024-03-04T09:00:00+01:00,meeting-a,3
    2024-03-04 09:05,meeting-a,2
    1709540100,meeting-a,0

* ``timestamp``: ISO 8601 with an offset (``Z`` or ``+01:00``); without one it is local
  time in the site's time zone (in the hour repeated when clocks go back, the first
  one); or Unix seconds.
* ``room``: a room id of the site in the registry.
* ``count``: people in the room, an integer >= 0.
* ``sources`` (optional): how many sensors the count combines (default 1).

Each row becomes a ``room_count`` point tagged from the registry, exactly as ingest writes
live readings, so the detector cannot tell imported history from live data. Importing the
same file twice is harmless (one point per room and instant).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from typing import TextIO
from zoneinfo import ZoneInfo

from softplace.errors import SoftPlaceError
from softplace.registry import Site
from softplace.schema import RoomCountField, SeriesName
from softplace.storage.base import FieldValue, Sample
from softplace.timeutil import datetime_to_ms, s_to_ms

REQUIRED = ("timestamp", "room", "count")


class CsvImportError(SoftPlaceError):
    """A row of the CSV file is wrong; the message names the line and the column."""


def parse_timestamp(text: str, tz: ZoneInfo) -> int:
    """Unix ms of an ISO 8601 timestamp (naive = local in ``tz``) or Unix seconds."""
    text = text.strip()
    try:
        return s_to_ms(float(text))
    except ValueError:
        pass
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return datetime_to_ms(value)


def read_counts(handle: TextIO, site: Site, source: str = "<csv>") -> Iterator[Sample]:
    """Validate and convert rows, in file order; raises CsvImportError naming the line."""
    reader = csv.DictReader(handle)
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise CsvImportError(f"{source}:1: missing column(s) {', '.join(missing)}; "
                           f"the header must name {', '.join(REQUIRED)}")
    reader.fieldnames = header
    rooms = {placed.room.id: placed for placed in site.placed_rooms()}
    tz = site.tz
    for row in reader:
        line = reader.line_num
        room_id = (row.get("room") or "").strip()
        placed = rooms.get(room_id)
        if placed is None:
            raise CsvImportError(f"{source}:{line}: room {room_id!r} is not in site {site.id!r}")
        try:
            time_ms = parse_timestamp(row.get("timestamp") or "", tz)
        except ValueError as err:
            raise CsvImportError(f"{source}:{line}: timestamp {row.get('timestamp')!r}: "
                               "use ISO 8601 or Unix seconds") from err
        try:
            count = int((row.get("count") or "").strip())
            sources = int((row.get("sources") or "1").strip())
        except ValueError as err:
            raise CsvImportError(f"{source}:{line}: count and sources must be integers") from err
        if count < 0 or sources < 1:
            raise CsvImportError(f"{source}:{line}: count must be >= 0 and sources >= 1")
        fields: dict[str, FieldValue] = {
            RoomCountField.COUNT: count, RoomCountField.SOURCES: sources,
        }
        yield Sample(SeriesName.ROOM_COUNT, placed.tags, fields, time_ms)
