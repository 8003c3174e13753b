"""Streaming mode: follow room readings as they arrive, with small per-room state.

``DetectorService`` polls the store: each step runs the batch's chunk loop
(``detector/chunks.py``), which reads ``room_count`` and ``sensor_health``
from the last watermark up to ``now - reorder_window`` (so readings arriving up to that
late are still in order), advances every site's detector, writes the concluded intervals,
daily measures, rollups and breaches plus each room's provisional current interval, and
then saves the checkpoint. A restart resumes from the checkpoint; a first start begins
``start_lookback_h`` back, at a local midnight, with the same warm-up the batch uses.

Late readings: a room reading stored after the chunk holding its time was analysed is
left out of the results (until a recompute). Each step re-counts the stored readings of the
chunks in the last ``LATE_RECOUNT_S`` behind each site's position (one ``room_counts``
read per site) against what each chunk read when it ran; the difference is
readings that came too late. They are counted once, since the process started, in
``late_readings`` (the Prometheus counter and the ``detector_status`` series, which ``run``
writes after every step with each site's lag and checkpoint age). A reading later than
``LATE_RECOUNT_S`` behind the position is not counted.

Bookings (``BOOKED_TIME_RULE``): each chunk's breaches are cut and flagged by the bookings
stored for their days before they are written, and the checkpoint keeps, per room-day
with a breach concluded, a signature of the bookings that rule applied
(``booked_signature``: their used and ghost spans). After each site's chunks, every
room-day of the last ``BOOKED_RECHECK_DAYS`` that is over is compared with the bookings
stored now; where they differ (``softplace bookings reconcile`` ran later, a booking was
accepted for a past slot) the room-day's breaches are re-derived from its stored
intervals and replace the stored ones in one ``replace_range``.

The clock and the sleep are injected: tests step time, they never wait for it.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from detector.booked import booked_signature
from detector.booked_store import (
    RoomDaySignatures,
    SiteOpening,
    booked_breaches,
    replace_room_day,
    stored_booked,
)
from detector.checkpoint import load_checkpoint, save_checkpoint
from detector.chunks import Chunk, ChunkTotals, ResultWriter, chunk_ms, detector_from, run_chunks
from detector.core import Results, SiteDetector
from detector.records import day_bounds_ms
from detector.settings import DetectorSettings
from softplace.registry import Registry, Site
from softplace.schema import DetectorStatusField, SeriesName
from softplace.storage.base import (
    CountColumns,
    CountPacker,
    FieldValue,
    RetentionPolicy,
    Sample,
    Store,
)
from softplace.timeutil import local_date, local_ms, ms_to_s, s_to_ms

log = logging.getLogger(__name__)
LATE_RECOUNT_S = 3600.0  # how far behind its position a site's chunks are re-counted
# how far back a booking compared late still re-derives a room-day's stored breaches
# (`softplace detect --from --to` re-derives any range)
BOOKED_RECHECK_DAYS = 14
BOOKED_KEY = "booked"  # the site's room-day signatures in the checkpoint
MIXED = "mixed"  # a room-day's breaches were written under different bookings: re-derive


@dataclass(slots=True)
class StepStats(ChunkTotals):
    """One step over every site."""

    written: int = 0
    rederived: int = 0  # room-days whose breaches were re-derived for their bookings


@dataclass(slots=True)
class _Counted:
    """A chunk's span and the times of the room readings it read (or the latest recount),
    those of its last ``LATE_RECOUNT_S`` only: nothing earlier is ever re-counted."""

    lo_ms: int
    hi_ms: int
    times_ms: list[int]


def _times(counts: Mapping[str, CountColumns], from_ms: int) -> list[int]:
    return sorted(t for columns in counts.values() for t in columns.times_ms if t >= from_ms)


class _CountingStore:
    """The store as the chunk loop sees it, handing every room-count read to ``seen``."""

    def __init__(self, store: Store,
                 seen: Callable[[str, int, int, Mapping[str, CountColumns]], None]) -> None:
        self.store = store
        self.seen = seen

    def room_counts(self, site: str, start_ms: int, end_ms: int) -> dict[str, CountColumns]:
        counts = self.store.room_counts(site, start_ms, end_ms)
        self.seen(site, start_ms, end_ms, counts)
        return counts

    def write(self, samples: Sequence[Sample]) -> None:
        self.store.write(samples)

    def query(self, series_name: str, start_ms: int, end_ms: int,
              tags: Mapping[str, str] | None = None) -> list[Sample]:
        return self.store.query(series_name, start_ms, end_ms, tags)

    def oldest_ms(self, series_name: str) -> int | None:
        return self.store.oldest_ms(series_name)

    def stored_series(self) -> dict[str, set[str]]:
        return self.store.stored_series()

    def stored_tags(self) -> dict[str, set[str]]:
        return self.store.stored_tags()

    def apply_retention(self, policies: Sequence[RetentionPolicy],
                        now_ms: int | None = None) -> None:
        self.store.apply_retention(policies, now_ms)

    def delete_series(self, series_name: str, tags: Mapping[str, str] | None = None) -> None:
        self.store.delete_series(series_name, tags)

    def replace_range(self, series_names: Sequence[str], start_ms: int, end_ms: int,
                      tags: Mapping[str, str], samples: Sequence[Sample]) -> None:
        self.store.replace_range(series_names, start_ms, end_ms, tags, samples)

    def close(self) -> None:
        self.store.close()


@dataclass(slots=True)
class _Applied:
    """The bookings a room-day's breaches were written under, and whether the day is over."""

    signature: str
    over: bool = False


