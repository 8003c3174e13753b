"""Retention on a schedule inside a long-running service, for both backends.

Applying the policies only when a command starts left points past their limit in a
store that a service kept open for weeks (SQLite deletes only when asked). A
``RetentionSchedule`` applies them at start and then every ``every_s`` on its own thread:
SQLite deletes what is past each family's limit; InfluxDB gets its retention policies
re-asserted (its own retention service drops the expired shards), so a policy altered
behind the service's back is put back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from softplace.storage.base import RetentionPolicy, Store

log = logging.getLogger(__name__)
RETENTION_EVERY_S = 3600.0  # well inside the audit's margin (one shard group plus an hour)
JOIN_S = 10.0


class RetentionSchedule:
    def __init__(
        self, store: Store, policies: Sequence[RetentionPolicy], *,
        every_s: float = RETENTION_EVERY_S, clock: Callable[[], float] = time.time,
    ) -> None:
        if every_s <= 0:
            raise ValueError(f"every_s must be > 0, got {every_s}")
        self.store = store
        self.policies = list(policies)
        self.every_s = every_s
        self.clock = clock
        self.runs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)

    def run_once(self) -> None:
        """Apply the policies now (the clock's now); a failure is logged and retried at
        the next run, never raised into the service."""
        try:
            self.store.apply_retention(self.policies, now_ms=int(self.clock() * 1000))
        except Exception:  # the store may be down for a while; the next run catches up
            log.exception("applying the retention policies failed; retrying in %.0f s",
                          self.every_s)
        else:
            self.runs += 1

    def _loop(self) -> None:
        while True:
            self.run_once()
            if self._stop.wait(self.every_s):
                return

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(JOIN_S)
