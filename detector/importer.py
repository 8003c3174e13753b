"""Backfill historical room counts from CSV, as a site migrating from another system would.

Format (UTF-8, with or without the byte-order mark Excel writes; comma- or
semicolon-separated; a header row naming the columns, any column order)::

    timestamp,room,count
    2024-03-04T09:00:00+01:00,meeting-a,3
    2024-03-04 09:05,meeting-a,2
    1709540100,meeting-a,0

* ``timestamp``: ISO 8601 with an offset (``Z`` or ``+01:00``); without one it is local
  time in the site's time zone (in the hour repeated when clocks go back, the first
  one); or Unix seconds.
* ``room``: a room id of the site in the registry.
* ``count``: people in the room, an integer from 0 to the gateway's plausibility bound
  (``softplace/plausibility.py``: capacity x 2 + 2).
* ``sources`` (optional): how many sensors the count combines (default 1).

The whole file is validated before anything is written: every bad value is reported
with its line, and a file with any is refused whole. Each row becomes a ``room_count``
point tagged from the registry, exactly as ingest writes live readings, so the detector
cannot tell imported history from live data. Importing the same file twice is harmless
(one point per room and instant).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO
from zoneinfo import ZoneInfo

from softplace.errors import SoftPlaceError
from softplace.plausibility import count_problem, timestamp_problem
from softplace.registry import PlacedRoom, Site
from softplace.schema import RoomCountField, SeriesName
from softplace.storage.base import FieldValue, Sample
from softplace.timeutil import MS_PER_S, datetime_to_ms, ms_to_s, now_ms

REQUIRED = ("timestamp", "room", "count")
DELIMITERS = (",", ";")
MAX_ERRORS_SHOWN = 10


class CsvImportError(SoftPlaceError):
    """The file is wrong; the message names the line (and the column) of each bad value,
    and nothing was written."""


@dataclass(slots=True)
class ParsedCounts:
    """A validated file: what to write, and what the store's retention would drop."""

    samples: list[Sample] = field(default_factory=list)
    too_old: int = 0


def decode(data: bytes, source: str = "<csv>") -> str:
    """UTF-8 text, a leading byte-order mark dropped; any other encoding refused with the
    line of the first byte that is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise CsvImportError(
            f"{source}:{line}: byte 0x{data[err.start]:02x} is not UTF-8; save the file as "
            "UTF-8 (Excel: 'CSV UTF-8')"
        ) from err


def delimiter_of(header: str, source: str = "<csv>") -> str:
    """``,`` or ``;`` (Excel in many European locales), from the header line."""
    found = [d for d in DELIMITERS if d in header]
    if len(found) != 1:
        raise CsvImportError(
            f"{source}:1: cannot tell the delimiter from the header {header.strip()!r}; "
            f"separate {', '.join(REQUIRED)} with ',' or ';'"
        )
    return found[0]


def parse_timestamp(text: str, tz: ZoneInfo) -> int:
    """Unix ms of an ISO 8601 timestamp (naive = local in ``tz``) or Unix seconds;
    ValueError for anything else (including a number that is not finite)."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if not math.isfinite(seconds) or abs(seconds) > MAX_UNIX_S:
            raise ValueError(f"{text!r} is not a plausible Unix time")
        return round(seconds * MS_PER_S)
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return datetime_to_ms(value)


MAX_UNIX_S = 253_402_300_799  # 9999-12-31T23:59:59Z, the last time ISO 8601 can write


def _row_sample(
    row: dict[str, str | None], site: Site, rooms: dict[str, PlacedRoom], now_s: float
) -> Sample:
    """One row -> a sample; ValueError with what is wrong (the caller adds the line)."""
    room_id = (row.get("room") or "").strip()
    placed = rooms.get(room_id)
    if placed is None:
        raise ValueError(f"room {room_id!r} is not in site {site.id!r}")
    stamp = row.get("timestamp") or ""
    try:
        time_ms = parse_timestamp(stamp, site.tz)
    except (ValueError, OverflowError) as err:
        raise ValueError(f"timestamp {stamp!r}: use ISO 8601 or Unix seconds") from err
    implausible_time = timestamp_problem(ms_to_s(time_ms), now_s)
    if implausible_time is not None:
        raise ValueError(f"timestamp {stamp.strip()!r} is {implausible_time}")
    count_text, sources_text = (row.get("count") or "").strip(), (row.get("sources") or "1")
    try:
        count = int(count_text)
        sources = int(sources_text.strip())
    except ValueError as err:
        raise ValueError(f"count {count_text!r} and sources {sources_text.strip()!r} must be"
                         " integers") from err
    if count < 0 or sources < 1:
        raise ValueError("count must be >= 0 and sources >= 1")
    implausible = count_problem(count, placed.room.capacity)
    if implausible is not None:
        raise ValueError(implausible)
    fields: dict[str, FieldValue] = {
        RoomCountField.COUNT: count, RoomCountField.SOURCES: sources,
    }
    return Sample(SeriesName.ROOM_COUNT, placed.tags, fields, time_ms)


def parse_counts(
    text: str, site: Site, source: str = "<csv>", *, now: int | None = None,
    oldest_ms: int | None = None, progress: Callable[[int], None] | None = None,
) -> ParsedCounts:
    """Validate every row of ``text`` and convert it; CsvImportError listing every bad line
    (the first ``MAX_ERRORS_SHOWN``) if any is wrong. Rows before ``oldest_ms`` (the raw
    retention) are counted in ``too_old``, not kept. ``progress`` gets each line number."""
    now_s = ms_to_s(now_ms() if now is None else now)
    header_line = text.split("\n", 1)[0]
    reader = csv.DictReader(io.StringIO(text, newline=""),
                            delimiter=delimiter_of(header_line, source))
    try:
        header = [name.strip() for name in reader.fieldnames or []]
    except csv.Error as err:
        raise CsvImportError(f"{source}:1: unreadable header: {err}") from err
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise CsvImportError(f"{source}:1: missing column(s) {', '.join(missing)}; "
                             f"the header must name {', '.join(REQUIRED)}")
    reader.fieldnames = header
    rooms = {placed.room.id: placed for placed in site.placed_rooms()}
    parsed = ParsedCounts()
    errors: list[str] = []
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            errors.append(f"{source}:{reader.line_num}: {err}")
            break  # the reader cannot resynchronise after a broken quote or a NUL byte
        line = reader.line_num
        if progress is not None:
            progress(line)
        try:
            sample = _row_sample(row, site, rooms, now_s)
        except ValueError as err:
            errors.append(f"{source}:{line}: {err}")
            continue
        if oldest_ms is not None and sample.time_ms < oldest_ms:
            parsed.too_old += 1
            continue
        parsed.samples.append(sample)
    if errors:
        shown = "; ".join(errors[:MAX_ERRORS_SHOWN])
        more = len(errors) - MAX_ERRORS_SHOWN
        tail = f"; ... and {more} more" if more > 0 else ""
        raise CsvImportError(f"{len(errors)} bad row(s), nothing imported: {shown}{tail}")
    return parsed


def read_counts(handle: TextIO, site: Site, source: str = "<csv>") -> list[Sample]:
    """Validate and convert the rows of an open text file, in file order."""
    return parse_counts(handle.read(), site, source).samples