class BookedDays:
    """One site's room-days with a breach concluded, each with the signature of the
    bookings the booked-time rule applied to it (saved in the checkpoint)."""

    def __init__(self, opening: SiteOpening, saved: Mapping[str, Any] | None = None) -> None:
        self.opening = opening
        self.days: dict[tuple[str, dt.date], _Applied] = {}
        # what the last recheck saw (in memory: a restart rechecks in full); with nothing
        # noted since and the same bookings, a recheck has nothing to do
        self._last: tuple[int, int, str] | None = None
        self._noted = True
        for key, (signature, over) in (saved or {}).items():
            day, _, room = key.partition("/")
            self.days[(room, dt.date.fromisoformat(day))] = _Applied(signature, bool(over))

    def to_dict(self) -> dict[str, Any]:
        return {f"{day.isoformat()}/{room}": [a.signature, a.over]
                for (room, day), a in sorted(self.days.items())}

    def apply(self, store: Store, results: Results) -> Results:
        """The chunk's results with its breaches under the rule; notes what was applied."""
        if results.breaches:
            cut, booked = booked_breaches(store, self.opening, results.breaches)
            signatures = RoomDaySignatures(booked, self.opening.site.timezone)
            for breach in results.breaches:
                key = (breach.room.room, breach.date)
                signature = signatures.of(*key)
                seen = self.days.get(key)
                if seen is None:
                    self.days[key] = _Applied(signature)
                elif seen.signature != signature:
                    seen.signature = MIXED
            results = Results(results.intervals, results.measures, cut)
            self._noted = True
        for measure in results.measures:  # the room's day is over: its intervals are stored
            applied = self.days.get((measure.room.room, measure.date))
            if applied is not None and not applied.over:
                applied.over = self._noted = True
        return results

    def recheck(self, store: Store, watermark_ms: int) -> int:
        """Re-derive the room-days that are over whose bookings changed since their
        breaches were written; returns how many."""
        site = self.opening.site
        horizon = local_date(watermark_ms, site.tz) - dt.timedelta(days=BOOKED_RECHECK_DAYS)
        self.days = {k: a for k, a in self.days.items()
                     if k[1] >= horizon and k[0] in self.opening}
        due = sorted(k for k, a in self.days.items() if a.over)
        if not due:
            return 0
        lo = day_bounds_ms(min(d for _, d in due), site.timezone)[0]
        hi = day_bounds_ms(max(d for _, d in due), site.timezone)[1]
        booked = stored_booked(store, site, lo, hi)
        seen = (lo, hi, booked_signature(booked))
        if seen == self._last and not self._noted:
            return 0
        signatures = RoomDaySignatures(booked, site.timezone)
        redone = 0
        for room, day in due:
            signature = signatures.of(room, day)
            applied = self.days[(room, day)]
            if signature == applied.signature:
                continue
            replace_room_day(store, site, room, day, self.opening.rederive(
                store, room, day, signatures.by_room.get(room, [])))
            applied.signature = signature
            redone += 1
        self._last, self._noted = seen, False  # only once all went through
        if redone:
            log.info("site %s: %d room-days' breaches re-derived for bookings compared since",
                     site.id, redone)
        return redone


