"""Streaming (the service over a store, with an injected clock) equals batch."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from detector.batch import run_batch
from detector.service import DetectorService
from detector.settings import DetectorSettings
from softplace.storage.base import Sample, Store
from tests.detector.helpers import (
    HOUR,
    MIN,
    at,
    count_samples,
    registry,
    scratch_store,
    site,
)

MON = dt.date(2024, 3, 4)
DERIVED = ("room_interval", "room_measure", "space_measure", "breach")


def _week_of_data(store: Store) -> None:
    s1 = site()
    for day in range(3):
        date = MON + dt.timedelta(days=day)
        start = at(date)

        def meet(t: int, date: dt.date = date, day: int = day) -> int:
            if at(date, "10:00") <= t < at(date, "11:30"):
                return 3
            return 1 if day == 1 and at(date, "14:00") <= t < at(date, "14:40") else 0

        day_ms = range(start, start + 24 * HOUR, MIN)
        store.write(count_samples(s1, "meet", [(t, meet(t)) for t in day_ms]))
        office = [(t, 1 if (t // (7 * MIN)) % 3 else 0)
                  for t in range(start, start + 24 * HOUR, 2 * MIN)]
        store.write(count_samples(s1, "office", office))
    store.write([
        Sample("sensor_health", {"site": "s1", "device": "dev-office-a", "room": "office"},
               {"online": 0}, at(MON, "15:00")),
        Sample("sensor_health", {"site": "s1", "device": "dev-office-b", "room": "office"},
               {"online": 0}, at(MON, "15:00")),
    ])


def _derived(store: Store, start: int, end: int) -> dict[str, list[tuple[object, ...]]]:
    return {
        name: [(s.time_ms, tuple(sorted(s.tags.items())), tuple(sorted(s.fields.items())))
               for s in store.query(name, start, end)]
        for name in DERIVED
    }


def test_service_equals_batch_on_the_same_data(tmp_path: Path) -> None:
    settings = DetectorSettings(checkpoint_path=tmp_path / "cp.json", batch_chunk_h=5)
    batch_store, stream_store = scratch_store(), scratch_store()
    _week_of_data(batch_store)
    _week_of_data(stream_store)
    start, end = MON, MON + dt.timedelta(days=3)
    result = run_batch(batch_store, registry(), "s1", start, end, settings=settings)
    assert result.results.breaches and result.results.measures

    now = [at(MON) / 1000]
    service = DetectorService(stream_store, registry(), settings, sites=["s1"],
                              clock=lambda: now[0], since_ms=at(MON))
    for step_minutes in [7, 61, 1, 300, 13] * 40:  # irregular polls up to the end + margin
        now[0] += step_minutes * 60
        service.step()
        if now[0] * 1000 > at(end) + HOUR:
            break
    assert _derived(stream_store, at(start), at(end)) == _derived(batch_store, at(start), at(end))


def test_service_restart_resumes_from_the_checkpoint(tmp_path: Path) -> None:
    settings = DetectorSettings(checkpoint_path=tmp_path / "cp.json")
    once, twice = scratch_store(), scratch_store()
    _week_of_data(once)
    _week_of_data(twice)
    now = [at(MON) / 1000]

    def service(store: Store) -> DetectorService:
        return DetectorService(store, registry(), settings.model_copy(
            update={"checkpoint_path": tmp_path / f"{id(store)}.json"}),
            sites=["s1"], clock=lambda: now[0], since_ms=at(MON))

    uninterrupted = service(once)
    interrupted = service(twice)
    for step in range(1, 3 * 24 + 2):
        now[0] = at(MON) / 1000 + step * 3600
        uninterrupted.step()
        interrupted.step()
        if step % 10 == 0:  # "crash" and restart from the checkpoint file
            interrupted = service(twice)
    end = at(MON + dt.timedelta(days=3))
    assert _derived(twice, at(MON), end) == _derived(once, at(MON), end)


def test_service_folds_in_late_readings_and_equals_batch(tmp_path: Path) -> None:
    settings = DetectorSettings(checkpoint_path=tmp_path / "cp.json", reorder_window_s=300)
    batch_store, stream_store = scratch_store(), scratch_store()
    _week_of_data(batch_store)
    start, end = MON, MON + dt.timedelta(days=1)
    result = run_batch(batch_store, registry(), "s1", start, end, settings=settings)
    assert result.results.measures and result.results.breaches
    # readings land in the store up to 4 minutes after their time (inside the reorder
    # window), sensor status on time; the service polls in between
    source = batch_store.query("room_count", at(start), at(end) + 20 * MIN)
    source += batch_store.query("sensor_health", at(start), at(end) + 20 * MIN)
    arrivals = sorted(
        ((s.time_ms + (s.time_ms // MIN % 5) * MIN if s.series == "room_count" else s.time_ms,
          s) for s in source),
        key=lambda pair: pair[0],
    )
    assert any(landed > sample.time_ms for landed, sample in arrivals)
    now = [at(start) / 1000]
    service = DetectorService(stream_store, registry(), settings, sites=["s1"],
                              clock=lambda: now[0], since_ms=at(start))
    landed_upto = 0
    for step_minutes in [1, 7, 3, 13, 2] * 400:
        now[0] += step_minutes * 60
        arrived = [sample for landed, sample in arrivals[landed_upto:] if landed <= now[0] * 1000]
        stream_store.write(arrived)
        landed_upto += len(arrived)
        service.step()
        if now[0] * 1000 > at(end) + 15 * MIN:
            break
    assert service.detectors["s1"].late_dropped == 0
    assert _derived(stream_store, at(start), at(end)) == _derived(batch_store, at(start), at(end))


def test_service_step_stops_after_a_chunk_with_its_checkpoint_saved(tmp_path: Path) -> None:
    settings = DetectorSettings(checkpoint_path=tmp_path / "cp.json", batch_chunk_h=5)
    store = scratch_store()
    _week_of_data(store)
    now = at(MON + dt.timedelta(days=2)) / 1000
    service = DetectorService(store, registry(), settings, sites=["s1"], clock=lambda: now,
                              since_ms=at(MON))
    first = service.detectors["s1"].watermark_ms
    service.step(should_stop=lambda: True)  # e.g. SIGTERM arrived during the first chunk
    stopped_at = service.detectors["s1"].watermark_ms
    assert stopped_at == first + 5 * HOUR  # one chunk, not the whole way to now
    resumed = DetectorService(store, registry(), settings, sites=["s1"], clock=lambda: now)
    assert resumed.detectors["s1"].watermark_ms == stopped_at


def test_service_metrics_show_lag_and_checkpoint_age_over_http(tmp_path: Path) -> None:
    from detector.commands import _serve_metrics
    from softplace.settings import ObserveSettings

    settings = DetectorSettings(checkpoint_path=tmp_path / "cp.json", batch_chunk_h=5)
    store = scratch_store()
    _week_of_data(store)
    now = [at(MON) / 1000 + 2 * 24 * 3600]
    service = DetectorService(store, registry(), settings, sites=["s1"], clock=lambda: now[0],
                              since_ms=at(MON))
    assert service.checkpoint_age_s() is None
    server = _serve_metrics(ObserveSettings(port=0), service, store)
    assert server is not None
    try:
        def scrape() -> dict[str, float]:
            text = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5).text
            return {s.name: s.value for f in text_string_to_metric_families(text)
                    for s in f.samples}
        before = scrape()
        assert before["softplace_detector_lag_seconds"] >= 2 * 24 * 3600  # not started yet
        assert "softplace_detector_checkpoint_age_seconds" not in before
        service.step()
        now[0] += 90
        after = scrape()
        # caught up to now minus the reorder window, checkpointed 90 s ago
        assert after["softplace_detector_lag_seconds"] == settings.reorder_window_s + 90
        assert after["softplace_detector_checkpoint_age_seconds"] == 90
        assert after["softplace_detector_late_readings_dropped_total"] == 0
        # a reading stored behind the position is counted at the next step
        store.write(count_samples(site(), "meet", [(service.detectors["s1"].watermark_ms
                                                    - 10 * MIN + 7, 2)]))
        service.step()
        assert scrape()["softplace_detector_late_readings_dropped_total"] == 1
        assert httpx.get(f"http://127.0.0.1:{server.port}/readyz", timeout=5).status_code == 200
    finally:
        server.stop()
