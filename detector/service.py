"""Streaming mode: follow room readings as they arrive, with small per-room state.

``DetectorService`` polls the store: each step runs the batch's chunk loop
(``detector/chunks.py``), which reads ``room_count`` and ``sensor_health``
from the last watermark up to ``now - reorder_window`` (so readings arriving up to that
late are still in order), advances every site's detector, writes the concluded intervals,
daily measures, rollups and breaches plus each room's provisional current interval, and
then saves the checkpoint. A restart resumes from the checkpoint; a first start begins
``start_lookback_h`` back, at a local midnight, with the same warm-up the batch uses.

The clock and the sleep are injected: tests step time, they never wait for it.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from detector.checkpoint import load_checkpoint, save_checkpoint
from detector.chunks import Chunk, ChunkTotals, ResultWriter, chunk_ms, detector_from, run_chunks
from detector.core import SiteDetector
from detector.settings import DetectorSettings
from softplace.registry import Registry, Site
from softplace.storage.base import Store
from softplace.timeutil import local_date, local_ms, ms_to_s, s_to_ms

log = logging.getLogger(__name__)


@dataclass(slots=True)
class StepStats(ChunkTotals):
    """One step over every site."""

    written: int = 0


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
        self._saved = dict(saved)
        self.checkpointed_at: float | None = None  # clock time of the last checkpoint saved

    def lag_s(self) -> float:
        """How far the furthest-behind site's position trails the clock, in seconds."""
        oldest = min((d.watermark_ms for d in self.detectors.values()), default=None)
        return 0.0 if oldest is None else max(0.0, self.clock() - ms_to_s(oldest))

    def checkpoint_age_s(self) -> float | None:
        return None if self.checkpointed_at is None else self.clock() - self.checkpointed_at

    def step(self, should_stop: Callable[[], bool] = lambda: False) -> StepStats:
        """One poll: catch every site up to ``now - reorder_window``. ``should_stop`` is asked
        after each chunk, once its results and the checkpoint are saved: a stop request
        ends the step there, and a restart resumes from that checkpoint."""
        stats = StepStats()
        target = s_to_ms(self.clock()) - s_to_ms(self.settings.reorder_window_s)
        for detector in self.detectors.values():
            writer = ResultWriter(self.store, detector.refs)
            stats.add(run_chunks(
                self.store, detector, target, chunk_ms=chunk_ms(self.settings), writer=writer,
                provisional=True, on_chunk=functools.partial(self._checkpoint, detector),
                should_stop=should_stop,
            ))
            stats.written += writer.written
            if should_stop():
                break
        return stats

    def _checkpoint(self, detector: SiteDetector, _: Chunk) -> None:
        """After a chunk was written: a crash from here on replays from this point."""
        self._saved[detector.site.id] = detector.to_dict()
        save_checkpoint(self.checkpoint_path, self._saved)
        self.checkpointed_at = self.clock()

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
