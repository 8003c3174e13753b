"""One contract, two backends: SQLite (embedded) and the real influxd."""

from __future__ import annotations

import time

import pytest

from softplace.errors import UnknownSeriesError
from softplace.schema import Family, SeriesName
from softplace.storage.base import CountColumns, RetentionPolicy, Sample, Store
from softplace.storage.influx import MSGPACK
from softplace.storage.segments import SPAN_MS

DAY_MS = 86_400_000
ROOM = {"site": "s1", "building": "b", "floor": "f", "room": "r1", "kind": "office"}


@pytest.fixture(params=["sqlite", pytest.param("influxdb", marks=pytest.mark.services)])
def store(request: pytest.FixtureRequest) -> Store:
    if request.param == "influxdb":
        result: Store = request.getfixturevalue("influx_store")
    else:
        result = request.getfixturevalue("sqlite_store")
    return result


def _now_ms() -> int:
    return int(time.time() * 1000)


def test_store_write_then_query_returns_points_in_time_order(store: Store) -> None:
    base = _now_ms() - 60_000
    samples = [
        Sample("room_count", ROOM, {"count": c, "sources": 1}, base + i * 1000)
        for i, c in enumerate([3, 0, 5])
    ]
    store.write(list(reversed(samples)))
    got = store.query("room_count", base, base + 10_000)
    assert [s.fields["count"] for s in got] == [3, 0, 5]
    assert got[0].tags == ROOM
    assert got == samples


def test_store_query_of_an_unknown_series_raises(store: Store) -> None:
    base = _now_ms() - 60_000
    store.write([Sample(SeriesName.ROOM_COUNT, ROOM, {"count": 1, "sources": 1}, base)])
    with pytest.raises(UnknownSeriesError, match="room_cuont"):
        store.query("room_cuont", base - 1, base + 1)


def test_store_write_of_an_unknown_series_raises_and_writes_nothing(store: Store) -> None:
    base = _now_ms() - 60_000
    with pytest.raises(UnknownSeriesError):
        Sample("room_cuont", ROOM, {"count": 1, "sources": 1}, base)
    good = Sample(SeriesName.ROOM_COUNT, ROOM, {"count": 1, "sources": 1}, base)
    # a point that slipped past Sample's own check (the dataclass is frozen, not sealed)
    forged = Sample(SeriesName.ROOM_COUNT, ROOM, {"count": 2, "sources": 1}, base + 1)
    object.__setattr__(forged, "series", "room_cuont")
    with pytest.raises(UnknownSeriesError, match="room_cuont"):
        store.write([good, forged])
    assert store.query(SeriesName.ROOM_COUNT, base - 1, base + 2) == []
    assert "room_cuont" not in store.stored_series()


def test_store_rewriting_the_same_key_keeps_one_point(store: Store) -> None:
    base = _now_ms() - 60_000
    sample = Sample("room_count", ROOM, {"count": 2, "sources": 1}, base)
    store.write([sample])
    store.write([sample, sample])
    assert store.query("room_count", base - 1, base + 1) == [sample]


def test_store_query_filters_by_tags_and_half_open_range(store: Store) -> None:
    base = _now_ms() - 60_000
    other = {**ROOM, "room": "r2"}
    store.write([
        Sample("room_count", ROOM, {"count": 1, "sources": 1}, base),
        Sample("room_count", other, {"count": 4, "sources": 2}, base),
        Sample("room_count", ROOM, {"count": 7, "sources": 1}, base + 5000),
    ])
    only_r2 = store.query("room_count", base, base + 10_000, {"room": "r2"})
    assert [(s.tags["room"], s.fields["count"]) for s in only_r2] == [("r2", 4)]
    assert len(store.query("room_count", base, base + 5000)) == 2  # end is exclusive


def test_store_fields_keep_their_schema_types(store: Store) -> None:
    base = _now_ms() - 60_000
    health = {"site": "s1", "device": "d1", "room": "r1"}
    store.write([Sample("sensor_health", health, {"online": 1, "battery_pct": 80,
                                                   "rssi_dbm": -60}, base)])
    (got,) = store.query("sensor_health", base, base + 1)
    assert isinstance(got.fields["battery_pct"], float)
    assert isinstance(got.fields["rssi_dbm"], int)


