"""Streaming mode: follow room readings as they arrive, with small per-room state.

``DetectorService`` polls the store: each step reads ``room_count`` and ``sensor_health``
from the last watermark up to ``now - reorder_window`` (so readings arriving up to that
late are still in order), advances every site's detector, writes the concluded intervals,
daily measures, rollups and breaches plus each room's provisional current interval, and
then saves the checkpoint. A restart resumes from the checkpoint; a first start begins
``start_lookback_h`` back, at a local midnight, with the same warm-up the batch uses.

``LiveFeed`` is the same engine fed ``RoomReading``/``SensorHealth`` messages directly;
its watermark trails the newest reading by the reorder window.

The clock and the sleep are injected: tests step time, they never wait for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from detector.batch import warmup_ms
from detector.checkpoint import load_checkpoint, save_checkpoint
from detector.days import local_ms
from detector.engine import Results, SiteDetector
from detector.measures import rollup_days
from detector.records import (
    ROOM_COUNT,
    SENSOR_HEALTH,
    feed_samples,
    interval_sample,
    result_samples,
)
from detector.settings import DetectorSettings
from softplace.messages import RoomReading, SensorHealth
from softplace.registry import Registry, Site
from softplace.storage.base import Store
from softplace.timeutil import local_date, s_to_ms

log = logging.getLogger(__name__)

LIVE_STEP_MS = 10_000


@dataclass(slots=True)
class StepStats:
    readings: int = 0
    intervals: int = 0
    measures: int = 0
    breaches: int = 0
    written: int = 0


def fresh_start_ms(site: Site, now_ms: int, lookback_h: float) -> int:
    """Local midnight at or before ``now - lookback``: the first day is measured whole."""
    day = local_date(now_ms - int(lookback_h * 3_600_000), site.tz)
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
                detector = SiteDetector(
                    site, self.settings, start - warmup_ms(self.settings), emit_from_ms=start
                )
                log.info("site %s: first start at %d", site.id, start)
            self.detectors[site.id] = detector
        self._saved = dict(saved)

    def step(self, should_stop: Callable[[], bool] = lambda: False) -> StepStats:
        """One poll: catch every site up to ``now - reorder_window``. ``should_stop`` is asked
        after each chunk, once its results and the checkpoint are saved: a stop request
        ends the step there, and a restart resumes from that checkpoint."""
        stats = StepStats()
        target = s_to_ms(self.clock()) - s_to_ms(self.settings.reorder_window_s)
        chunk = int(self.settings.batch_chunk_h * 3_600_000)
        for site_id, detector in self.detectors.items():
            while detector.watermark_ms < target:
                lo = detector.watermark_ms
                hi = min(lo + chunk, target)
                tags = {"site": site_id}
                counts = self.store.query(ROOM_COUNT, lo, hi, tags)
                health = self.store.query(SENSOR_HEALTH, lo, hi, tags)
                stats.readings += feed_samples(detector, counts, health)
                detector.advance(hi)
                stats.written += self._write(detector, detector.drain(), stats)
                self._saved[site_id] = detector.to_dict()
                save_checkpoint(self.checkpoint_path, self._saved)
                if should_stop():
                    return stats
        return stats

    def _write(self, detector: SiteDetector, results: Results, stats: StepStats) -> int:
        refs = {room: pipeline.ref for room, pipeline in detector.rooms.items()}
        rollups = rollup_days(results.measures)
        samples = result_samples(results, refs, rollups)
        samples.extend(interval_sample(i, refs[i.room]) for i in detector.open_intervals())
        if samples:
            self.store.write(samples)
        stats.intervals += len(results.intervals)
        stats.measures += len(results.measures)
        stats.breaches += len(results.breaches)
        return len(samples)

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
            steps += 1
            if not should_stop():
                sleep(self.settings.poll_interval_s)


class LiveFeed:
    """The detector fed messages directly (e.g. from MQTT), for one site."""

    def __init__(
        self, site: Site, settings: DetectorSettings | None = None, *, start_ms: int,
    ) -> None:
        self.settings = settings or DetectorSettings()
        self.detector = SiteDetector(site, self.settings, start_ms)
        self._window = s_to_ms(self.settings.reorder_window_s)
        self._newest = start_ms
        self._advanced = start_ms

    def reading(self, message: RoomReading) -> bool:
        """Queue a room reading; False when it came later than the reorder window allows."""
        ts = s_to_ms(message.ts)
        accepted = self.detector.push_reading(message.room, ts, message.count)
        self._tick(ts)
        return accepted

    def health(self, message: SensorHealth) -> bool:
        if message.room is None:
            return False
        ts = s_to_ms(message.ts)
        accepted = self.detector.push_status(message.room, message.device, ts, message.online)
        self._tick(ts)
        return accepted

    def _tick(self, ts: int) -> None:
        if ts > self._newest:
            self._newest = ts
            # advancing walks every room: do it every LIVE_STEP_MS of event time, not per
            # reading (how often changes latency only, never results)
            if ts - self._window >= self._advanced + LIVE_STEP_MS:
                self._advanced = ts - self._window
                self.detector.advance(self._advanced)

    def flush(self, until_ms: int) -> Results:
        self.detector.advance(until_ms)
        return self.detector.drain()

    def drain(self) -> Results:
        return self.detector.drain()

