"""The one chunk loop that batch and service share.

Read ``room_count`` and ``sensor_health`` for ``[watermark, watermark + chunk)`` from the
store, feed the site's ``SiteDetector``, advance it, drain what it concluded, and write
that back. The callers differ only in what they pass: how far to go (the batch's
look-ahead, the service's ``now - reorder_window``), what to keep (the batch clips to its
range), whether each room's open interval is written as provisional (service), how many
samples to buffer before a write, and what to do after each chunk (progress, checkpoint).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from detector.core import Results, SiteDetector, room_heartbeat_s
from detector.measures import RoomRef, SpaceMeasure, rollup_days
from detector.records import feed_samples, interval_sample, result_samples
from detector.settings import DetectorSettings
from softplace.registry import Site
from softplace.schema import SeriesName
from softplace.storage.base import CountColumns, CountPacker, Sample, Store
from softplace.storage.segments import SPAN_MS
from softplace.timeutil import s_to_ms

_Read = tuple[list[Sample], dict[str, CountColumns]]  # one chunk's sensor health and counts


def warmup_ms(settings: DetectorSettings, site: Site | None = None) -> int:
    """How far before its first emitted instant a detector starts reading: enough to know
    each room's state there (the longest reading validity of the site's rooms plus a
    hold)."""
    heartbeats = [room_heartbeat_s(p, settings) for p in site.placed_rooms()] if site else []
    return s_to_ms(max([settings.heartbeat_s, *heartbeats]) + settings.hold_s)


def chunk_ms(settings: DetectorSettings) -> int:
    return s_to_ms(settings.batch_chunk_h * 3600)


def detector_from(site: Site, settings: DetectorSettings, start_ms: int) -> SiteDetector:
    """A detector emitting from ``start_ms``, reading from the warm-up before it."""
    return SiteDetector(site, settings, start_ms - warmup_ms(settings, site),
                        emit_from_ms=start_ms)


class ResultWriter:
    """Result samples for one site's store, written once at least ``batch`` are pending.

    ``batch=1`` writes every non-empty chunk at once (what a checkpoint needs: it must not
    run ahead of the store); a larger batch trades memory for fewer, larger writes.
    """

    def __init__(self, store: Store, refs: dict[str, RoomRef], batch: int = 1) -> None:
        self.store = store
        self.refs = refs
        self.batch = batch
        self.written = 0
        self._pending: list[Sample] = []

    def add(self, samples: Iterable[Sample]) -> None:
        self._pending.extend(samples)
        if len(self._pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self.store.write(self._pending)
            self.written += len(self._pending)
            self._pending = []


@dataclass(frozen=True, slots=True)
class Chunk:
    """What one chunk concluded, after ``keep``: handed to ``on_chunk``."""

    lo_ms: int
    hi_ms: int
    readings: int
    results: Results
    rollups: list[SpaceMeasure]


@dataclass(slots=True)
class ChunkTotals:
    readings: int = 0
    intervals: int = 0
    measures: int = 0
    breaches: int = 0

    def count(self, chunk: Chunk) -> None:
        self.readings += chunk.readings
        self.intervals += len(chunk.results.intervals)
        self.measures += len(chunk.results.measures)
        self.breaches += len(chunk.results.breaches)

    def add(self, other: ChunkTotals) -> None:
        self.readings += other.readings
        self.intervals += other.intervals
        self.measures += other.measures
        self.breaches += other.breaches


def feed_counts(detector: SiteDetector, counts: Mapping[str, CountColumns]) -> int:
    """Push each room's stored counts into the detector; returns the points read."""
    push = detector.push_readings
    for room, columns in counts.items():
        push(room, columns.times_ms, columns.counts)
    return sum(len(columns) for columns in counts.values())


def _everything(results: Results) -> Results:
    return results


def _read(store: Store, site: str, lo: int, hi: int) -> _Read:
    health = store.query(SeriesName.SENSOR_HEALTH, lo, hi, {"site": site})
    return health, store.room_counts(site, lo, hi)


def _chunk_end(lo: int, chunk_ms: int, until_ms: int, aligned: bool) -> int:
    """``aligned``: chunks end on multiples of ``chunk_ms`` (so a store's packed spans are
    read whole where the chunk is a multiple of them); else ``chunk_ms`` after their start.
    Where chunks end never changes the results."""
    return min(lo - lo % chunk_ms + chunk_ms if aligned else lo + chunk_ms, until_ms)


def run_chunks(
    store: Store, detector: SiteDetector, until_ms: int, *, chunk_ms: int,
    writer: ResultWriter | None = None,
    keep: Callable[[Results], Results] = _everything,
    provisional: bool = False,
    on_chunk: Callable[[Chunk], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    prefetch: bool = False,
    aligned: bool = False,
    packer: CountPacker | None = None,
) -> ChunkTotals:
    """Drive ``detector`` from its watermark to ``until_ms``, ``chunk_ms`` at a time.

    Each chunk's results go through ``keep``, then (with their daily rollups, and with
    ``provisional`` each room's still-open interval) to ``writer``; ``on_chunk`` runs after
    the chunk was handed to the writer; ``should_stop`` is asked after that, so a stop
    request ends the loop at a chunk boundary. With ``prefetch`` the next chunk is read
    in a thread while this one is analysed (the store's server and this process then
    work at once; only for a caller whose store may be read from another thread while it
    writes). ``aligned`` ends chunks on multiples of ``chunk_ms``. With ``packer`` each
    span the watermark passed is packed there (``CountPacker.pack_room_counts``), so later
    reads of it are cheap.
    """
    totals = ChunkTotals()
    site = detector.site.id
    executor = ThreadPoolExecutor(1, "chunk-read") if prefetch else None
    ahead: tuple[int, int, Future[_Read]] | None = None
    try:
        while detector.watermark_ms < until_ms:
            lo = detector.watermark_ms
            hi = _chunk_end(lo, chunk_ms, until_ms, aligned)
            if ahead is not None and ahead[:2] == (lo, hi):
                health, counts = ahead[2].result()
            else:
                health, counts = _read(store, site, lo, hi)
            ahead = None
            if executor is not None and hi < until_ms:
                after = _chunk_end(hi, chunk_ms, until_ms, aligned)
                ahead = (hi, after, executor.submit(_read, store, site, hi, after))
            readings = feed_samples(detector, (), health)
            readings += feed_counts(detector, counts)
            del health, counts
            detector.advance(hi)
            results = keep(detector.drain())
            chunk = Chunk(lo, hi, readings, results, rollup_days(results.measures))
            totals.count(chunk)
            if writer is not None:
                samples = result_samples(results, writer.refs, chunk.rollups)
                if provisional:
                    samples.extend(
                        interval_sample(i, writer.refs[i.room])
                        for i in detector.open_intervals()
                    )
                writer.add(samples)
            if packer is not None and hi // SPAN_MS > lo // SPAN_MS:
                packer.pack_room_counts(site, lo - lo % SPAN_MS, hi)
            if on_chunk is not None:
                on_chunk(chunk)
            if should_stop():
                break
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)  # no read left behind
    return totals