def fresh_start_ms(site: Site, now_ms: int, lookback_h: float) -> int:
    """Local midnight at or before ``now - lookback``: the first day is measured whole."""
    day = local_date(now_ms - s_to_ms(lookback_h * 3600), site.tz)
    return local_ms(day, 0, site.tz)


class DetectorService:
    def __init__(
        self, store: Store, registry: Registry, settings: DetectorSettings | None = None, *,
        sites: list[str] | None = None, clock: Callable[[], float] = time.time,
        since_ms: int | None = None, checkpoint_path: Path | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or DetectorSettings()
        self.clock = clock
        self.checkpoint_path = checkpoint_path or self.settings.checkpoint_path
        chosen = [registry.site(s) for s in sites] if sites else list(registry.sites)
        saved = load_checkpoint(self.checkpoint_path) or {}
        now_ms = s_to_ms(clock())
        self.detectors: dict[str, SiteDetector] = {}
        for site in chosen:
            if site.id in saved:
                detector = SiteDetector.from_dict(site, self.settings, saved[site.id])
                log.info("site %s: resuming at %d", site.id, detector.watermark_ms)
            else:
                start = since_ms if since_ms is not None else fresh_start_ms(
                    site, now_ms, self.settings.start_lookback_h
                )
                detector = detector_from(site, self.settings, start)
                log.info("site %s: first start at %d", site.id, start)
            self.detectors[site.id] = detector
        self.booked = {
            site.id: BookedDays(SiteOpening(site, self.settings),
                                saved.get(site.id, {}).get(BOOKED_KEY))
            for site in chosen
        }
        self._saved = dict(saved)
        self.checkpointed_at: float | None = None  # clock time of the last checkpoint saved
        self._site_checkpointed_at: dict[str, float] = {}
        self._counted: dict[str, deque[_Counted]] = {site: deque() for site in self.detectors}
        self._reader = _CountingStore(store, self._note_read)
        self.late_readings = 0  # room readings stored after their chunk ran, since start

    def lag_s(self) -> float:
        """How far the furthest-behind site's position trails the clock, in seconds."""
        oldest = min((d.watermark_ms for d in self.detectors.values()), default=None)
        return 0.0 if oldest is None else max(0.0, self.clock() - ms_to_s(oldest))

    def checkpoint_age_s(self) -> float | None:
        return None if self.checkpointed_at is None else self.clock() - self.checkpointed_at

    def _note_read(self, site: str, lo_ms: int, hi_ms: int,
                   counts: Mapping[str, CountColumns]) -> None:
        self._counted[site].append(
            _Counted(lo_ms, hi_ms, _times(counts, hi_ms - s_to_ms(LATE_RECOUNT_S))))

    def recount_late(self) -> int:
        """Re-count the room readings of each site's last ``LATE_RECOUNT_S`` behind its
        position, chunk by chunk, against what the chunk read; returns how many arrived
        since (late: the chunk was analysed without them)."""
        late = 0
        for site, counted in self._counted.items():
            horizon = self.detectors[site].watermark_ms - s_to_ms(LATE_RECOUNT_S)
            while counted and counted[0].hi_ms <= horizon:
                counted.popleft()
            if not counted:
                continue
            lo = max(counted[0].lo_ms, horizon)
            times = _times(self.store.room_counts(site, lo, counted[-1].hi_ms), lo)
            for chunk in counted:
                start = max(chunk.lo_ms, horizon)
                fresh = times[bisect.bisect_left(times, start):
                              bisect.bisect_left(times, chunk.hi_ms)]
                before = len(chunk.times_ms) - bisect.bisect_left(chunk.times_ms, start)
                late += max(0, len(fresh) - before)
                chunk.times_ms = fresh
        if late:
            log.warning("%d room readings were stored after their time was analysed; "
                        "a recompute (softplace detect --from/--to) takes them in", late)
        self.late_readings += late
        return late

    def status_samples(self) -> list[Sample]:
        """Each site's ``detector_status`` point, now."""
        now = self.clock()
        out = []
        for site, detector in self.detectors.items():
            fields: dict[str, FieldValue] = {
                DetectorStatusField.LAG_S: max(0.0, now - ms_to_s(detector.watermark_ms)),
                DetectorStatusField.LATE_READINGS: self.late_readings,
            }
            checkpointed = self._site_checkpointed_at.get(site)
            if checkpointed is not None:
                fields[DetectorStatusField.CHECKPOINT_AGE_S] = now - checkpointed
            out.append(Sample(SeriesName.DETECTOR_STATUS, {"site": site}, fields,
                              s_to_ms(now)))
        return out

    def step(self, should_stop: Callable[[], bool] = lambda: False) -> StepStats:
        """One poll: catch every site up to ``now - reorder_window``. ``should_stop`` is asked
        after each chunk, once its results and the checkpoint are saved: a stop request
        ends the step there, and a restart resumes from that checkpoint."""
        stats = StepStats()
        target = s_to_ms(self.clock()) - s_to_ms(self.settings.reorder_window_s)
        for detector in self.detectors.values():
            writer = ResultWriter(self.store, detector.refs)
            booked = self.booked[detector.site.id]
            stats.add(run_chunks(
                self._reader, detector, target, chunk_ms=chunk_ms(self.settings), writer=writer,
                keep=functools.partial(booked.apply, self.store),
                provisional=True, on_chunk=functools.partial(self._checkpoint, detector),
                should_stop=should_stop,
                packer=self.store if isinstance(self.store, CountPacker) else None,
            ))
            stats.written += writer.written
            redone = booked.recheck(self.store, detector.watermark_ms)
            if redone:
                stats.rederived += redone
                self._save(detector.site.id, self._saved.get(detector.site.id, {}))
            if should_stop():
                break
        self.recount_late()
        return stats

    def _checkpoint(self, detector: SiteDetector, _: Chunk) -> None:
        """After a chunk was written: a crash from here on replays from this point."""
        self._save(detector.site.id, detector.to_dict())

    def _save(self, site: str, state: Mapping[str, Any]) -> None:
        self._saved[site] = {**state, BOOKED_KEY: self.booked[site].to_dict()}
        save_checkpoint(self.checkpoint_path, self._saved)
        self.checkpointed_at = self.clock()
        self._site_checkpointed_at[site] = self.checkpointed_at

    def write_status(self) -> None:
        """The ``detector_status`` points of this cycle; best effort (a store that is away
        shows as a stale status, which the detector-lag alert takes as lagging)."""
        try:
            self.store.write(self.status_samples())
        except Exception:
            log.exception("could not write the detector status")

    def run(
        self, *, should_stop: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], object] = time.sleep, max_steps: int | None = None,
    ) -> None:
        """Poll until ``should_stop()`` (or ``max_steps``); store errors are retried.

        For a clean stop on a signal, pass ``should_stop=event.is_set`` and
        ``sleep=event.wait`` (see ``softplace.lifecycle.stop_on_signals``): the sleep ends
        at once and the current step ends after its chunk's checkpoint."""
        steps = 0
        while not should_stop() and (max_steps is None or steps < max_steps):
            try:
                stats = self.step(should_stop)
            except Exception:  # the store may be briefly away; the checkpoint is consistent
                log.exception("detector step failed; retrying in %.0f s",
                              self.settings.poll_interval_s)
            else:
                if stats.readings:
                    log.info("step: %d events, %d intervals, %d measures, %d breaches",
                             stats.readings, stats.intervals, stats.measures, stats.breaches)
            self.write_status()
            steps += 1
            if not should_stop():
                sleep(self.settings.poll_interval_s)
