"""InfluxDB over its v1 HTTP API: line protocol in, InfluxQL out.

Works with influxd 1.6 to 1.11 and with the v1 compatibility endpoints of InfluxDB 2.x
and 3.x (database + retention policy mapped to a bucket). Each family of series lives in
its own retention policy (``raw``, ``derived``, ``aggregates``), so the database itself
enforces retention. A 204 from ``/write`` means the points are in the WAL, which influxd
fsyncs before answering (``wal-fsync-delay = 0s``, the default): that is our durable write.
"""

from __future__ import annotations

import bisect
import json
import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal

import httpx
import msgpack  # type: ignore[import-untyped,unused-ignore]

from softplace.errors import RejectedWriteError, StorageError
from softplace.schema import SERIES, RoomCountField, SegmentField, SeriesName, series
from softplace.settings import InfluxSettings
from softplace.storage.base import CountColumns, FieldValue, RetentionPolicy, Sample
from softplace.storage.segments import (
    SPAN_MS,
    decode_into,
    empty_part,
    encode_span,
    whole_spans,
)

log = logging.getLogger(__name__)

QUERY_CHUNK = 10_000  # rows per chunk of an ordinary query's answer
MSGPACK = "application/x-msgpack"  # 1.x matches the whole Accept header: no q-list
COUNTS_CHUNK = 100_000  # rows per chunk of the detector's narrow read: fewer, larger lines
PACK_MS = 4 * SPAN_MS  # packed per read and write: a write stays far below influxd's 25 MB
# body limit
_SITE, _ROOM, _PART = "site", "room", "part"


def quote_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_literal(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return "'" + escaped + "'"


# line protocol escapes (the same as influxdb-client's Point)
_ESCAPE_MEASUREMENT = str.maketrans({",": r"\,", " ": r"\ ", "\n": r"\n", "\t": r"\t",
                                     "\r": r"\r"})
_ESCAPE_KEY = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ ", "\n": r"\n", "\t": r"\t",
                             "\r": r"\r"})
_ESCAPE_STRING = str.maketrans({'"': r"\"", "\\": r"\\"})
_TAG_PARTS_MAX = 65_536  # distinct tag sets remembered (a site's rooms, devices, reasons)
_tag_parts: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}


def _tag_part(name: str, tags: Mapping[str, str]) -> str:
    """``measurement,k=v,... `` for a series and tag set, built once per distinct set:
    ingest writes the same few thousand over and over."""
    key = (name, tuple(tags.items()))
    part = _tag_parts.get(key)
    if part is None:
        pairs = []
        for tag, value in sorted(tags.items()):
            escaped = value.translate(_ESCAPE_KEY)
            if escaped.endswith("\\"):
                escaped += " "
            if tag and escaped:
                pairs.append(f",{tag.translate(_ESCAPE_KEY)}={escaped}")
        part = f"{name.translate(_ESCAPE_MEASUREMENT)}{''.join(pairs)} "
        if len(_tag_parts) >= _TAG_PARTS_MAX:
            _tag_parts.clear()
        _tag_parts[key] = part
    return part


def _field(name: str, value: FieldValue) -> str | None:
    key = name.translate(_ESCAPE_KEY)
    if isinstance(value, bool):
        return f"{key}={'true' if value else 'false'}"
    if isinstance(value, int):
        return f"{key}={value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            return None  # line protocol has no NaN or infinity: the field is left out
        text = str(value)
        return f"{key}={text[:-2] if text.endswith('.0') else text}"
    return f'{key}="{value.translate(_ESCAPE_STRING)}"'


def to_line(sample: Sample) -> str:
    """The sample as one line of line protocol (ms precision); "" when no field is left."""
    fields = [f for f in (_field(k, v) for k, v in sorted(sample.fields.items())) if f]
    if not fields:
        return ""
    return f"{_tag_part(sample.series, sample.tags)}{','.join(fields)} {sample.time_ms}"