def test_store_reports_oldest_point_and_stored_series(store: Store) -> None:
    base = _now_ms() - 3 * DAY_MS
    assert store.oldest_ms("breach") is None
    store.write([
        Sample("breach", ROOM, {"duration_s": 20000.0, "limit_s": 14400.0,
                                "end_ms": base + 20_000_000}, base + DAY_MS),
        Sample("breach", ROOM, {"duration_s": 15000.0, "limit_s": 14400.0,
                                "end_ms": base + 15_000_000}, base),
    ])
    assert store.oldest_ms("breach") == base
    assert store.stored_series()["breach"] == {"duration_s", "limit_s", "end_ms"}


def test_store_delete_series_by_tag(store: Store) -> None:
    base = _now_ms() - 60_000
    other = {**ROOM, "room": "r2"}
    store.write([
        Sample("room_count", ROOM, {"count": 1, "sources": 1}, base),
        Sample("room_count", other, {"count": 4, "sources": 1}, base),
    ])
    store.delete_series("room_count", {"room": "r1"})
    assert [s.tags["room"] for s in store.query("room_count", base, base + 1)] == ["r2"]


def test_store_apply_retention_is_idempotent(store: Store) -> None:
    policies = [RetentionPolicy(Family.RAW, 7), RetentionPolicy(Family.DERIVED, 30),
                RetentionPolicy(Family.AGGREGATES, 0)]
    store.apply_retention(policies)
    store.apply_retention(policies)
    base = _now_ms() - 60_000
    store.write([Sample("room_count", ROOM, {"count": 1, "sources": 1}, base)])
    assert len(store.query("room_count", base, base + 1)) == 1


def test_sqlite_retention_deletes_points_older_than_policy(sqlite_store: Store) -> None:
    now = _now_ms()
    sqlite_store.write([
        Sample("room_count", ROOM, {"count": 1, "sources": 1}, now - 10 * DAY_MS),
        Sample("room_count", ROOM, {"count": 2, "sources": 1}, now - 1 * DAY_MS),
        Sample("room_measure", {**ROOM, "band": "opening"}, {"idle_m2h": 3.0}, now - 10 * DAY_MS),
    ])
    sqlite_store.apply_retention([RetentionPolicy(Family.RAW, 7),
                                  RetentionPolicy(Family.DERIVED, 30)], now_ms=now)
    assert [s.fields["count"] for s in sqlite_store.query("room_count", 0, now)] == [2]
    assert len(sqlite_store.query("room_measure", 0, now)) == 1


@pytest.mark.services
def test_influx_retention_policies_are_created_and_altered(influx_store: Store) -> None:
    from softplace.storage.influx import InfluxStore

    assert isinstance(influx_store, InfluxStore)
    influx_store.apply_retention([RetentionPolicy(Family.RAW, 10)])
    policies = influx_store.retention_policies()
    assert policies["raw"] == "240h0m0s"
    assert policies["aggregates"] == "0s"


def test_store_reports_stored_tag_keys(store: Store) -> None:
    base = _now_ms() - 60_000
    store.write([Sample("room_count", ROOM, {"count": 1, "sources": 1}, base)])
    assert store.stored_tags()["room_count"] == set(ROOM)


@pytest.mark.services
def test_influx_oldest_point_is_found_in_any_retention_policy(influx_store: Store) -> None:
    from softplace.storage.influx import InfluxStore

    assert isinstance(influx_store, InfluxStore)
    old = _now_ms() - 40 * DAY_MS  # older than "raw" keeps, so it goes to autogen
    influx_store.influxql(f"CREATE RETENTION POLICY stray ON {influx_store.settings.database} "
                          "DURATION INF REPLICATION 1", method="POST")
    response = influx_store._http.post(
        "/write", params={"db": influx_store.settings.database, "rp": "stray", "precision": "ms"},
        content=f"room_count,site=s1,room=r1 count=3i {old}".encode(),
    )
    assert response.status_code == 204
    assert influx_store.oldest_ms("room_count") == old


