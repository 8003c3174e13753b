"""Batch mode: recompute any stored time range and write the results back.

It runs the service's chunk loop (``detector/chunks.py``) over a fixed range, with a
warm-up before the range (heartbeat + hold, enough to know each room's state at
the start) and a look-ahead after it (hold, enough to settle a run of zeros at the end).
Use whole local days (pass dates) for measures and breaches of every day in the range.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from detector.booked_store import SiteOpening, booked_breaches
from detector.chunks import Chunk, chunk_ms, detector_from, run_chunks
from detector.core import Results
from detector.intervals import Interval
from detector.measures import SpaceMeasure
from detector.records import result_samples
from detector.settings import DetectorSettings
from softplace.errors import InvalidRangeError
from softplace.registry import Registry, Site
from softplace.schema import SeriesName
from softplace.storage.base import CountPacker, Store
from softplace.timeutil import datetime_to_ms, local_ms, s_to_ms

log = logging.getLogger(__name__)

RESULT_SERIES = (
    SeriesName.ROOM_INTERVAL, SeriesName.ROOM_MEASURE, SeriesName.SPACE_MEASURE,
    SeriesName.BREACH,
)
TimeArg = dt.date | dt.datetime | int


def to_ms(value: TimeArg, tz: ZoneInfo) -> int:
    """A local date (its midnight in ``tz``), an aware datetime, or Unix ms."""
    if isinstance(value, dt.datetime):
        return datetime_to_ms(value)  # ValueError for a naive datetime
    if isinstance(value, dt.date):
        return local_ms(value, 0, tz)
    return int(value)


@dataclass(slots=True)
class BatchResult:
    """Everything a batch run concluded for ``[start_ms, end_ms)``, already written if asked."""

    site: str
    start_ms: int
    end_ms: int
    results: Results = field(default_factory=Results)
    rollups: list[SpaceMeasure] = field(default_factory=list)
    readings: int = 0
    late_dropped: int = 0
    written: int = 0

    @property
    def intervals(self) -> list[Interval]:
        return self.results.intervals


def _within(results: Results, start_ms: int, end_ms: int, tz: ZoneInfo) -> Results:
    """Keep what belongs to [start, end): intervals clipped, whole days only."""
    kept = Results()
    for interval in results.intervals:
        if interval.start_ms >= end_ms:
            continue
        if interval.end_ms > end_ms:
            span = interval.end_ms - interval.start_ms
            part = end_ms - interval.start_ms
            kept.intervals.append(Interval(
                interval.room, interval.start_ms, end_ms, interval.state, interval.peak_count,
                interval.count_ms * part // span,
            ))
        else:
            kept.intervals.append(interval)
    day_ends: dict[dt.date, bool] = {}  # a chunk's measures share a day or two

    def whole(date: dt.date) -> bool:
        ends = day_ends.get(date)
        if ends is None:
            ends = day_ends[date] = local_ms(date, 24 * 60, tz) <= end_ms
        return ends

    kept.measures = [m for m in results.measures if whole(m.date)]
    kept.breaches = [b for b in results.breaches if whole(b.date)]
    return kept


def run_site_batch(
    store: Store, site: Site, start: TimeArg, end: TimeArg, *,
    settings: DetectorSettings | None = None, write: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> BatchResult:
    """Recompute ``[start, end)`` for one site from ``room_count`` and ``sensor_health``."""
    settings = settings or DetectorSettings()
    tz = site.tz
    start_ms, end_ms = to_ms(start, tz), to_ms(end, tz)
    if end_ms <= start_ms:
        raise InvalidRangeError("the batch range ends before it starts")
    detector = detector_from(site, settings, start_ms)
    origin = detector.origin_ms
    stop = end_ms + s_to_ms(settings.hold_s)  # look-ahead: settles a run of zeros at the end
    result = BatchResult(site.id, start_ms, end_ms)

    def collect(chunk: Chunk) -> None:
        result.results.extend(chunk.results)
        result.rollups.extend(chunk.rollups)
        if progress is not None:
            progress(chunk.hi_ms - origin, stop - origin)

    # the next chunk is read while this one is analysed (a server's CPU beside ours), in
    # chunks on multiples of their length (a store's packed spans read whole); a run that
    # writes packs the spans it passes (a recompute refreshes stale packed spans)
    totals = run_chunks(
        store, detector, stop, chunk_ms=chunk_ms(settings), writer=None,
        keep=functools.partial(_within, start_ms=start_ms, end_ms=end_ms, tz=tz),
        on_chunk=collect, prefetch=True, aligned=True,
        packer=store if write and isinstance(store, CountPacker) else None,
    )
    result.readings = totals.readings
    if end_ms < detector.watermark_ms:  # intervals still open at the end, clipped to it
        still_open = Results(intervals=detector.open_intervals())
        tail = _within(still_open, start_ms, end_ms, tz).intervals
        result.results.intervals.extend(tail)
    # breaches under the booked-time rule, as the follow loop writes them
    result.results.breaches, _ = booked_breaches(
        store, SiteOpening(site, settings), result.results.breaches)
    if write:
        # the range's results, whole, in place of whatever an earlier run left there
        samples = result_samples(result.results, detector.refs, result.rollups)
        store.replace_range(RESULT_SERIES, start_ms, end_ms, {"site": site.id}, samples)
        result.written = len(samples)
    result.late_dropped = detector.late_dropped
    log.info(
        "batch %s: %d readings, %d intervals, %d measures, %d breaches",
        site.id, result.readings, len(result.results.intervals),
        len(result.results.measures), len(result.results.breaches),
    )
    return result


def run_batch(
    store: Store, registry: Registry, site_id: str, start: TimeArg, end: TimeArg, *,
    settings: DetectorSettings | None = None, write: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> BatchResult:
    """Recompute one site of the registry over ``[start, end)``; see ``run_site_batch``."""
    return run_site_batch(
        store, registry.site(site_id), start, end, settings=settings, write=write,
        progress=progress,
    )


def summary(result: BatchResult) -> dict[str, Any]:
    return {
        "site": result.site, "readings": result.readings,
        "intervals": len(result.results.intervals), "measures": len(result.results.measures),
        "breaches": len(result.results.breaches), "written": result.written,
        "late_dropped": result.late_dropped,
    }


StoreOpener = Callable[[], Store]  # picklable (a module-level function, or a partial of one)


def _site_summary(open_store: StoreOpener, site: Site, start: TimeArg, end: TimeArg,
                  settings: DetectorSettings, write: bool) -> dict[str, Any]:
    """One site's batch in a worker process of its own, with a store of its own."""
    store = open_store()
    try:
        return summary(run_site_batch(store, site, start, end, settings=settings, write=write))
    finally:
        store.close()


def run_sites_parallel(
    open_store: StoreOpener, sites: Sequence[Site], start: TimeArg, end: TimeArg, *,
    workers: int, settings: DetectorSettings | None = None, write: bool = True,
) -> Iterator[dict[str, Any]]:
    """``run_site_batch`` for each site, ``workers`` sites at a time in processes of their
    own (sites share nothing, so a city's recompute uses every core); yields each site's
    ``summary`` as it finishes. A failing site raises here, after the others finished."""
    settings = settings or DetectorSettings()
    context = multiprocessing.get_context("spawn")  # no fork of a process holding threads
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_site_summary, open_store, site, start, end, settings, write)
                   for site in sites]
        for future in as_completed(futures):
            yield future.result()
