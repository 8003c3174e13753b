"""The packed encoding of a site's span of room counts (softplace/storage/segments.py)."""

from __future__ import annotations

from array import array

import pytest

from softplace.storage import segments
from softplace.storage.base import CountColumns
from softplace.storage.segments import SPAN_MS, decode_part, encode_span, whole_spans


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


def test_segments_encode_span_round_trips_each_rooms_points() -> None:
    span = 1_700_000_000_000 // SPAN_MS * SPAN_MS
    counts = {
        "r1": _columns([span, span + 60_000, span + SPAN_MS - 1], [0, 3, 2**40]),
        "é/r2": _columns([span + 5], [-1]),
        "empty": CountColumns(),
    }
    parts = encode_span(counts)
    assert [points for _, points in parts] == [4]
    assert _decoded(parts) == {
        "r1": ([span, span + 60_000, span + SPAN_MS - 1], [0, 3, 2**40]),
        "é/r2": ([span + 5], [-1]),
    }
    assert encode_span({}) == []


def test_segments_encode_span_splits_parts_under_the_field_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(segments, "PART_BYTES", 300)
    many = _columns(list(range(100)), [i % 7 for i in range(100)])
    parts = encode_span({"a": _columns([1, 2], [1, 1]), "big": many, "z": _columns([3], [0])})
    assert len(parts) > 3 and sum(points for _, points in parts) == 103
    assert all(len(text) < 600 for text, _ in parts)
    assert _decoded(parts)["big"] == (list(range(100)), [i % 7 for i in range(100)])


def test_segments_decode_part_refuses_what_it_cannot_read() -> None:
    text, _ = encode_span({"r": _columns([1], [1])})[0]
    with pytest.raises(ValueError, match="unknown segment encoding"):
        list(decode_part("v9:" + text[3:]))
    with pytest.raises(ValueError, match="corrupt"):
        list(decode_part(text[:-8]))


def test_segments_whole_spans_rounds_inwards() -> None:
    assert whole_spans(1, 3 * SPAN_MS + 1) == (SPAN_MS, 3 * SPAN_MS)
    assert whole_spans(0, 3 * SPAN_MS) == (0, 3 * SPAN_MS)
    assert whole_spans(1, SPAN_MS + 5) == (SPAN_MS, SPAN_MS)
