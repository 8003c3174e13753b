"""Ingest's I/O shell: MQTT (persistent session, shared subscription) into the store.

paho's network thread only queues messages; a writer thread takes batches, writes them
(retrying with backoff while the store is down) and only then acknowledges each message
to the broker, in arrival order. A crash before the write leaves the messages
unacknowledged, so the broker redelivers them; the point key makes the rewrite harmless.
The broker's receive maximum (MQTT 5) bounds how many unacknowledged messages we hold.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho

from ingest.core import IngestCore, Rejected
from ingest.settings import IngestSettings
from softplace import topics
from softplace.backoff import Backoff
from softplace.batching import take_batch
from softplace.errors import RejectedWriteError, StorageError
from softplace.mqtt import (
    QOS_AT_LEAST_ONCE,
    Acknowledger,
    connect_async,
    make_client,
    reason_failed,
)
from softplace.registry import Registry
from softplace.schema import DeadletterField, SeriesName
from softplace.settings import MqttSettings
from softplace.storage.base import Sample, Store
from softplace.timeutil import now_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Pending:
    mid: int
    qos: int
    sample: Sample
    connection: int  # acks belong to the connection the message came on


class Ingest:
    def __init__(
        self,
        registry: Registry,
        store: Store,
        broker: MqttSettings,
        settings: IngestSettings,
        sites: list[str] | None = None,
    ) -> None:
        self.core = IngestCore(registry)
        self.store = store
        self.settings = settings
        self.broker = broker
        self.sites = sites or ["+"]
        self.written = 0
        self.rejected = 0
        self.write_failures = 0
        self._queue: queue.Queue[_Pending] = queue.Queue()
        self._stop = threading.Event()
        self._stopped = False
        self.client = make_client(broker, settings.client_id, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self._acks = Acknowledger(self.client)
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)

    def start(self) -> None:
        self._writer.start()
        connect_async(self.client, self.broker)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        self._writer.join(30)
        self.client.disconnect()
        self.client.loop_stop()
        log.info("ingest stopped: written %d, rejected %d, store failures %d",
                 self.written, self.rejected, self.write_failures)

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(30):
                log.info("ingest: written %d, rejected %d, store failures %d",
                         self.written, self.rejected, self.write_failures)
        finally:
            self.stop()

    @property
    def stop_event(self) -> threading.Event:
        """Set it (e.g. from a signal handler) to make ``run_forever`` return."""
        return self._stop

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any,
                    reason_code: Any, properties: Any = None) -> None:
        if reason_failed(reason_code):
            log.warning("broker refused the connection: %s", reason_code)
            return
        self._acks.reconnected()
        group = self.settings.shared_group if self.broker.protocol == "5" else None
        filters = [topics.shared(group, f) for site in self.sites
                   for f in topics.upstream_filters(site)]
        client.subscribe([(f, QOS_AT_LEAST_ONCE) for f in filters])
        log.info("ingest subscribed to %s", ", ".join(filters))

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        try:
            self._queue.put(_Pending(message.mid, message.qos, self._sample_for(message),
                                     self._acks.connection))
        except Exception:  # paho's thread must not die; unacknowledged, it comes back
            log.exception("could not handle a message on %s", message.topic)

    def _sample_for(self, message: paho.MQTTMessage) -> Sample:
        result = self.core.samples_for(message.topic, bytes(message.payload))
        if isinstance(result, Rejected):
            self.rejected += 1
            log.warning("rejected %s: %s: %s", message.topic, result.reason, result.detail)
            site = message.topic.split("/")[2] if message.topic.count("/") >= 2 else "unknown"
            result = Sample(SeriesName.DEADLETTER, {"site": site, "reason": result.reason},
                            {DeadletterField.N: 1, DeadletterField.TOPIC: message.topic[:256]},
                            now_ms())
        return result

    def _write_loop(self) -> None:
        backoff = Backoff(cap_s=self.settings.max_backoff_s)
        while not self._stop.is_set():
            batch = take_batch(self._queue, self.settings.batch_size,
                               self.settings.batch_interval_s)
            if not batch:
                continue
            while True:
                try:
                    self.store.write([p.sample for p in batch])
                    backoff.reset()
                    break
                except RejectedWriteError:
                    # InfluxDB kept the valid points of the batch and refused the rest for
                    # good (e.g. older than the retention policy): retrying cannot help
                    self.rejected += 1
                    log.exception("store refused part of a batch")
                    break
                except Exception as err:  # StorageError, or a bug: never let the thread die
                    if not isinstance(err, StorageError):
                        log.exception("unexpected error writing a batch")
                    self.write_failures += 1
                    delay = backoff.next_delay()
                    log.warning("store write failed (%s); retrying in %.1f s", err, delay)
                    if self._stop.wait(delay):
                        return  # unacknowledged: the broker redelivers after restart
            for pending in batch:
                self._acks.ack(pending.mid, pending.qos, pending.connection)
            self.written += len(batch)
