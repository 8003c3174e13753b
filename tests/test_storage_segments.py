"""The packed encoding of a site-hour of room counts (softplace/storage/segments.py)."""

from __future__ import annotations

from array import array

import pytest

from softplace.storage import segments
from softplace.storage.base import CountColumns
from softplace.storage.segments import HOUR_MS, decode_part, encode_hour, whole_hours


def _columns(times: list[int], counts: list[int]) -> CountColumns:
    return CountColumns(array("q", times), array("q", counts))


def _decoded(parts: list[tuple[str, int]]) -> dict[str, tuple[list[int], list[int]]]:
    found: dict[str, tuple[list[int], list[int]]] = {}
    for text, _ in parts:
        for room, columns in decode_part(text):
            times, counts = found.setdefault(room, ([], []))
            times.extend(columns.times_ms)
            counts.extend(columns.counts)
    return found


def test_segments_encode_hour_round_trips_each_rooms_points() -> None:
    hour = 1_700_000_000_000 // HOUR_MS * HOUR_MS
    counts = {
        "r1": _columns([hour, hour + 60_000, hour + HOUR_MS - 1], [0, 3, 2**40]),
        "é/r2": _columns([hour + 5], [-1]),
        "empty": CountColumns(),
    }
    parts = encode_hour(counts)
    assert [points for _, points in parts] == [4]
    assert _decoded(parts) == {
        "r1": ([hour, hour + 60_000, hour + HOUR_MS - 1], [0, 3, 2**40]),
        "é/r2": ([hour + 5], [-1]),
    }
    assert encode_hour({}) == []


def test_segments_encode_hour_splits_parts_under_the_field_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(segments, "PART_BYTES", 300)
    many = _columns(list(range(100)), [i % 7 for i in range(100)])
    parts = encode_hour({"a": _columns([1, 2], [1, 1]), "big": many, "z": _columns([3], [0])})
    assert len(parts) > 3 and sum(points for _, points in parts) == 103
    assert all(len(text) < 600 for text, _ in parts)
    assert _decoded(parts)["big"] == (list(range(100)), [i % 7 for i in range(100)])


def test_segments_decode_part_refuses_what_it_cannot_read() -> None:
    text, _ = encode_hour({"r": _columns([1], [1])})[0]
    with pytest.raises(ValueError, match="unknown segment encoding"):
        list(decode_part("v9:" + text[3:]))
    with pytest.raises(ValueError, match="corrupt"):
        list(decode_part(text[:-8]))


def test_segments_whole_hours_rounds_inwards() -> None:
    assert whole_hours(1, 3 * HOUR_MS + 1) == (HOUR_MS, 3 * HOUR_MS)
    assert whole_hours(0, 3 * HOUR_MS) == (0, 3 * HOUR_MS)
    assert whole_hours(1, HOUR_MS + 5) == (HOUR_MS, HOUR_MS)
