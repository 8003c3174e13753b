"""The gateway's I/O shell: site broker in, outbox on disk, upstream broker out.

The site side is the shared consumer shell (``softplace.consumer``): a device message is
acknowledged to the site broker only after what it produced is in the outbox. Its worker
takes what arrives within ``KEEP_LINGER_S`` of a first message (up to ``KEEP_BATCH``), runs
the core on each in order, writes all their outgoing messages, dedupe keys and state rows in
one SQLite transaction (one fsync for the lot: group commit) and only then acknowledges
them, in order, with one ``DeviceAck`` per device.

The forwarder thread sends the outbox upstream in batches: it sleeps, then drains what
waits into ``RoomReadingBatch`` messages (QoS 1, in outbox order, at most
``FORWARD_BATCHES`` unacknowledged) and deletes a batch's rows only when ingest's
``BatchAck`` says they are in the store, never on the broker's PUBACK: a broker that
crashes before saving loses nothing. Unacknowledged batches are sent again after
``upstream_ack_timeout_s`` (doubling per attempt) and after every reconnect; ingest
rewrites the same keys. While upstream is unreachable the outbox simply grows, and it
drains in order after.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

from gateway import hadiscovery
from gateway.batcher import Batcher
from gateway.core import Decision, GatewayCore, Outgoing
from gateway.dedupe import Deduper
from gateway.health import StatusReporter
from gateway.outbox import Outbox
from gateway.settings import GatewaySettings
from softplace import topics
from softplace.backoff import Backoff
from softplace.consumer import Consumer, Handled, Outcome, Received, watch, watch_client
from softplace.errors import MessageError
from softplace.messages import (
    BatchAck,
    DeviceAck,
    DeviceReading,
    GatewayStatus,
    parse_device_readings,
    parse_message,
)
from softplace.mqtt import (
    QOS_AT_LEAST_ONCE,
    ConnectionLog,
    Publish,
    connect_async,
    make_client,
    reason_failed,
)
from softplace.registry import Site
from softplace.settings import MqttSettings
from softplace.timeutil import ms_to_s

log = logging.getLogger(__name__)
KEEP_BATCH = 500
# a live stream forms batches of up to KEEP_BATCH (one transaction, one ack per device)
# instead of one per message; what a reading waits at most before its outbox commit
KEEP_LINGER_S = 0.05
OUTBOX_RETRY_CAP_S = 5.0
FORWARDER_JOIN_S = 10.0
STATUS_SUFFIX = "/status"
SOFTWARE_VERSION = importlib.metadata.version("softplace")
# a persist error of these kinds is a bug in one message, not an unavailable outbox
_BUG_ERRORS = (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError,
               sqlite3.DataError)
FORWARD_BATCHES = 8  # batches sent and not yet acknowledged by ingest
BATCH_ROWS = 500  # outbox rows read at a time (batches also stop at BATCH_BYTES)
DRAIN_S = 0.05  # after a wake-up, let what is arriving join the same batch
IDLE_WAKE_S = 1.0  # re-send and tail checks happen at least this often
RESEND_DOUBLINGS = 3  # the ack timeout doubles per attempt, up to 8 times its setting
ERROR_PAUSE_S = 1.0


@dataclasses.dataclass(slots=True)
class _Sent:
    """A batch sent upstream and not yet acknowledged (forwarder thread only)."""

    ids: list[int]  # its outbox rows
    payload: bytes
    sent_at: float = float("-inf")  # monotonic; -inf: to send
    attempts: int = 0


class Gateway(Consumer[Decision]):
    persist_label = "outbox write"

    def __init__(
        self,
        site: Site,
        site_broker: MqttSettings,
        settings: GatewaySettings,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        client_id = settings.client_id or f"softplace-gateway-{site.id}"
        super().__init__(f"gateway {site.id}", site_broker, client_id, batch_size=KEEP_BATCH,
                         linger_s=KEEP_LINGER_S, retry=Backoff(cap_s=OUTBOX_RETRY_CAP_S),
                         clock=clock)
        self.site = site
        self.settings = settings
        self.monotonic = monotonic
        state_dir = Path(settings.state_dir)
        self.outbox = Outbox(state_dir / f"{site.id}.sqlite", settings.dedupe_keys_per_device)
        deduper = Deduper(settings.dedupe_keys_per_device)
        for key in self.outbox.seen_keys(settings.dedupe_keys_per_device):
            deduper.remember(*key)
        self.core = GatewayCore(site, settings, deduper)
        # the worker (once per batch, ``handling``) and the forwarder's health timer
        self._core_lock = threading.RLock()
        self._decoded: dict[int, DeviceReading] = {}  # id(Received) -> reading (prepare)
        self.status = StatusReporter()
        self.core.restore(self.outbox.core_state())
        self.device_acks = 0  # DeviceAck messages published
        self.dead_letters: Counter[str] = Counter()  # kept dead letters, by reason
        self.forwarded = 0  # outbox rows ingest acknowledged as stored
        self.parked = 0  # outbox rows the upstream broker refused for good
        self.resent = 0  # batches sent again (timeout or reconnect)
        self._wake = threading.Event()
        self._upstream_connected = threading.Event()
        self._resend_all = threading.Event()  # set on every upstream connect
        self._ack_lock = threading.Lock()  # never held around client.publish()
        self._acked: set[str] = set()
        self._refused: dict[int, str] = {}  # mid -> reason the broker gave
        self._window = FORWARD_BATCHES
        self._outbox_left: int | None = None  # its size when closed
        # forwarder thread only
        self._sent: dict[str, _Sent] = {}  # batch id -> batch, oldest first
        self._mids: dict[int, str] = {}  # paho mid -> batch id
        self._undeleted: list[int] = []  # acknowledged rows a failed delete left behind
        self._last_queued = 0  # the last outbox id put in a batch
        self._batcher = Batcher(
            site.id, {d: placed.room.id for d, placed in site.device_rooms().items()},
            epoch=f"{int(clock() * 1000):x}",  # batch ids are unique per gateway run
        )

        self._ack_topic = topics.batch_ack(site.id)
        # With no upstream of its own the gateway uses its site connection for both sides:
        # a broker that forces client id = username would let two connections of one
        # account take each other's session.
        self._shares_client = settings.upstream is None
        upstream = settings.upstream or site_broker
        self._upstream_settings = upstream
        if self._shares_client:
            self.upstream_client = self.client
        else:
            self.upstream_client = make_client(upstream, f"{client_id}-up")
            self._upstream_log = ConnectionLog(upstream, f"gateway {site.id} upstream")
            self.upstream_client.on_connect = self._on_upstream_connect
            self.upstream_client.on_connect_fail = self._upstream_log.connect_failed
            self.upstream_client.on_disconnect = self._on_upstream_disconnect
        self.upstream_client.on_publish = self._on_publish
        if not self._shares_client:  # shared: _on_message routes acks (paho matches a
            # message_callback_add filter in Python per message, readings too)
            self.upstream_client.message_callback_add(self._ack_topic, self._on_ack)
        self._forwarder = threading.Thread(target=self._forward_loop, name="forwarder", daemon=True)

    # -- what /metrics and /readyz read (any thread) ---------------------------------------
    def upstream_connected(self) -> bool:
        return self._upstream_connected.is_set()

    def inflight_rows(self) -> int:
        """Outbox rows in batches sent and not yet acknowledged by ingest."""
        return sum(len(sent.ids) for sent in list(self._sent.values()))

    def outbox_age_s(self) -> float | None:
        """How long the oldest waiting row has waited, or None when the outbox is empty."""
        queued_ms = self.outbox.oldest_queued_ms()
        return None if queued_ms is None else max(0.0, self.clock() - ms_to_s(queued_ms))

    # -- lifecycle -------------------------------------------------------------------------
    def _start(self) -> None:
        if not self._shares_client:
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
        if not self._shares_client:
            self.upstream_client.disconnect()
            self.upstream_client.loop_stop()
        self._outbox_left = self.outbox.size()
        self.outbox.close()

    def summary(self) -> str:
        left = self._outbox_left if self._outbox_left is not None else self.outbox.size()
        by_reason = ", ".join(f"{r} {n}" for r, n in sorted(self.dead_letters.copy().items()))
        return (f"{super().summary()}; forwarded {self.forwarded}, parked {self.parked}, "
                f"batches re-sent {self.resent}, outbox {left}"
                + (f"; dead letters by reason: {by_reason}" if by_reason else ""))

    # -- site side: the consumer's hooks ----------------------------------------------------
    def subscriptions(self) -> list[str]:
        own = [topics.all_device_readings(self.site.id), topics.all_device_statuses(self.site.id)]
        return [*own, self._ack_topic] if self._shares_client else own

    def connected(self, filters: list[str]) -> None:
        log.info("connected to the site broker for %s", self.site.id)
        self._publish_discovery()
        if self._shares_client:
            self._upstream_up()

    def handling(self) -> threading.RLock:
        return self._core_lock

    def prepare(self, messages: list[Received]) -> None:
        # one pydantic call decodes the batch's readings (parse_device_readings); a reading
        # it leaves out is decoded on its own, so a bad one costs the batch a second pass
        readings = [m for m in messages
                    if not m.retained and not m.topic.endswith(STATUS_SUFFIX)]
        decoded = parse_device_readings([m.payload for m in readings])
        self._decoded = {id(m): r for m, r in zip(readings, decoded, strict=True)
                         if r is not None}

    def handle(self, message: Received) -> tuple[Outcome, Decision]:
        with self._core_lock:
            return self._handle_locked(message)

    def _handle_locked(self, message: Received) -> tuple[Outcome, Decision]:
        is_status = message.topic.endswith(STATUS_SUFFIX)
        if is_status:
            decision = self.core.handle_status(message.topic, message.payload,
                                               message.received_at)
        elif message.retained:
            decision = self.core.retained_reading(message.topic, message.payload,
                                                  message.received_at)
        else:
            decision = self.core.handle_reading(message.topic, message.payload,
                                                message.received_at,
                                                redelivered=message.redelivered,
                                                decoded=self._decoded.pop(id(message), None))
        if decision.rejected is not None:
            log.warning("dead-lettered %s: %s", decision.rejected.reason, decision.rejected.detail)
            return Outcome.DEAD_LETTERED, decision
        # a status is accepted whether or not it changed anything; a cleared retained status
        # and a redelivered duplicate reading have nothing to keep
        if decision.accepted is not None or (is_status and message.payload):
            return Outcome.ACCEPTED, decision
        return Outcome.SKIPPED, decision

    def persist(self, batch: list[Handled[Decision]]) -> None:
        decisions = [h.result for h in batch]
        with self._core_lock:
            state = self.core.state_rows(decisions)
        outgoing: list[Outgoing] = []
        for decision in decisions:
            outgoing += decision.outgoing
        self.outbox.enqueue(outgoing, [d.accepted for d in decisions if d.accepted is not None],
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
        if self.site.home_assistant:  # rooms' state for Home Assistant (docs/operations.md)
            for handled in batch:
                for message in handled.result.outgoing:
                    if topics.parse_kind(message.topic) == topics.TopicKind.ROOM:
                        self.client.publish(message.topic, message.payload,
                                            qos=QOS_AT_LEAST_ONCE, retain=True)
        self._wake.set()

    def _publish_discovery(self) -> None:
        """Home Assistant discovery configs, retained, on every connect while the site asks
        for them; their removal once after it stopped asking."""
        marker = Path(self.settings.state_dir) / f"{self.site.id}.home-assistant"
        if self.site.home_assistant:
            messages = hadiscovery.site_messages(self.site, sw_version=SOFTWARE_VERSION)
            marker.touch()
        elif marker.exists():
            messages = hadiscovery.removals(self.site)
            marker.unlink()
        else:
            return
        for message in messages:
            self.client.publish(message.topic, message.encoded(), qos=QOS_AT_LEAST_ONCE,
                                retain=True)
        log.info("published %d Home Assistant discovery messages", len(messages))

    # -- upstream side: paho's network thread ------------------------------------------------
    def _on_upstream_connect(self, client: paho.Client, userdata: Any, flags: Any,
                             reason_code: Any, properties: Any = None) -> None:
        if reason_failed(reason_code):
            self._upstream_log.refused(reason_code)
            return
        client.subscribe(self._ack_topic, QOS_AT_LEAST_ONCE)
        # never more in flight than the broker says it will take (MQTT 5 Receive Maximum)
        receive_maximum = getattr(properties, "ReceiveMaximum", None)
        self._window = min(FORWARD_BATCHES, receive_maximum or FORWARD_BATCHES)
        self._upstream_up()

    def _upstream_up(self) -> None:
        log.info("connected upstream; outbox holds %d messages", self.outbox.size())
        self._resend_all.set()  # the broker may have lost them (crash before its autosave)
        self._upstream_connected.set()
        self._wake.set()

    def _on_upstream_disconnect(self, client: paho.Client, userdata: Any, flags: Any,
                                reason_code: Any, properties: Any = None) -> None:
        self._upstream_connected.clear()
        self._wake.set()
        if not self.stopping:
            self._upstream_log.disconnected(reason_code)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any,
                       reason_code: Any, properties: Any = None) -> None:
        """The site connection's (the consumer's); with a shared client, upstream's too."""
        if self._shares_client:
            self._upstream_connected.clear()
            self._wake.set()
        super()._on_disconnect(client, userdata, flags, reason_code, properties)

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int,
                    reason_code: Any = None, properties: Any = None) -> None:
        # a PUBACK deletes nothing; only a refusal matters. Never take a lock here that is
        # held around client.publish(): paho calls this with its own message mutex held
        if reason_failed(reason_code):
            with self._ack_lock:
                self._refused[mid] = str(reason_code)
            self._wake.set()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        if self._shares_client and message.topic == self._ack_topic:
            self._on_ack(client, userdata, message)
        else:
            super()._on_message(client, userdata, message)

    def _on_publishes(self, publishes: list[Publish]) -> None:
        if self._shares_client:
            ack_topic = self._ack_topic
            if any(publish[0] == ack_topic for publish in publishes):
                for topic, payload, mid, header in publishes:
                    if topic == ack_topic:
                        self._take_ack(self.client, mid, (header >> 1) & 3, payload)
                publishes = [p for p in publishes if p[0] != ack_topic]
        super()._on_publishes(publishes)

    def _on_ack(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self._take_ack(client, message.mid, message.qos, bytes(message.payload))

    def _take_ack(self, client: paho.Client, mid: int, qos: int, payload: bytes) -> None:
        if self._shares_client and qos > 0:
            client.ack(mid, qos)  # the site client acknowledges by hand
        try:
            ack = parse_message(BatchAck, payload)
        except MessageError as err:
            log.warning("ignored a batch acknowledgement: %s", err.detail)
            return
        if ack.site == self.site.id:
            with self._ack_lock:
                self._acked.add(ack.batch)
            self._wake.set()

    # -- the forwarder thread --------------------------------------------------------------
    def _forward_loop(self) -> None:
        failing: str | None = None  # the error of the outage under way: logged once
        while not self.stopping:
            self._wake.wait(IDLE_WAKE_S)
            if self.stop_event.wait(DRAIN_S):  # sleep and drain: one batch for what came
                break
            self._wake.clear()
            self._emit_health()
            try:
                self._forward_once()
            except Exception as err:  # e.g. a disk error: keep the thread, try again shortly
                described = f"{type(err).__name__}: {err}"
                if described != failing:
                    log.exception("gateway %s: forwarding from %s failed (%s); retrying every "
                                  "%.0f s until it works", self.site.id, self.outbox.path,
                                  described, ERROR_PAUSE_S)
                    failing = described
                self.stop_event.wait(ERROR_PAUSE_S)
            else:
                if failing is not None:
                    log.warning("gateway %s: forwarding from %s works again", self.site.id,
                                self.outbox.path)
                    failing = None

    def _forward_once(self) -> None:
        # Settle first, connected or not: mosquitto closes the connection right after
        # refusing a publish. After a restart the outbox is sent again from its first row.
        self._settle()
        if not self._upstream_connected.is_set():
            return
        now = self.monotonic()
        resend_all = self._resend_all.is_set()
        self._resend_all.clear()
        timeout = self.settings.upstream_ack_timeout_s
        for batch_id, sent in self._sent.items():
            due = timeout * 2 ** min(max(sent.attempts - 1, 0), RESEND_DOUBLINGS)
            if resend_all or now - sent.sent_at >= due:
                if sent.attempts:
                    self.resent += 1
                if not self._publish(batch_id, sent, now):
                    return
        while len(self._sent) < self._window:
            rows = self.outbox.pending(self._last_queued, BATCH_ROWS)
            if rows:
                self._last_queued = rows[-1][0]
            built = self._batcher.build(rows, now)
            if built.foreign:
                log.error("outbox messages %s are on no upstream topic; parked", built.foreign)
                self.outbox.park(built.foreign, "not an upstream topic")
                self.parked += len(built.foreign)
            if not built.batches:
                return
            for batch in built.batches:
                sent = _Sent(batch.ids, batch.payload)
                self._sent[batch.batch_id] = sent
                if not self._publish(batch.batch_id, sent, now):
                    return
            if len(rows) < BATCH_ROWS:
                return

    def _publish(self, batch_id: str, sent: _Sent, now: float) -> bool:
        info = self.upstream_client.publish(topics.batch(self.site.id), sent.payload,
                                            qos=QOS_AT_LEAST_ONCE)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            return False  # offline: the next connect sends every unacknowledged batch
        self._mids[info.mid] = batch_id
        sent.sent_at = now
        sent.attempts += 1
        return True

    def _settle(self) -> None:
        """Delete the rows of acknowledged batches; park those of refused ones."""
        with self._ack_lock:
            acked, self._acked = self._acked, set()
            refused, self._refused = self._refused, {}
        for mid, reason in refused.items():
            batch_id = self._mids.pop(mid, None)
            sent = self._sent.pop(batch_id, None) if batch_id else None
            if sent is None:
                continue
            # refused for good (e.g. not authorised): keep it aside, never drop it
            self.outbox.park(sent.ids, reason)
            self.parked += len(sent.ids)
            log.error("upstream refused batch %s (%d outbox messages, %s); parked", batch_id,
                      len(sent.ids), reason)
        done = list(self._undeleted)
        for batch_id in acked:
            sent = self._sent.pop(batch_id, None)
            if sent is not None:
                done.extend(sent.ids)
                self.forwarded += len(sent.ids)
        if self._mids and acked:
            self._mids = {m: b for m, b in self._mids.items() if b in self._sent}
        if done:
            self._undeleted = done  # until the delete succeeds
            self.outbox.delete(done)
            self._undeleted = []

    def _emit_health(self) -> None:
        """Health on its own clock (``gateway.health``), never on a reading; best effort."""
        try:
            with self._core_lock:
                health = self.core.scheduled_health(self.clock())
            if health:
                self.outbox.enqueue_many([(health, None)])
        except Exception:  # the forwarder must outlive a failed health write
            log.exception("could not queue the scheduled health reports")
        self._emit_status()

    def _emit_status(self) -> None:
        """The gateway's own status, after the slot's health (``gateway.health``)."""
        try:
            slot = self.status.due(self.clock())
            if slot is None:
                return
            topic = topics.gateway_status(self.site.id)
            waiting = self.outbox.first_payload(topic)
            oldest = None if waiting is None else GatewayStatus.model_validate_json(waiting).ts
            status = self.status.report(self.site.id, slot, oldest,
                                        self._upstream_connected.is_set())
            self.outbox.enqueue_many([([Outgoing(topic, status.to_json())], None)])
        except Exception:  # best effort, like health
            log.exception("could not queue the gateway status")
