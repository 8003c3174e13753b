"""Packed room-count segments: six hours of a site's ``room_count`` points in a few strings.

A derived cache of the raw series (which stays the truth), so that reading a month of a
large site costs a server a few thousand points instead of millions: influxd 1.x spends
several microseconds of CPU per point it answers, whatever the point holds. Pure: no I/O.

A span's rooms are split into parts of at most ``PART_BYTES`` before compression (a
string field of influxd holds at most 64 KB, and base64 of incompressible data grows by a
third). A part is ``v1:`` + base64(zlib(header, times, counts)): the header (JSON) lists
each room and its number of points, then every room's times and then every room's counts
follow as little-endian int64, so decoding is a decompress and two ``frombytes``.
"""

from __future__ import annotations

import base64
import json
import struct
import sys
import zlib
from array import array
from collections.abc import Iterator, Mapping

from softplace.storage.base import CountColumns
from softplace.timeutil import MS_PER_H

SPAN_MS = 6 * MS_PER_H  # what one segment holds: the batch's default chunk, on UTC multiples;
# fewer, longer spans decode with less work per room, a late point sends more back to raw
VERSION = "v1:"
PART_BYTES = 40_000  # raw bytes per part: base64 of it, incompressible, stays under 64 KB
_POINT_BYTES = 16  # a time and a count, int64 each
_ROOM_BYTES = 16  # a room's header entry beyond its name, a bound
_HEADER = struct.Struct("<I")
_BIG_ENDIAN = sys.byteorder == "big"


def whole_spans(start_ms: int, end_ms: int) -> tuple[int, int]:
    """The whole spans inside ``[start_ms, end_ms)``: ``(first, end)``, empty when equal."""
    first = -(-start_ms // SPAN_MS) * SPAN_MS
    end = end_ms // SPAN_MS * SPAN_MS
    return first, max(first, end)


def _little(values: array[int]) -> bytes:
    if _BIG_ENDIAN:
        values = array("q", values)
        values.byteswap()
    return values.tobytes()


def _encode(rooms: list[tuple[str, CountColumns]]) -> str:
    header = json.dumps([[room, len(columns)] for room, columns in rooms],
                        separators=(",", ":")).encode()
    body = b"".join([
        _HEADER.pack(len(header)), header,
        *(_little(columns.times_ms) for _, columns in rooms),
        *(_little(columns.counts) for _, columns in rooms),
    ])
    return VERSION + base64.b64encode(zlib.compress(body, 1)).decode("ascii")


def encode_span(counts: Mapping[str, CountColumns]) -> list[tuple[str, int]]:
    """One span's points per room as the parts to store, each with the number of points
    it holds (no part for a span without points)."""
    parts: list[tuple[str, int]] = []
    pending: list[tuple[str, CountColumns]] = []
    size = 0
    for room in sorted(counts):
        columns = counts[room]
        if not len(columns):
            continue
        cost = _POINT_BYTES * len(columns) + len(room.encode()) + _ROOM_BYTES
        if pending and size + cost > PART_BYTES:
            parts.append((_encode(pending), sum(len(c) for _, c in pending)))
            pending, size = [], 0
        if cost > PART_BYTES:  # one room's span alone over a part: split its points
            per_part = max(1, (PART_BYTES - len(room.encode()) - _ROOM_BYTES) // _POINT_BYTES)
            for lo in range(0, len(columns), per_part):
                piece = CountColumns(columns.times_ms[lo:lo + per_part],
                                     columns.counts[lo:lo + per_part])
                parts.append((_encode([(room, piece)]), len(piece)))
            continue
        pending.append((room, columns))
        size += cost
    if pending:
        parts.append((_encode(pending), sum(len(c) for _, c in pending)))
    return parts


def empty_part() -> str:
    """The part of a span without points: it says "packed, nothing there"."""
    return _encode([])


def _body(text: str) -> tuple[list[tuple[str, int]], memoryview, int]:
    """A part's rooms and point numbers, its body, and where the times start."""
    if not text.startswith(VERSION):
        raise ValueError(f"unknown segment encoding {text[:8]!r}")
    try:
        body = zlib.decompress(base64.b64decode(text[len(VERSION):]))
    except (ValueError, zlib.error) as err:
        raise ValueError(f"corrupt segment: {err}") from err
    (length,) = _HEADER.unpack_from(body)
    at = _HEADER.size + length
    rooms = [(str(room), int(n)) for room, n in json.loads(body[_HEADER.size:at])]
    if len(body) != at + 2 * 8 * sum(n for _, n in rooms):
        raise ValueError("corrupt segment: length does not match its header")
    return rooms, memoryview(body), at


def decode_into(text: str, found: dict[str, CountColumns]) -> None:
    """Append one part's points to each room's columns in ``found`` (straight from the
    decompressed bytes, no array per room); ValueError for a part this version cannot
    read."""
    if _BIG_ENDIAN:
        for room, columns in decode_part(text):
            into = found.setdefault(room, CountColumns())
            into.times_ms.extend(columns.times_ms)
            into.counts.extend(columns.counts)
        return
    rooms, body, at = _body(text)
    counts_at = at + 8 * sum(n for _, n in rooms)
    offset = 0
    for room, n in rooms:
        have = found.get(room)
        if have is None:
            have = found[room] = CountColumns()
        size = 8 * n
        have.times_ms.frombytes(body[at + offset:at + offset + size])
        have.counts.frombytes(body[counts_at + offset:counts_at + offset + size])
        offset += size


def decode_part(text: str) -> Iterator[tuple[str, CountColumns]]:
    """The rooms of one part and their points, in the order packed; ValueError for a part
    this version cannot read."""
    rooms, body, at = _body(text)
    total = sum(n for _, n in rooms)
    times, counts = array("q"), array("q")
    times.frombytes(body[at:at + 8 * total])
    counts.frombytes(body[at + 8 * total:])
    if _BIG_ENDIAN:
        times.byteswap()
        counts.byteswap()
    offset = 0
    for room, n in rooms:
        yield room, CountColumns(times[offset:offset + n], counts[offset:offset + n])
        offset += n
