"""The gateway's I/O shell: site broker in, outbox on disk, upstream broker out.

The site side is the shared consumer shell (``softplace.consumer``): a device message is
acknowledged to the site broker only after what it produced is in the outbox. Its worker
takes whatever is waiting (up to ``KEEP_BATCH``), runs the core on each in order, writes all
their outgoing messages and dedupe keys in one SQLite transaction (one fsync for the lot:
group commit) and only then acknowledges them, in order. A forwarder thread publishes the
outbox in order with QoS 1 and deletes each row when the upstream broker acknowledges it;
while upstream is unreachable the outbox simply grows, and it drains in order after.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from gateway.core import Decision, GatewayCore
from gateway.dedupe import Deduper
from gateway.outbox import Outbox
from gateway.settings import GatewaySettings
from softplace import topics
from softplace.backoff import Backoff
from softplace.consumer import Consumer, Handled, Outcome, Received, watch, watch_client
from softplace.messages import DeviceAck
from softplace.mqtt import (
    MAX_INFLIGHT,
    QOS_AT_LEAST_ONCE,
    ConnectionLog,
    connect_async,
    make_client,
    reason_failed,
)
from softplace.registry import Site
from softplace.settings import MqttSettings

log = logging.getLogger(__name__)
FORWARD_WINDOW = MAX_INFLIGHT  # never more than paho itself keeps in flight
KEEP_BATCH = 500
OUTBOX_RETRY_CAP_S = 5.0
FORWARDER_JOIN_S = 10.0
STATUS_SUFFIX = "/status"
# a persist error of these kinds is a bug in one message, not an unavailable outbox
_BUG_ERRORS = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError,
               sqlite3.DataError)


class Gateway(Consumer[Decision]):
    persist_label = "outbox write"

    def __init__(
        self,
        site: Site,
        site_broker: MqttSettings,
        settings: GatewaySettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        client_id = settings.client_id or f"softplace-gateway-{site.id}"
        super().__init__(f"gateway {site.id}", site_broker, client_id, batch_size=KEEP_BATCH,
                         retry=Backoff(cap_s=OUTBOX_RETRY_CAP_S), clock=clock)
        self.site = site
        self.settings = settings
        state_dir = Path(settings.state_dir)
        self.outbox = Outbox(state_dir / f"{site.id}.sqlite", settings.dedupe_keys_per_device)
        deduper = Deduper(settings.dedupe_keys_per_device)
        for key in self.outbox.seen_keys(settings.dedupe_keys_per_device):
            deduper.remember(*key)
        self.core = GatewayCore(site, settings, deduper)
        self._core_lock = threading.Lock()  # the worker and the forwarder's health timer
        self.core.restore(self.outbox.core_state())
        self.device_acks = 0  # DeviceAck messages published
        self.dead_letters: Counter[str] = Counter()  # kept dead letters, by reason
        self.forwarded = 0  # outbox rows the upstream broker acknowledged
        self.parked = 0  # outbox rows the upstream broker refused for good
        self._wake = threading.Event()
        self._upstream_connected = threading.Event()
        self._inflight: dict[int, int] = {}  # paho mid -> outbox id (forwarder thread only)
        self._pubacks: set[int] = set()
        self._refused: dict[int, str] = {}  # mid -> reason the broker gave
        self._window = FORWARD_WINDOW
        self._puback_lock = threading.Lock()
        self._outbox_left: int | None = None  # its size when closed

        upstream = settings.upstream or site_broker
        self._upstream_settings = upstream
        self.upstream_client = make_client(upstream, f"{client_id}-up")
        self._upstream_log = ConnectionLog(upstream, f"gateway {site.id} upstream")
        self.upstream_client.on_connect = self._on_upstream_connect
        self.upstream_client.on_connect_fail = self._upstream_log.connect_failed
        self.upstream_client.on_disconnect = self._on_upstream_disconnect
        self.upstream_client.on_publish = self._on_publish
        self._forwarder = threading.Thread(target=self._forward_loop, name="forwarder", daemon=True)

    @property
    def site_client(self) -> paho.Client:
        return self.client

    # -- lifecycle -------------------------------------------------------------------------
    def _start(self) -> None:
        connect_async(self.upstream_client, self._upstream_settings)
        self._forwarder.start()
        watch_client(self.upstream_client)  # a thread that dies ends the process
        watch(self._forwarder)
        super()._start()  # the site side last: nothing is taken in before upstream is set

    def _stop(self) -> None:
        self._wake.set()
        super()._stop()
        if self._forwarder.is_alive():
            self._forwarder.join(FORWARDER_JOIN_S)
        self.upstream_client.disconnect()
        self.upstream_client.loop_stop()
        self._outbox_left = self.outbox.size()
        self.outbox.close()

    def summary(self) -> str:
        left = self._outbox_left if self._outbox_left is not None else self.outbox.size()
        by_reason = ", ".join(f"{r} {n}" for r, n in sorted(self.dead_letters.copy().items()))
        return (f"{super().summary()}; forwarded {self.forwarded}, parked {self.parked}, "
                f"outbox {left}" + (f"; dead letters by reason: {by_reason}" if by_reason else ""))

    # -- site side: the consumer's hooks ----------------------------------------------------
    def subscriptions(self) -> list[str]:
        return [topics.all_device_readings(self.site.id), topics.all_device_statuses(self.site.id)]

    def connected(self, filters: list[str]) -> None:
        log.info("connected to the site broker for %s", self.site.id)

    def handle(self, message: Received) -> tuple[Outcome, Decision]:
        with self._core_lock:
            return self._handle_locked(message)

    def _handle_locked(self, message: Received) -> tuple[Outcome, Decision]:
        is_status = message.topic.endswith(STATUS_SUFFIX)
        if is_status:
            decision = self.core.handle_status(message.topic, message.payload,
                                               message.received_at)
        else:
            decision = self.core.handle_reading(message.topic, message.payload,
                                                message.received_at,
                                                redelivered=message.redelivered)
        if decision.rejected is not None:
            log.warning("dead-lettered %s: %s", decision.rejected.reason, decision.rejected.detail)
            return Outcome.DEAD_LETTERED, decision
        # a status is accepted whether or not it changed anything; a cleared retained status
        # and a redelivered duplicate reading have nothing to keep
        if decision.accepted is not None or (is_status and message.payload):
            return Outcome.ACCEPTED, decision
        return Outcome.SKIPPED, decision

    def persist(self, batch: list[Handled[Decision]]) -> None:
        state: dict[str, str] = {}
        for handled in batch:
            state.update(handled.result.state)  # the latest row of each key wins
        self.outbox.enqueue_many([(h.result.outgoing, h.result.accepted) for h in batch],
                                 state)

    def transient(self, err: Exception) -> bool:
        # full, read-only, locked, I/O error, corrupt file: wait for the operator
        return isinstance(err, (sqlite3.DatabaseError, OSError)) and not isinstance(
            err, _BUG_ERRORS)

    def internal_error(self, message: Received, detail: str) -> Decision:
        with self._core_lock:
            return self.core.internal_error(message.topic, message.payload, detail,
                                            message.received_at)

    def store_name(self) -> str:
        return str(self.outbox.path)

    def after_ack(self, batch: list[Handled[Decision]]) -> None:
        highest: dict[str, tuple[int, int]] = {}
        for handled in batch:
            # the full dead letter, for whoever debugs devices at the site (best effort:
            # the durable record is the upstream one, without the payload)
            for message in handled.result.local:
                self.client.publish(message.topic, message.payload, qos=QOS_AT_LEAST_ONCE)
            if handled.result.rejected is not None:
                self.dead_letters[handled.result.rejected.reason] += 1
            if handled.result.ack is not None:
                device, boot, seq = handled.result.ack
                highest[device] = max(highest.get(device, (boot, seq)), (boot, seq))
        # the batch is committed: tell each device what it may forget (one ack per device)
        for device, (boot, seq) in highest.items():
            self.client.publish(topics.device_ack(self.site.id, device),
                                DeviceAck(boot=boot, seq=seq).to_json(), qos=QOS_AT_LEAST_ONCE)
        self.device_acks += len(highest)
        self._wake.set()

    # -- upstream side ---------------------------------------------------------------------
    def _on_upstream_connect(self, client: paho.Client, userdata: Any, flags: Any,
                             reason_code: Any, properties: Any = None) -> None:
        if reason_failed(reason_code):
            self._upstream_log.refused(reason_code)
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
        if not self.stopping:
            self._upstream_log.disconnected(reason_code)

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

    def _emit_health(self) -> None:
        """Health on its own clock (``gateway.health``), never on a reading; best effort."""
        try:
            with self._core_lock:
                health = self.core.scheduled_health(self.clock())
            if health:
                self.outbox.enqueue_many([(health, None)])
        except Exception:  # the forwarder must outlive a failed health write
            log.exception("could not queue the scheduled health reports")

    def _forward_loop(self) -> None:
        last_sent = 0
        while not self.stopping:
            self._wake.wait(1)
            self._wake.clear()
            self._emit_health()
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