def test_store_room_counts_returns_columns_per_room_in_time_order(store: Store) -> None:
    base = _now_ms() - 60_000
    other = {**ROOM, "room": "r2"}
    elsewhere = {**ROOM, "site": "s2"}
    store.write([
        Sample("room_count", ROOM, {"count": 5, "sources": 1}, base + 2000),
        Sample("room_count", ROOM, {"count": 3, "sources": 1}, base),
        Sample("room_count", other, {"count": 4, "sources": 2}, base + 1000),
        Sample("room_count", elsewhere, {"count": 9, "sources": 1}, base),
        Sample("room_count", ROOM, {"count": 7, "sources": 1}, base + 5000),  # end: excluded
        Sample("room_count", ROOM, {"count": 8, "sources": 1}, base - 1),  # before the start
    ])
    got = store.room_counts("s1", base, base + 5000)
    assert sorted(got) == ["r1", "r2"]
    assert (list(got["r1"].times_ms), list(got["r1"].counts)) == ([base, base + 2000], [3, 5])
    assert (list(got["r2"].times_ms), list(got["r2"].counts)) == ([base + 1000], [4])
    assert got["r1"].times_ms.typecode == got["r1"].counts.typecode == "q"
    assert store.room_counts("s3", base, base + 5000) == {}


def test_store_room_counts_agree_with_query_over_many_points(store: Store) -> None:
    base = _now_ms() - 3_600_000
    rooms = [{**ROOM, "room": f"r{i}"} for i in range(3)]
    samples = [
        Sample("room_count", tags, {"count": (i * 7 + j) % 9, "sources": 1}, base + i * 1000)
        for i in range(2500) for j, tags in enumerate(rooms)
    ]
    store.write(samples)
    got = store.room_counts("s1", base, base + 2_500_000)
    for tags in rooms:
        expected = store.query("room_count", base, base + 2_500_000, {"room": tags["room"]})
        columns = got[tags["room"]]
        assert list(columns.times_ms) == [s.time_ms for s in expected]
        assert list(columns.counts) == [s.fields["count"] for s in expected]


@pytest.mark.services
def test_influx_room_counts_merge_a_room_split_across_chunks(influx_store: Store) -> None:
    from softplace.storage.influx import InfluxStore

    assert isinstance(influx_store, InfluxStore)
    influx_store.counts_chunk_rows = 7  # influxd then answers in many partial series
    base = _now_ms() - 3_600_000
    rooms = [{**ROOM, "room": f"r{i}"} for i in range(2)]
    influx_store.write([
        Sample("room_count", tags, {"count": i % 5, "sources": 1}, base + i * 1000)
        for i in range(40) for tags in rooms
    ])
    got = influx_store.room_counts("s1", base, base + 40_000)
    for tags in rooms:
        assert list(got[tags["room"]].times_ms) == [base + i * 1000 for i in range(40)]
        assert list(got[tags["room"]].counts) == [i % 5 for i in range(40)]
    # influxd 1.x answers the narrow read in msgpack, the path room_counts decodes
    answer = influx_store._http.get("/query", headers={"Accept": MSGPACK}, params={
        "db": influx_store.settings.database, "q": "SHOW MEASUREMENTS", "chunked": "true"})
    assert answer.headers["content-type"].startswith(MSGPACK)


@pytest.mark.services
def test_influx_room_counts_read_json_from_a_server_without_msgpack(
    influx_store: Store,
) -> None:
    from softplace.storage.influx import InfluxStore

    assert isinstance(influx_store, InfluxStore)
    base = _now_ms() - 60_000
    influx_store.write([Sample("room_count", ROOM, {"count": 4, "sources": 1}, base)])
    influx_store.counts_accept = "application/json"  # influxd then answers in JSON lines
    got = influx_store.room_counts("s1", base, base + 1)
    assert (list(got["r1"].times_ms), list(got["r1"].counts)) == ([base], [4])


def _spread_points(base: int) -> list[Sample]:
    """Three rooms over three whole packed spans and a third, points on span boundaries
    too, six a span."""
    step = SPAN_MS // 6
    return [
        Sample("room_count", {**ROOM, "room": f"r{r}"}, {"count": (i + r) % 4, "sources": 1},
               base + i * step + r)
        for i in range(20) for r in range(3)
    ]


