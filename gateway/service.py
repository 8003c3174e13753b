"""The gateway's I/O shell: site broker in, outbox on disk, upstream broker out.

A device message is acknowledged to the site broker only after what it produced is in
the outbox. paho's network thread only queues incoming messages; a keeper thread takes
whatever is waiting (up to ``KEEP_BATCH``), runs the core on each in order, writes all
their outgoing messages and dedupe keys in one SQLite transaction (one fsync for the
lot: group commit) and only then acknowledges them, in order. A forwarder thread
publishes the outbox in order with QoS 1 and deletes each row when the upstream broker
acknowledges it; while upstream is unreachable the outbox simply grows, and it drains in
order after.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from gateway.core import Decision, GatewayCore
from gateway.dedupe import Deduper
from gateway.outbox import Outbox
from gateway.settings import GatewaySettings
from softplace import topics
from softplace.batching import take_batch
from softplace.mqtt import (
    QOS_AT_LEAST_ONCE,
    Acknowledger,
    connect_async,
    make_client,
    reason_failed,
)
from softplace.registry import Site
from softplace.settings import MqttSettings

log = logging.getLogger(__name__)
FORWARD_WINDOW = 100
KEEP_BATCH = 500


@dataclass(frozen=True, slots=True)
class _Incoming:
    topic: str
    payload: bytes
    mid: int
    qos: int
    connection: int  # acks belong to the connection the message came on
    received_at: float
    redelivered: bool  # the broker's DUP flag


class Gateway:
    def __init__(
        self,
        site: Site,
        site_broker: MqttSettings,
        settings: GatewaySettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.site = site
        self.settings = settings
        self.clock = clock
        state_dir = Path(settings.state_dir)
        self.outbox = Outbox(state_dir / f"{site.id}.sqlite")
        deduper = Deduper(settings.dedupe_keys_per_device)
        for key in self.outbox.seen_keys(settings.dedupe_keys_per_device):
            deduper.remember(*key)
        self.core = GatewayCore(site, settings, deduper)
        self.accepted = 0
        self.rejected = 0
        self.forwarded = 0
        self._stop = threading.Event()
        self._stopped = False
        self._wake = threading.Event()
        self._upstream_connected = threading.Event()
        self._inflight: dict[int, int] = {}  # paho mid -> outbox id (forwarder thread only)
        self._pubacks: set[int] = set()
        self._refused: dict[int, str] = {}  # mid -> reason the broker gave
        self._window = FORWARD_WINDOW
        self.parked = 0
        self._puback_lock = threading.Lock()

        client_id = settings.client_id or f"softplace-gateway-{site.id}"
        self.site_client = make_client(site_broker, client_id, manual_ack=True)
        self.site_client.on_connect = self._on_site_connect
        self.site_client.on_message = self._on_message
        self._site_settings = site_broker
        upstream = settings.upstream or site_broker
        self._upstream_settings = upstream
        self.upstream_client = make_client(upstream, f"{client_id}-up")
        self.upstream_client.on_connect = self._on_upstream_connect
        self.upstream_client.on_disconnect = self._on_upstream_disconnect
        self.upstream_client.on_publish = self._on_publish
        self._forwarder = threading.Thread(target=self._forward_loop, name="forwarder", daemon=True)
        self._incoming: queue.Queue[_Incoming] = queue.Queue()
        self._site_acks = Acknowledger(self.site_client)
        self._keeper = threading.Thread(target=self._keep_loop, name="keeper", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        connect_async(self.upstream_client, self._upstream_settings)
        self._forwarder.start()
        self._keeper.start()
        connect_async(self.site_client, self._site_settings)

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        self._wake.set()
        if self._keeper.is_alive():
            self._keeper.join(10)
        self.site_client.disconnect()
        self.site_client.loop_stop()
        if self._forwarder.is_alive():
            self._forwarder.join(10)
        self.upstream_client.disconnect()
        self.upstream_client.loop_stop()
        self.outbox.close()

    def run_forever(self) -> None:
        self.start()
        try:
            while not self._stop.wait(30):
                log.info("gateway %s: accepted %d, rejected %d, forwarded %d, outbox %d",
                         self.site.id, self.accepted, self.rejected, self.forwarded,
                         self.outbox.size())
        finally:
            self.stop()

    @property
    def stop_event(self) -> threading.Event:
        """Set it (e.g. from a signal handler) to make ``run_forever`` return."""
        return self._stop

    # -- site side ---------------------------------------------------------------------------
    def _on_site_connect(self, client: paho.Client, userdata: Any, flags: Any,
                         reason_code: Any, properties: Any = None) -> None:
        if reason_failed(reason_code):
            log.warning("site broker refused the connection: %s", reason_code)
            return
        self._site_acks.reconnected()
        log.info("connected to the site broker for %s", self.site.id)
        client.subscribe([
            (topics.all_device_readings(self.site.id), QOS_AT_LEAST_ONCE),
            (topics.all_device_statuses(self.site.id), QOS_AT_LEAST_ONCE),
        ])

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._incoming.put(_Incoming(message.topic, bytes(message.payload), message.mid,
                                     message.qos, self._site_acks.connection, self.clock(),
                                     bool(message.dup)))

    def _keep_loop(self) -> None:
        while not self._stop.is_set():
            batch = take_batch(self._incoming, KEEP_BATCH)
            if not batch:
                continue
            decisions = [self._decide(item) for item in batch]
            if not self._persist(decisions):
                return  # stopping: unacknowledged, the broker redelivers them
            for item, decision in zip(batch, decisions, strict=True):
                if decision is not None:
                    self._site_acks.ack(item.mid, item.qos, item.connection)
            for decision in decisions:
                # the full dead letter, for whoever debugs devices at the site (best effort:
                # the durable record is the upstream one, without the payload)
                for message in decision.local if decision is not None else []:
                    self.site_client.publish(message.topic, message.payload,
                                             qos=QOS_AT_LEAST_ONCE)
            self._wake.set()

    def _decide(self, item: _Incoming) -> Decision | None:
        try:
            if item.topic.endswith("/status"):
                decision = self.core.handle_status(item.topic, item.payload, item.received_at)
            else:
                decision = self.core.handle_reading(item.topic, item.payload, item.received_at,
                                                    redelivered=item.redelivered)
        except Exception:  # a bug, not bad input: leave it unacknowledged, keep going
            log.exception("could not handle a message on %s", item.topic)
            return None
        if decision.rejected is not None:
            self.rejected += 1
            log.warning("dead-lettered %s: %s", decision.rejected.reason, decision.rejected.detail)
        elif decision.accepted is not None:
            self.accepted += 1
        return decision

    def _persist(self, decisions: list[Decision | None]) -> bool:
        """Write the batch in one transaction, retrying until it is kept (or we stop)."""
        kept = [(d.outgoing, d.accepted) for d in decisions if d is not None]
        while True:
            try:
                self.outbox.enqueue_many(kept)
            except Exception:  # disk full or locked: never ack what we did not keep
                log.exception("outbox write failed; retrying")
                if self._stop.wait(1):
                    return False
            else:
                return True

    # -- upstream side ---------------------------------------------------------------------
    def _on_upstream_connect(self, client: paho.Client, userdata: Any, flags: Any,
                             reason_code: Any, properties: Any = None) -> None:
        if reason_failed(reason_code):
            log.warning("upstream broker refused the connection: %s", reason_code)
            return
        # never more in flight than the broker says it will take (MQTT 5 Receive Maximum)
        receive_maximum = getattr(properties, "ReceiveMaximum", None)
        self._window = min(FORWARD_WINDOW, receive_maximum or FORWARD_WINDOW)
        log.info("connected upstream; outbox holds %d messages", self.outbox.size())
        self._upstream_connected.set()
        self._wake.set()

    def _on_upstream_disconnect(self, client: paho.Client, userdata: Any, flags: Any,
                                reason_code: Any, properties: Any = None) -> None:
        self._upstream_connected.clear()
        self._wake.set()

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int,
                    reason_code: Any = None, properties: Any = None) -> None:
        # never take a lock here that is held around client.publish(): paho calls this
        # with its own message mutex held
        with self._puback_lock:
            if reason_failed(reason_code):
                self._refused[mid] = str(reason_code)
            else:
                self._pubacks.add(mid)
        self._wake.set()

    def _settle(self) -> None:
        """Delete the outbox rows whose PUBACK has arrived."""
        with self._puback_lock:
            pubacks, self._pubacks = self._pubacks, set()
            refused, self._refused = self._refused, {}
        for mid, reason in refused.items():
            if mid in self._inflight:
                # refused for good (e.g. not authorised): keep it aside, never drop it
                outbox_id = self._inflight.pop(mid)
                self.outbox.park(outbox_id, reason)
                self.parked += 1
                log.error("upstream refused outbox message %d (%s); parked", outbox_id, reason)
        matched = [mid for mid in pubacks if mid in self._inflight]
        done = [self._inflight.pop(mid) for mid in matched]
        # Every mid we publish is recorded before the next _settle, so a PUBACK finds its
        # row; an unmatched one belongs to a publish paho queued while we were offline
        # (rc NO_CONN), whose row we publish again: a harmless duplicate.
        if done:
            self.outbox.delete(done)
            self.forwarded += len(done)

    def _forward_loop(self) -> None:
        last_sent = 0
        while not self._stop.is_set():
            self._wake.wait(1)
            self._wake.clear()
            # Settle first, connected or not: mosquitto closes the connection right after
            # refusing a publish. What is still in flight stays mapped: paho keeps it and
            # resends it, with the same packet id, on reconnect. After a restart, the
            # outbox itself is sent again from its first row.
            self._settle()
            if not self._upstream_connected.is_set():
                continue
            room = self._window - len(self._inflight)
            if room <= 0:
                continue
            batch = self.outbox.pending(last_sent, room)
            for outbox_id, message in batch:
                info = self.upstream_client.publish(
                    message.topic, message.payload, qos=QOS_AT_LEAST_ONCE, retain=message.retain
                )
                if info.rc != paho.MQTT_ERR_SUCCESS:
                    break
                self._inflight[info.mid] = outbox_id
                last_sent = outbox_id
            if len(batch) == room:
                self._wake.set()  # more may be waiting
