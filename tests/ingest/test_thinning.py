"""Change-only storage (``softplace.thinning``): the rules, and the detector reading the
thinned series exactly like the full one."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detector.batch import run_site_batch
from detector.settings import DetectorSettings
from gateway.batcher import Batcher
from gateway.core import Outgoing
from ingest.core import IngestCore
from softplace import topics
from softplace.messages import RoomReading, SensorHealth
from softplace.schema import SeriesName
from softplace.storage.base import Sample
from softplace.thinning import Held, thin_batch
from tests.detector.helpers import MIN, at, canonical, count_samples, registry, scratch_store, site
from tests.detector.test_properties import END, START, events_strategy
from tests.detector.test_service import MON, _week_of_data

H = 300_000  # the ingest default, in ms
HEARTBEAT_S = H / 1000


def _held(t: int, count: int, sources: int = 1) -> Held:
    return Held(t, count, sources)


def test_thinning_drops_repeats_and_keeps_changes() -> None:
    readings = [("r", _held(t, c)) for t, c in [(0, 1), (10, 1), (20, 2), (30, 2), (40, 2)]]
    thinned = thin_batch({}, readings, H)
    assert thinned.keep == [True, False, True, False, False]
    assert thinned.prev == []


def test_thinning_keeps_a_change_of_sources_and_an_out_of_order_reading() -> None:
    readings = [("r", _held(100, 1)), ("r", _held(110, 1, 2)), ("r", _held(105, 1, 2))]
    assert thin_batch({}, readings, H).keep == [True, True, True]


def test_thinning_keeps_one_point_per_heartbeat_window() -> None:
    readings = [("r", _held(t, 3)) for t in range(0, 3 * H, 60_000)]
    kept = [held.time_ms for (_, held), keep in zip(readings, thin_batch({}, readings, H).keep,
                                                     strict=True) if keep]
    assert kept == [0, H, 2 * H]


def test_thinning_keeps_the_reading_before_a_silence_even_from_the_last_batch() -> None:
    readings = [("r", _held(0, 3)), ("r", _held(60_000, 3)), ("r", _held(60_000 + H, 3))]
    assert thin_batch({}, readings, H).keep == [True, True, True]
    # the same silence across two batches: the earlier batch's last reading is its prev
    later = thin_batch({"r": _held(60_000, 3)}, [("r", _held(60_000 + H, 3))], H)
    assert later.keep == [True]
    assert later.prev == ["r"]


def test_thinning_compares_a_batch_with_its_prev_and_stores_lone_prevs() -> None:
    thinned = thin_batch({"r": _held(0, 3), "quiet": _held(0, 1)}, [("r", _held(10_000, 3))], H)
    assert thinned.keep == [False]
    assert thinned.prev == ["quiet"]  # the gateway's flush of a room gone quiet


def test_thinning_keeps_everything_of_a_room_whose_sensor_went_offline() -> None:
    readings = [("r", _held(t, 3)) for t in (10, 20, 30)]
    thinned = thin_batch({"r": _held(0, 3)}, readings, H, keep_rooms={"r"})
    assert thinned.keep == [True, True, True]
    assert thinned.prev == ["r"]


def test_thinning_off_stores_every_reading() -> None:
    readings = [("r", _held(t, 3)) for t in (10, 20, 30)]
    assert thin_batch({"r": _held(0, 3)}, readings, 0).keep == [True, True, True]


# -- the detector reads the thinned series exactly like the full one -----------------------
def _as_rows(samples: Iterable[Sample]) -> list[tuple[int, Outgoing]]:
    """What the gateway's outbox would hold for these stored points, in time order (a
    status before a reading at the same instant, as the detector orders them)."""
    ordered = sorted(samples, key=lambda s: (s.time_ms, s.series != SeriesName.SENSOR_HEALTH))
    rows = []
    for i, sample in enumerate(ordered, 1):
        tags = sample.tags
        if sample.series == SeriesName.ROOM_COUNT:
            payload = RoomReading(site=tags["site"], room=tags["room"], ts=sample.time_ms / 1000,
                                  count=int(sample.fields["count"]),
                                  sources=int(sample.fields["sources"])).to_json()
            rows.append((i, Outgoing(topics.room(tags["site"], tags["room"]), payload)))
        else:
            payload = SensorHealth(site=tags["site"], device=tags["device"], room=tags["room"],
                                   ts=sample.time_ms / 1000,
                                   online=bool(sample.fields["online"])).to_json()
            rows.append((i, Outgoing(topics.health(tags["site"], tags["device"]), payload)))
    return rows


def _through_the_hop(samples: list[Sample], seed: int) -> tuple[list[Sample], int]:
    """The gateway's batching (batches of random sizes, the data's own time as the
    forwarder's clock, every room's tail flushed at the end) and ingest's core."""
    s1 = site()
    batcher = Batcher(s1.id, {d: p.room.id for d, p in s1.device_rooms().items()}, "t")
    core = IngestCore(registry(), HEARTBEAT_S)
    rows = _as_rows(samples)
    rng = random.Random(seed)
    stored: list[Sample] = []
    thinned = 0
    i = 0
    while i < len(rows):
        chunk = rows[i:i + rng.choice([1, 2, 7, 50, 400])]
        i += len(chunk)
        now = _time_s(chunk[-1][1].payload)
        for batch in batcher.build(chunk, now).batches:
            result = core.batch_for(batch.payload)
            assert not result.rejected and result.ack is not None
            stored += result.samples
            thinned += result.thinned
    for batch in batcher.build([], float("inf")).batches:  # the rooms went quiet
        stored += core.batch_for(batch.payload).samples
    return stored, thinned


