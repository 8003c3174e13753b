"""Recomputing a range replaces that range's results: nothing an earlier run concluded
survives a run that no longer concludes it (on both backends)."""

from __future__ import annotations

import datetime as dt

import pytest

from detector.batch import RESULT_SERIES, run_site_batch
from detector.settings import DetectorSettings
from softplace.storage.base import Sample, Store
from softplace.storage.influx import InfluxStore
from softplace.storage.sqlite import SqliteStore
from tests.detector.helpers import LONDON, MIN, count_samples, site

DAY_MS = 86_400_000


def _monday() -> dt.date:
    today = dt.datetime.now(LONDON).date()
    return today - dt.timedelta(days=today.weekday() + 14)


def _recompute_twice(store: Store) -> None:
    s1 = site()
    monday = _monday()
    start_ms = int(dt.datetime.combine(monday, dt.time(), LONDON).timestamp() * 1000)
    end_ms = start_ms + 5 * DAY_MS
    # an empty room reported every 5 minutes: vacant with a 15-min heartbeat, mostly
    # unknown with a 1-min one
    store.write(count_samples(s1, "meet", [(t, 0) for t in range(start_ms, end_ms, 5 * MIN)]))
    friday = monday + dt.timedelta(days=5)
    first = run_site_batch(store, s1, monday, friday, settings=DetectorSettings(heartbeat_s=900))
    assert first.results.breaches
    second = run_site_batch(store, s1, monday, friday, settings=DetectorSettings(heartbeat_s=60))
    assert not second.results.breaches
    stored: dict[str, list[Sample]] = {
        name.value: store.query(name, start_ms, end_ms, {"site": "s1"})
        for name in RESULT_SERIES}
    assert stored["breach"] == []
    expected = sorted(s.key for s in _samples(second))
    assert sorted(s.key for points in stored.values() for s in points) == expected
    meet_seconds = sum((float(s.fields["duration_s"]) for s in stored["room_interval"]
                        if s.tags["room"] == "meet"), 0.0)
    assert meet_seconds <= 5 * 86_400


def _samples(result: object) -> list[Sample]:
    from detector.batch import BatchResult
    from detector.records import result_samples

    assert isinstance(result, BatchResult)
    refs = {r.room: r for r in (m.room for m in result.results.measures)}
    return result_samples(result.results, refs, result.rollups)


def test_recompute_replaces_the_range_on_sqlite(sqlite_store: SqliteStore) -> None:
    _recompute_twice(sqlite_store)


@pytest.mark.services
def test_recompute_replaces_the_range_on_influxdb(influx_store: InfluxStore) -> None:
    _recompute_twice(influx_store)


def test_replace_range_keeps_points_outside_the_range_and_other_sites(
    sqlite_store: SqliteStore
) -> None:
    def breach(site_id: str, ms: int) -> Sample:
        return Sample("breach", {"site": site_id, "room": "r"},
                      {"duration_s": 1.0, "limit_s": 1.0, "end_ms": ms + 1}, ms)

    sqlite_store.write([breach("s1", 5), breach("s1", 15), breach("s1", 25), breach("s2", 15)])
    sqlite_store.replace_range(["breach"], 10, 20, {"site": "s1"}, [breach("s1", 12)])
    kept = [(s.tags["site"], s.time_ms) for s in sqlite_store.query("breach", 0, 100)]
    assert kept == [("s1", 5), ("s1", 12), ("s2", 15), ("s1", 25)]
