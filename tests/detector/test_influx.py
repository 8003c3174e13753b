"""The detector against the real influxd: batch results stored, read back, same report."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from detector.batch import run_batch
from detector.report import build_report
from detector.service import DetectorService
from detector.settings import DetectorSettings
from softplace.storage.base import Store
from softplace.storage.segments import SPAN_MS, whole_spans
from tests.detector.helpers import HOUR, MIN, at, count_samples, registry, scratch_store, site

# within the raw retention (influxd drops older points): the Monday of last week
_TODAY = dt.datetime.now(dt.UTC).date()
MON = _TODAY - dt.timedelta(days=_TODAY.weekday() + 7)
pytestmark = pytest.mark.services


def _fill(store: Store) -> None:
    s1 = site()
    for day in range(2):
        date = MON + dt.timedelta(days=day)
        start = at(date)
        meet = [(t, 3 if at(date, "11:00") <= t < at(date, "12:00") else 0)
                for t in range(start, start + 24 * HOUR, MIN)]
        store.write(count_samples(s1, "meet", meet))


def _derived(store: Store, name: str) -> list[tuple[object, ...]]:
    return [(s.time_ms, sorted(s.tags.items()), sorted(s.fields.items()))
            for s in store.query(name, at(MON), at(MON + dt.timedelta(days=2)))]


def test_influx_batch_results_equal_in_memory_and_report_reads_them(influx_store: Store) -> None:
    memory = scratch_store()
    _fill(influx_store)
    _fill(memory)
    end = MON + dt.timedelta(days=2)
    run_batch(influx_store, registry(), "s1", MON, end)
    run_batch(memory, registry(), "s1", MON, end)
    for name in ("room_interval", "room_measure", "space_measure", "breach"):
        stored = _derived(influx_store, name)
        assert stored, name
        assert stored == _derived(memory, name), name
    report = build_report(influx_store, registry(), "s1", MON, MON + dt.timedelta(days=1))
    assert report.source == "stored"
    assert [r.room for r in report.under_used] == ["meet"]


def test_influx_service_follows_the_store_like_batch(influx_store: Store, tmp_path: Path) -> None:
    _fill(influx_store)
    settings = DetectorSettings(checkpoint_path=tmp_path / "cp.json")
    now = [at(MON) / 1000]
    service = DetectorService(influx_store, registry(), settings, sites=["s1"],
                              clock=lambda: now[0], since_ms=at(MON))
    while now[0] * 1000 < at(MON + dt.timedelta(days=2)) + HOUR:
        now[0] += 5 * 3600
        service.step()
    memory = scratch_store()
    _fill(memory)
    run_batch(memory, registry(), "s1", MON, MON + dt.timedelta(days=2), settings=settings)
    assert _derived(influx_store, "room_measure") == _derived(memory, "room_measure")
    assert _derived(influx_store, "breach") == _derived(memory, "breach")


def test_influx_batch_packs_the_hours_it_passes_and_reads_them_back_the_same(
    influx_store: Store,
) -> None:
    from softplace.storage.influx import InfluxStore

    assert isinstance(influx_store, InfluxStore)
    _fill(influx_store)
    end = MON + dt.timedelta(days=2)
    raw = run_batch(influx_store, registry(), "s1", MON, end, write=False)
    assert influx_store._packed_spans("s1", at(MON), at(end)) == {}  # written: marked only
    run_batch(influx_store, registry(), "s1", MON, end)  # writes results and packs
    first, last = whole_spans(at(MON), at(end))
    packed = influx_store._packed_spans("s1", at(MON), at(end))
    assert len(packed) == (last - first) // SPAN_MS and all(packed.values())
    again = run_batch(influx_store, registry(), "s1", MON, end, write=False)  # from segments
    assert again.results == raw.results and again.readings == raw.readings
    # a point stored late into a packed hour: read from the raw series, results follow it
    influx_store.write(count_samples(site(), "meet", [(at(MON, "15:00") + 30_000, 2)]))
    late = run_batch(influx_store, registry(), "s1", MON, end, write=False)
    influx_store.count_segments = False
    assert late.results == run_batch(influx_store, registry(), "s1", MON, end,
                                     write=False).results
    assert late.results != raw.results