def test_store_room_counts_read_the_same_after_packing_and_after_a_late_point(
    store: Store,
) -> None:
    from softplace.storage.base import CountPacker

    assert isinstance(store, CountPacker)
    base = (_now_ms() // SPAN_MS - 6) * SPAN_MS
    store.write([
        *_spread_points(base),
        Sample("room_count", {**ROOM, "site": "s2"}, {"count": 9, "sources": 1}, base),
    ])
    start, end = base - 1, base + 3 * SPAN_MS + 1_000_000  # not on span boundaries

    def read() -> dict[str, tuple[list[int], list[int]]]:
        got = store.room_counts("s1", start, end)
        return {room: (list(c.times_ms), list(c.counts)) for room, c in got.items()}

    before = read()
    assert store.pack_room_counts("s1", start, end) in (0, 3 * 18)  # sqlite packs nothing
    assert read() == before
    late = Sample("room_count", ROOM, {"count": 7, "sources": 1}, base + SPAN_MS + 5)
    store.write([late])
    after = read()
    assert after["r1"][0].count(base + SPAN_MS + 5) == 1
    assert {room: got for room, got in after.items() if room != "r1"} == {
        room: got for room, got in before.items() if room != "r1"}


@pytest.mark.services
def test_influx_room_counts_take_packed_spans_only_while_no_write_touched_them(
    influx_store: Store, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from softplace.storage import segments
    from softplace.storage.influx import InfluxStore

    assert isinstance(influx_store, InfluxStore)
    monkeypatch.setattr(segments, "PART_BYTES", 200)  # several parts a span, a room split
    base = (_now_ms() // SPAN_MS - 6) * SPAN_MS
    influx_store.write([
        *_spread_points(base),
        Sample("room_count", {"site": "s1"}, {"count": 1, "sources": 1}, base + 7),  # no room
    ])
    spans = [base + i * SPAN_MS for i in range(5)]  # the last one without any point
    end = base + 5 * SPAN_MS

    def packed() -> list[int]:
        return sorted(influx_store._packed_spans("s1", base, end))

    assert packed() == []
    raw = influx_store.room_counts("s1", base, end)
    assert influx_store.pack_room_counts("s1", base - 1, end + 1) == 60
    assert packed() == spans
    assert all(len(parts) > 1 for parts in
               influx_store._packed_spans("s1", base, spans[3]).values())
    got = influx_store.room_counts("s1", base, end)
    assert {r: (list(c.times_ms), list(c.counts)) for r, c in got.items()} == {
        r: (list(c.times_ms), list(c.counts)) for r, c in raw.items()}
    # a late point and a rewritten one (same key, another count): those spans go raw
    influx_store.write([Sample("room_count", ROOM, {"count": 3, "sources": 1}, base + 9),
                        Sample("room_count", {**ROOM, "room": "r2"},
                               {"count": 0, "sources": 1}, spans[2] + 2)])
    assert packed() == [spans[1], spans[3], spans[4]]
    got = influx_store.room_counts("s1", base, end)
    assert 9 + base in got["r1"].times_ms
    assert got["r2"].counts[got["r2"].times_ms.index(spans[2] + 2)] == 0  # was 2
    # the raw range replaced: its segments go with it; a part missing: the span is not whole
    influx_store.replace_range(["room_count"], spans[3], spans[3] + SPAN_MS, {"site": "s1"}, [])
    influx_store.influxql(f"DELETE FROM \"room_count_segment\" WHERE \"part\" = '1' AND "
                          f"time = {spans[1]}ms", method="POST")
    assert packed() == [spans[4]]  # empty, packed as such, and untouched since
    influx_store.pack_room_counts("s1", base, end)  # packed again: whole
    assert packed() == spans
    influx_store.delete_series("room_count", {"site": "s1", "room": "r0"})
    assert packed() == []


@pytest.mark.services
def test_influx_pack_marks_a_span_written_while_it_was_packed(
    influx_store: Store, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from softplace.storage.influx import InfluxStore

    assert isinstance(influx_store, InfluxStore)
    base = (_now_ms() // SPAN_MS - 6) * SPAN_MS
    influx_store.write(_spread_points(base))
    read = influx_store._raw_counts

    def read_then_a_write_lands(site: str, lo: int, hi: int,
                                found: dict[str, CountColumns]) -> None:
        read(site, lo, hi, found)  # ingest's point lands now, its mark before the segments
        influx_store._post_write("raw", f"room_count,site=s1,room=r1 count=5i {base + 11}")
    monkeypatch.setattr(influx_store, "_raw_counts", read_then_a_write_lands)
    influx_store.pack_room_counts("s1", base, base + 3 * SPAN_MS)
    monkeypatch.undo()
    assert sorted(influx_store._packed_spans("s1", base, base + 3 * SPAN_MS)) == [
        base + SPAN_MS, base + 2 * SPAN_MS]
    assert base + 11 in influx_store.room_counts("s1", base, base + SPAN_MS)["r1"].times_ms
