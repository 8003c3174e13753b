"""Ingest's I/O shell: MQTT (persistent session, shared subscription) into the store.

A thin stage of the shared consumer shell (``softplace.consumer``): its worker turns each
message into a point (a bad one into a dead-letter point), writes the batch (retrying with
backoff while the store is down) and only then acknowledges each message to the broker, in
arrival order. A crash before the write leaves the messages unacknowledged, so the broker
redelivers them; the point key makes the rewrite harmless. The broker's receive maximum
(MQTT 5) and the consumer's bounded queue bound how many unacknowledged messages we hold.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ingest.core import IngestCore, Rejected
from ingest.settings import IngestSettings
from softplace import topics
from softplace.backoff import Backoff
from softplace.consumer import Consumer, Handled, Outcome, Received
from softplace.errors import RejectedWriteError, StorageError
from softplace.registry import Registry
from softplace.retention import RetentionSchedule
from softplace.schema import DeadletterField, SeriesName
from softplace.settings import MqttSettings
from softplace.storage.base import Sample, Store
from softplace.timeutil import s_to_ms

log = logging.getLogger(__name__)
UNKNOWN_SITE = "unknown"
TOPIC_FIELD_MAX = 256


class Ingest(Consumer[Sample]):
    persist_label = "store write"
    expected_errors = (StorageError,)

    def __init__(
        self,
        registry: Registry,
        store: Store,
        broker: MqttSettings,
        settings: IngestSettings,
        sites: list[str] | None = None,
        clock: Callable[[], float] = time.time,
        retention: RetentionSchedule | None = None,
    ) -> None:
        super().__init__("ingest", broker, settings.client_id, batch_size=settings.batch_size,
                         linger_s=settings.batch_interval_s,
                         retry=Backoff(cap_s=settings.max_backoff_s), clock=clock)
        self.core = IngestCore(registry)
        self.store = store
        self.settings = settings
        self.sites = sites or ["+"]
        self.refused_batches = 0  # batches the store kept only in part, refusing the rest for good
        self.retention = retention  # runs while the service does (softplace.retention)

    def _start(self) -> None:
        if self.retention is not None:
            self.retention.start()
        super()._start()

    def _stop(self) -> None:
        super()._stop()
        if self.retention is not None:
            self.retention.stop()

    def summary(self) -> str:
        return f"{super().summary()}, refused batches {self.refused_batches}"

    def subscriptions(self) -> list[str]:
        group = self.settings.shared_group if self.broker.protocol == "5" else None
        return [topics.shared(group, f) for site in self.sites
                for f in topics.upstream_filters(site)]

    def handle(self, message: Received) -> tuple[Outcome, Sample]:
        result = self.core.samples_for(message.topic, message.payload)
        if not isinstance(result, Rejected):
            return Outcome.ACCEPTED, result
        log.warning("rejected %s: %s: %s", message.topic, result.reason, result.detail)
        site = message.topic.split("/")[2] if message.topic.count("/") >= 2 else UNKNOWN_SITE
        return Outcome.DEAD_LETTERED, Sample(
            SeriesName.DEADLETTER, {"site": site, "reason": result.reason},
            {DeadletterField.N: 1, DeadletterField.TOPIC: message.topic[:TOPIC_FIELD_MAX]},
            s_to_ms(message.received_at),
        )

    def persist(self, batch: list[Handled[Sample]]) -> None:
        try:
            self.store.write([h.result for h in batch])
        except RejectedWriteError:
            # InfluxDB kept the valid points of the batch and refused the rest for good
            # (e.g. older than the retention policy): retrying cannot help
            self.refused_batches += 1
            log.exception("store refused part of a batch")