class InfluxStore:
    """Implements :class:`softplace.storage.base.Store` on InfluxDB's v1 API."""

    counts_chunk_rows = COUNTS_CHUNK
    counts_accept = MSGPACK  # what the narrow read asks for; JSON is read too
    count_segments = True  # room_counts reads whole spans from room_count_segment

    def __init__(self, settings: InfluxSettings, client: httpx.Client | None = None) -> None:
        self.settings = settings
        auth = None
        if settings.username:
            password = settings.password.get_secret_value() if settings.password else ""
            auth = httpx.BasicAuth(settings.username, password)
        self._http = client or httpx.Client(
            base_url=settings.url, timeout=settings.timeout_s, auth=auth,
            verify=settings.verify_tls,
        )

    # -- writing -------------------------------------------------------------------------
    def write(self, samples: Sequence[Sample]) -> None:
        """Room counts go out with a ``dirty`` mark on each site-span they touch (in the
        same request, so in the same WAL write): a packed span written again is read raw."""
        by_rp: dict[str, list[str]] = {}
        rps: dict[str, list[str]] = {}  # series name -> its policy's lines
        touched: set[tuple[str, int]] = set()
        for sample in samples:  # series() refuses an unknown name before anything is sent
            lines = rps.get(sample.series)
            if lines is None:
                lines = rps[sample.series] = by_rp.setdefault(
                    series(sample.series).family.value, [])
            lines.append(to_line(sample))
            if sample.series == SeriesName.ROOM_COUNT:
                touched.add((sample.tags.get(_SITE, ""), sample.time_ms // SPAN_MS))
        if touched:
            marks = rps.get(SeriesName.ROOM_COUNT_SEGMENT)
            if marks is None:
                marks = by_rp.setdefault(series(SeriesName.ROOM_COUNT_SEGMENT).family.value, [])
            marks.extend(_dirty_line(site, span * SPAN_MS) for site, span in sorted(touched)
                         if site)
        for rp, lines in by_rp.items():
            self._post_write(rp, "\n".join(lines))

    def _post_write(self, rp: str, body: str) -> None:
        params = {"db": self.settings.database, "rp": rp, "precision": "ms"}
        try:
            response = self._http.post("/write", params=params, content=body.encode())
        except httpx.HTTPError as err:
            raise StorageError(f"InfluxDB at {self.settings.url} unreachable: {err}") from err
        if response.status_code == 204:
            return
        message = _error_text(response)
        if response.status_code == 400:
            raise RejectedWriteError(f"InfluxDB refused points: {message}")
        raise StorageError(f"InfluxDB write failed ({response.status_code}): {message}")

    # -- reading -------------------------------------------------------------------------
    def influxql(self, query: str, *, method: str = "GET") -> list[dict[str, Any]]:
        """Run InfluxQL (chunked) and return the result statements' series, merged."""
        params = {
            "db": self.settings.database, "q": query, "epoch": "ms",
            "chunked": "true", "chunk_size": str(QUERY_CHUNK),
        }
        try:
            if method == "POST":
                response = self._http.post("/query", params=params)
            else:
                response = self._http.get("/query", params=params)
        except httpx.HTTPError as err:
            raise StorageError(f"InfluxDB at {self.settings.url} unreachable: {err}") from err
        if response.status_code != 200:
            raise StorageError(f"InfluxDB query failed ({response.status_code}): "
                               f"{_error_text(response)}; query: {query}")
        found: list[dict[str, Any]] = []
        for chunk in _json_lines(response.text):
            for result in chunk.get("results", []):
                if "error" in result:
                    raise StorageError(f"InfluxDB: {result['error']}; query: {query}")
                found.extend(result.get("series", []))
        return found

    def query(
        self,
        series_name: str,
        start_ms: int,
        end_ms: int,
        tags: Mapping[str, str] | None = None,
    ) -> list[Sample]:
        known = series(series_name)
        conditions = [f"time >= {start_ms}ms", f"time < {end_ms}ms"]
        conditions += [
            f"{quote_ident(k)} = {quote_literal(v)}" for k, v in sorted((tags or {}).items())
        ]
        query = (
            f"SELECT * FROM {self._from(series_name)} WHERE {' AND '.join(conditions)}"
        )
        samples: list[Sample] = []
        for block in self.influxql(query):
            columns: list[str] = block["columns"]
            for row in block.get("values", []):
                record = dict(zip(columns, row, strict=True))
                sample_tags = {t: str(record[t]) for t in known.tags if record.get(t) is not None}
                fields: dict[str, FieldValue] = {
                    f: record[f] for f in known.fields if record.get(f) is not None
                }
                if fields:
                    samples.append(Sample(series_name, sample_tags, fields, int(record["time"])))
        samples.sort(key=lambda s: (s.time_ms, sorted(s.tags.items())))
        return samples

    def room_counts(self, site: str, start_ms: int, end_ms: int) -> dict[str, CountColumns]:
        """The whole spans that ``room_count_segment`` holds whole and unmarked (no
        room-count write touched them since they were packed) from there; every other
        instant from ``room_count`` itself (``_raw_counts``)."""
        found: dict[str, CountColumns] = {}
        first, end = whole_spans(start_ms, end_ms)
        packed = self._packed_spans(site, first, end) if self.count_segments else {}
        at = start_ms
        for span in sorted(packed):
            if span > at:
                self._raw_counts(site, at, span, found)
            for part in packed[span]:
                decode_into(part, found)
            at = span + SPAN_MS
        if end_ms > at:
            self._raw_counts(site, at, end_ms, found)
        return found

    def _packed_spans(self, site: str, first: int, end: int) -> dict[int, list[str]]:
        """Span -> its segment parts in order, for the spans of ``[first, end)`` whose
        segment is whole (parts 0 .. parts-1) and not marked dirty."""
        if end <= first:
            return {}
        fields = ", ".join(quote_ident(f) for f in (
            SegmentField.DATA, SegmentField.PARTS, SegmentField.DIRTY))
        query = (f"SELECT {fields} FROM {self._from(SeriesName.ROOM_COUNT_SEGMENT)}"
                 f" WHERE {quote_ident(_SITE)} = {quote_literal(site)}"
                 f" AND time >= {first}ms AND time < {end}ms GROUP BY {quote_ident(_PART)}")
        stored: dict[int, dict[int, tuple[str | None, int | None, bool]]] = {}
        for chunk in self._stream_query(query, QUERY_CHUNK):
            for result in chunk.get("results", []):
                if "error" in result:
                    raise StorageError(f"InfluxDB: {result['error']}; query: {query}")
                for block in result.get("series", []):
                    part = int((block.get("tags") or {}).get(_PART) or -1)
                    for span, data, parts, dirty in block.get("values") or ():
                        stored.setdefault(int(span), {})[part] = (data, parts, bool(dirty))
        packed: dict[int, list[str]] = {}
        for span, parts_of in stored.items():
            first_part = parts_of.get(0)
            if first_part is None or first_part[2] or first_part[1] is None:
                continue
            total = first_part[1]
            texts = [parts_of[i][0] if i in parts_of and parts_of[i][1] == total else None
                     for i in range(total)]
            if len(parts_of) == total and all(isinstance(t, str) for t in texts):
                packed[span] = [str(t) for t in texts]
        return packed

    def _stream_query(self, query: str, chunk_rows: int) -> Iterator[dict[str, Any]]:
        """The chunks of a /query answer as they stream in, msgpack where the server
        speaks it (influxd 1.x), JSON lines otherwise."""
        params = {
            "db": self.settings.database, "q": query, "epoch": "ms",
            "chunked": "true", "chunk_size": str(chunk_rows),
        }
        try:
            with self._http.stream("GET", "/query", params=params,
                                   headers={"Accept": self.counts_accept}) as response:
                if response.status_code != 200:
                    response.read()
                    raise StorageError(f"InfluxDB query failed ({response.status_code}): "
                                       f"{_error_text(response)}; query: {query}")
                yield from _chunks(response)
        except httpx.HTTPError as err:
            raise StorageError(f"InfluxDB at {self.settings.url} unreachable: {err}") from err

    def _raw_counts(self, site: str, start_ms: int, end_ms: int,
                    found: dict[str, CountColumns]) -> None:
        """Narrow InfluxQL (time and ``count`` only, grouped by room), chunked, answered in
        msgpack where the server speaks it (influxd 1.x; JSON otherwise) and decoded as it
        streams in; each chunk's rows go straight onto the room's arrays in ``found``."""
        query = (
            f"SELECT {quote_ident(RoomCountField.COUNT)} FROM {self._from(SeriesName.ROOM_COUNT)}"
            f" WHERE {quote_ident(_SITE)} = {quote_literal(site)}"
            f" AND time >= {start_ms}ms AND time < {end_ms}ms GROUP BY {quote_ident(_ROOM)}"
        )
        for chunk in self._stream_query(query, self.counts_chunk_rows):
            _add_count_rows(found, chunk, query)

    def pack_room_counts(self, site: str, start_ms: int, end_ms: int) -> int:
        """Pack the whole spans of ``[start_ms, end_ms)`` from the raw series into
        ``room_count_segment``, in place of what was packed there before; returns the
        raw points packed. Then influxd counts each span's raw points again: a span
        written between the read and the segments' write is marked dirty at once."""
        first, end = whole_spans(start_ms, end_ms)
        packed = 0
        for lo in range(first, end, PACK_MS):
            hi = min(lo + PACK_MS, end)
            counts: dict[str, CountColumns] = {}
            self._raw_counts(site, lo, hi, counts)
            samples: list[Sample] = []
            expected: dict[int, tuple[int, int]] = {}  # span -> (points, sum of counts)
            for span in range(lo, hi, SPAN_MS):
                rooms = _span_of(counts, span)
                if rooms:
                    expected[span] = (sum(len(c) for c in rooms.values()),
                                      sum(sum(c.counts) for c in rooms.values()))
                parts = encode_span(rooms) or [(empty_part(), 0)]
                for index, (data, points) in enumerate(parts):
                    samples.append(Sample.checked_upstream(
                        SeriesName.ROOM_COUNT_SEGMENT, {_SITE: site, _PART: str(index)},
                        {SegmentField.DATA: data, SegmentField.POINTS: points,
                         SegmentField.PARTS: len(parts), SegmentField.DIRTY: False}, span))
                    packed += points
            self.replace_range((SeriesName.ROOM_COUNT_SEGMENT,), lo, hi, {_SITE: site},
                               samples)
            now = self._raw_per_span(site, lo, hi)
            moved = [span for span in sorted(now.keys() | expected.keys())
                     if now.get(span) != expected.get(span)]
            if moved:
                self._post_write(series(SeriesName.ROOM_COUNT_SEGMENT).family.value,
                                 "\n".join(_dirty_line(site, span) for span in moved))
        log.debug("packed %d room_count points of %s into segments", packed, site)
        return packed

    def _raw_per_span(self, site: str, lo: int, hi: int) -> dict[int, tuple[int, int]]:
        """Span -> (raw ``room_count`` points with a room, their counts' sum) influxd holds
        for it now: the sum catches a point rewritten with another count meanwhile."""
        count = quote_ident(RoomCountField.COUNT)
        query = (f"SELECT count({count}), sum({count})"
                 f" FROM {self._from(SeriesName.ROOM_COUNT)}"
                 f" WHERE {quote_ident(_SITE)} = {quote_literal(site)}"
                 f" AND {quote_ident(_ROOM)} != '' AND time >= {lo}ms AND time < {hi}ms"
                 f" GROUP BY time({SPAN_MS // 60_000}m)")
        found: dict[int, tuple[int, int]] = {}
        for block in self.influxql(query):
            for span, points, total in block.get("values") or ():
                if points:
                    found[int(span)] = (int(points), int(total))
        return found

    def _from(self, series_name: str) -> str:
        rp = series(series_name).family.value
        return f"{quote_ident(self.settings.database)}.{quote_ident(rp)}.{quote_ident(series_name)}"

    def oldest_ms(self, series_name: str) -> int | None:
        """The oldest point in *any* retention policy: a point written to the wrong one
        (say ``autogen``) must not hide from the privacy audit."""
        database = quote_ident(self.settings.database)
        oldest: int | None = None
        for rp in self.retention_policies():
            source = f"{database}.{quote_ident(rp)}.{quote_ident(series_name)}"
            for block in self.influxql(f"SELECT * FROM {source} ORDER BY time ASC LIMIT 1"):
                for row in block.get("values", [])[:1]:
                    oldest = int(row[0]) if oldest is None else min(oldest, int(row[0]))
        return oldest

    def stored_tags(self) -> dict[str, set[str]]:
        """Series name -> tag keys actually stored, across every retention policy."""
        return self._show_keys("TAG")

    def stored_series(self) -> dict[str, set[str]]:
        """Series name -> field keys actually stored, across every retention policy."""
        return self._show_keys("FIELD")

    def _show_keys(self, kind: Literal["TAG", "FIELD"]) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for rp in self.retention_policies():
            for block in self.influxql(f"SHOW {kind} KEYS FROM {quote_ident(rp)}./.*/"):
                keys = found.setdefault(block["name"], set())
                keys.update(v[0] for v in block.get("values", []))
        return found

    # -- administration -----------------------------------------------------------------
    def ensure_database(self) -> None:
        self.influxql(f"CREATE DATABASE {quote_ident(self.settings.database)}", method="POST")

    def retention_policies(self) -> dict[str, str]:
        """Retention policy name -> duration as InfluxDB reports it (``0s`` = forever)."""
        blocks = self.influxql(
            f"SHOW RETENTION POLICIES ON {quote_ident(self.settings.database)}"
        )
        return {row[0]: row[1] for block in blocks for row in block.get("values", [])}

    def apply_retention(
        self, policies: Sequence[RetentionPolicy], now_ms: int | None = None
    ) -> None:
        del now_ms  # InfluxDB applies retention on its own clock
        if not self.settings.manage_retention:
            missing = {p.family.value for p in policies} - set(self.retention_policies())
            if missing:
                raise StorageError(
                    f"retention policies {sorted(missing)} missing on {self.settings.database}; "
                    "map them to buckets (influx v1 dbrp create) or set "
                    "influxdb.manage_retention: true"
                )
            return
        self.ensure_database()
        existing = self.retention_policies()
        database = quote_ident(self.settings.database)
        for policy in policies:
            name = policy.family.value
            duration = f"{policy.days}d" if policy.days > 0 else "INF"
            default = " DEFAULT" if name == "raw" else ""
            verb = "ALTER" if name in existing else "CREATE"
            # shard groups of a day for short policies keep expiry close to the policy
            shard = " SHARD DURATION 1d" if 0 < policy.days <= 60 else ""
            self.influxql(
                f"{verb} RETENTION POLICY {quote_ident(name)} ON {database} "
                f"DURATION {duration} REPLICATION 1{shard}{default}",
                method="POST",
            )
            log.info("retention policy %s on %s: %s", name, self.settings.database, duration)

    def delete_series(self, series_name: str, tags: Mapping[str, str] | None = None) -> None:
        """Room counts take their site's packed segments with them (all of them without a
        site tag): a segment packs every room of a site-span."""
        where = " AND ".join(
            f"{quote_ident(k)} = {quote_literal(v)}" for k, v in sorted((tags or {}).items())
        )
        query = f"DROP SERIES FROM {quote_ident(series_name)}"
        self.influxql(f"{query} WHERE {where}" if where else query, method="POST")
        if series_name == SeriesName.ROOM_COUNT:
            site = (tags or {}).get(_SITE)
            segments = f"DROP SERIES FROM {quote_ident(SeriesName.ROOM_COUNT_SEGMENT)}"
            self.influxql(f"{segments} WHERE {quote_ident(_SITE)} = {quote_literal(site)}"
                          if site is not None else segments, method="POST")

    def replace_range(
        self, series_names: Sequence[str], start_ms: int, end_ms: int,
        tags: Mapping[str, str], samples: Sequence[Sample],
    ) -> None:
        for name in {*series_names, *(s.series for s in samples)}:
            series(name)
        where = " AND ".join([
            *(f"{quote_ident(k)} = {quote_literal(v)}" for k, v in sorted(tags.items())),
            f"time >= {start_ms}ms", f"time < {end_ms}ms",
        ])
        for name in series_names:  # DELETE spans every retention policy of the database
            self.influxql(f"DELETE FROM {quote_ident(name)} WHERE {where}", method="POST")
        if SeriesName.ROOM_COUNT in series_names:  # its site-spans' segments go with it
            site = tags.get(_SITE)
            where = " AND ".join([
                *([f"{quote_ident(_SITE)} = {quote_literal(site)}"] if site is not None else []),
                f"time >= {start_ms // SPAN_MS * SPAN_MS}ms", f"time < {end_ms}ms",
            ])
            self.influxql(f"DELETE FROM {quote_ident(SeriesName.ROOM_COUNT_SEGMENT)} "
                          f"WHERE {where}", method="POST")
        if samples:
            self.write(samples)

    def ping(self) -> bool:
        try:
            return self._http.get("/ping").status_code == 204
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self._http.close()


def _chunks(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The chunks of a streamed /query answer, msgpack or JSON lines by its content type."""
    if response.headers.get("content-type", "").startswith(MSGPACK):
        unpacker = msgpack.Unpacker(raw=False, use_list=False)  # tuples: half the decode cost
        for data in response.iter_bytes():
            unpacker.feed(data)
            yield from unpacker
    else:
        for line in response.iter_lines():
            if line.strip():
                yield json.loads(line)


def _add_count_rows(found: dict[str, CountColumns], chunk: dict[str, Any], query: str) -> None:
    """One chunk of the narrow read: rows ``[time, count]`` per room, transposed in C."""
    for result in chunk.get("results", []):
        if "error" in result:
            raise StorageError(f"InfluxDB: {result['error']}; query: {query}")
        for block in result.get("series", []):
            room = (block.get("tags") or {}).get("room")
            rows: Sequence[Sequence[int]] = block.get("values") or ()
            if not room or not rows:
                continue
            times, counts = zip(*rows, strict=True)
            columns = found.get(room)
            if columns is None:
                columns = found[room] = CountColumns()
            columns.times_ms.extend(times)
            columns.counts.extend(counts)


def _dirty_line(site: str, span_ms: int) -> str:
    """The mark a room-count write leaves on part 0 of a packed site-span."""
    tags = {_SITE: site, _PART: "0"}
    return f"{_tag_part(SeriesName.ROOM_COUNT_SEGMENT, tags)}{SegmentField.DIRTY}=true {span_ms}"


def _span_of(counts: Mapping[str, CountColumns], span: int) -> dict[str, CountColumns]:
    """Each room's points in ``[span, span + SPAN_MS)`` (its columns in time order)."""
    found: dict[str, CountColumns] = {}
    for room, columns in counts.items():
        times = columns.times_ms
        lo = bisect.bisect_left(times, span)
        hi = bisect.bisect_left(times, span + SPAN_MS, lo)
        if hi > lo:
            found[room] = CountColumns(times[lo:hi], columns.counts[lo:hi])
    return found


def _json_lines(text: str) -> Iterator[dict[str, Any]]:
    for line in text.splitlines():
        if line.strip():
            yield json.loads(line)


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", response.text))
    except ValueError:
        return response.text.strip()[:500]


__all__ = ["SERIES", "InfluxStore", "RejectedWriteError"]
