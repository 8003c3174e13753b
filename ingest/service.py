"""Ingest's I/O shell: MQTT (persistent session, shared subscription) into the store.

A thin stage of the shared consumer shell (``softplace.consumer``): its worker turns each
message into points (a bad one into a dead-letter point; a gateway's batch into the points
of all it carries, room counts thinned to their changes), writes them (retrying with
backoff while the store is down) and only then acknowledges each message to the broker, in
arrival order, and publishes a ``BatchAck`` for each batch: only that lets the gateway
forget its rows. A crash before the write leaves the messages unacknowledged, so the broker
redelivers them (and the gateway re-sends a batch it got no ack for); the point key makes
the rewrite harmless. The broker's receive maximum (MQTT 5) and the consumer's bounded
queue bound how many unacknowledged messages we hold.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ingest.core import BatchResult, IngestCore, Rejected
from ingest.settings import IngestSettings
from softplace import topics
from softplace.backoff import Backoff
from softplace.consumer import Consumer, Handled, Outcome, Received
from softplace.errors import RejectedWriteError, StorageError
from softplace.messages import INTERNAL_ERROR, BatchAck
from softplace.mqtt import QOS_AT_LEAST_ONCE
from softplace.observe import StoreMetrics
from softplace.registry import Registry
from softplace.retention import RetentionSchedule
from softplace.schema import DeadletterField, SeriesName
from softplace.settings import MqttSettings
from softplace.storage.base import Sample, Store
from softplace.timeutil import s_to_ms

log = logging.getLogger(__name__)
UNKNOWN_SITE = "unknown"
TOPIC_FIELD_MAX = 256
WRITE_CHUNK = 5000  # points per store write: a batch of batches is written in parts
BATCH_LINGER_S = 0.1  # at most, after a gateway batch, for more to join its store write


@dataclass(slots=True)
class Points:
    """What one message gives: its points, and the batch ack to publish once stored."""

    samples: list[Sample] = field(default_factory=list)
    ack: BatchAck | None = None


class Ingest(Consumer[Points]):
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
        self.core = IngestCore(registry, settings.heartbeat_s)
        self.store = store
        self.settings = settings
        self.sites = sites or ["+"]
        self.refused_batches = 0  # writes the store kept only in part, refusing the rest for good
        self.batches = 0  # gateway batches handled (a redelivery counts again)
        self.thinned = 0  # room readings of those batches not stored: repeats (change-only)
        self.acks_sent = 0  # batch acknowledgements published
        self.points = 0  # points the store took (a rewrite counts again)
        self.retention = retention  # runs while the service does (softplace.retention)
        self.metrics: StoreMetrics | None = None  # set by whoever serves /metrics

    def _start(self) -> None:
        if self.retention is not None:
            self.retention.start()
        super()._start()

    def _stop(self) -> None:
        super()._stop()
        if self.retention is not None:
            self.retention.stop()

    def summary(self) -> str:
        return (f"{super().summary()}, refused batches {self.refused_batches}; gateway batches "
                f"{self.batches}, readings thinned {self.thinned}, points written "
                f"{self.points}, batch acks {self.acks_sent}")

    def subscriptions(self) -> list[str]:
        group = self.settings.shared_group if self.broker.protocol == "5" else None
        return [topics.shared(group, f) for site in self.sites
                for f in topics.upstream_filters(site)]

    def linger_for(self, first: Received) -> float:
        # a gateway batch carries up to its outbox batch of points already; a long linger
        # would hold up the gateway's window of batches in flight (its rate: the window
        # over the time a batch takes to come back acknowledged)
        if topics.parse_kind(first.topic) == topics.TopicKind.BATCH:
            return min(self.linger_s, BATCH_LINGER_S)
        return self.linger_s

    def handle(self, message: Received) -> tuple[Outcome, Points]:
        if topics.parse_kind(message.topic) == topics.TopicKind.BATCH:
            return self._handle_batch(message)
        result = self.core.samples_for(message.topic, message.payload)
        if not isinstance(result, Rejected):
            return Outcome.ACCEPTED, Points([result])
        return Outcome.DEAD_LETTERED, Points([self._rejected(message, result)])

    def _handle_batch(self, message: Received) -> tuple[Outcome, Points]:
        result: BatchResult = self.core.batch_for(message.payload)
        self.batches += 1
        self.thinned += result.thinned
        points = Points(result.samples, result.ack)
        # one millisecond apart: several rejected items of one batch keep their own points
        points.samples.extend(self._rejected(message, r, offset_ms=i)
                              for i, r in enumerate(result.rejected))
        if result.ack is None:
            return Outcome.DEAD_LETTERED, points
        return Outcome.ACCEPTED, points

    def _rejected(self, message: Received, rejected: Rejected, offset_ms: int = 0) -> Sample:
        log.warning("rejected %s: %s: %s", message.topic, rejected.reason, rejected.detail)
        site = message.topic.split("/")[2] if message.topic.count("/") >= 2 else UNKNOWN_SITE
        return Sample(
            SeriesName.DEADLETTER, {"site": site, "reason": rejected.reason},
            {DeadletterField.N: 1, DeadletterField.TOPIC: message.topic[:TOPIC_FIELD_MAX]},
            s_to_ms(message.received_at) + offset_ms,
        )

    def persist(self, batch: list[Handled[Points]]) -> None:
        samples = [sample for h in batch for sample in h.result.samples]
        for start in range(0, len(samples), WRITE_CHUNK):
            chunk = samples[start:start + WRITE_CHUNK]
            started = time.monotonic()
            try:
                self.store.write(chunk)
                self.points += len(chunk)
                if self.metrics is not None:
                    self.metrics.batch_size.observe(len(chunk))
                    self.metrics.write_seconds.observe(time.monotonic() - started)
            except RejectedWriteError:
                self.refused_batches += 1
                raise
            except Exception:
                if self.metrics is not None:
                    self.metrics.write_failures.inc()
                raise

    def transient(self, err: Exception) -> bool:
        # Unavailable (unreachable, timeout, a 5xx, SQLite locked or full): retry the batch.
        # A refused write (InfluxDB's 400: a field type conflict, a point past its retention
        # policy; a value SQLite cannot hold) or any other exception is a bug in one
        # message: the consumer writes the batch again message by message and dead-letters
        # the one that fails. InfluxDB keeps the valid points of a refused write, so the
        # rest of that message's batch lands too.
        return isinstance(err, StorageError) and not isinstance(err, RejectedWriteError)

    def internal_error(self, message: Received, detail: str) -> Points:
        points = Points([self._rejected(message, Rejected(INTERNAL_ERROR, detail))])
        if topics.parse_kind(message.topic) == topics.TopicKind.BATCH:
            # acknowledged all the same, or the gateway would send it again forever
            with contextlib.suppress(Exception):
                points.ack = self.core.batch_for(message.payload).ack
        return points

    def after_ack(self, batch: list[Handled[Points]]) -> None:
        for handled in batch:
            ack = handled.result.ack
            if ack is not None:  # only now may the gateway forget the batch's rows
                self.client.publish(topics.batch_ack(ack.site), ack.to_json(),
                                    qos=QOS_AT_LEAST_ONCE)
                self.acks_sent += 1