def _time_s(payload: bytes) -> float:
    return float(RoomReading.model_validate_json(payload).ts) if b'"count"' in payload else \
        float(SensorHealth.model_validate_json(payload).ts)


def _detect(samples: list[Sample], start: int, end: int, detector: DetectorSettings) -> object:
    store = scratch_store()
    try:
        store.write(samples)
        result = run_site_batch(store, site(), start, end, settings=detector, write=False)
        return canonical(result.results)
    finally:
        store.close()


def test_thinning_gives_the_detector_identical_results_on_the_service_week() -> None:
    collect = scratch_store()
    _week_of_data(collect)
    start, end = at(MON), at(MON + dt.timedelta(days=3))
    full = [*collect.query("room_count", start, end), *collect.query("sensor_health", start, end)]
    collect.close()
    stored, thinned = _through_the_hop(full, seed=1)
    assert thinned > len(full) // 2  # it does thin: minutely repeats
    detector = DetectorSettings()
    assert _detect(stored, start, end, detector) == _detect(full, start, end, detector)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=events_strategy, seed=st.integers(0, 1000))
def test_thinning_gives_the_detector_identical_results_on_random_events(
    events: list[tuple[str, int, int]], seed: int
) -> None:
    """The detector's property-test data sets (readings and offline sensors), each reading
    repeated every minute for a while so there is something to thin."""
    s1 = site()
    samples: list[Sample] = []
    seen: set[tuple[str, int]] = set()
    for room, minute, count in events:
        ts = START + minute * MIN
        if count < 0:
            samples += [Sample("sensor_health", {"site": "s1", "device": d, "room": room},
                               {"online": 0}, ts) for d in s1.room(room).room.devices]
            continue
        for repeat in range(1 + seed % 9):
            t = ts + repeat * MIN
            if t < END and (room, t) not in seen:
                seen.add((room, t))
                samples += count_samples(s1, room, [(t, count)])
    stored, _ = _through_the_hop(samples, seed)
    detector = DetectorSettings(hold_s=240, heartbeat_s=600, reorder_window_s=600)
    assert _detect(stored, START, END, detector) == _detect(samples, START, END, detector)
