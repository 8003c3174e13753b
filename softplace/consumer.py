"""The MQTT consumer shell gateway and ingest share: messages in, kept durably, then acked.

Modelled on aiomqtt's single callback bridge: paho's network thread does one thing with
messages, put them into a BOUNDED queue (``BatchQueue``; what one socket read holds goes in
with one call, ``softplace.mqtt.Client.on_publishes``). When the queue is full that thread
blocks, paho stops reading the socket and the broker stops sending once its in-flight
window is used up; with manual acks nothing is lost, only slowed. ONE worker thread then

1. takes a batch (``BatchQueue.take``),
2. runs the stage's core on each message (``prepare`` once for the batch, then ``handle``
   on each; an exception in ``handle`` is a bug: the stage's ``internal_error`` turns that
   message into a dead letter with reason ``internal_error`` and the exception type, and
   the batch goes on),
3. persists the batch (``persist``). An error the stage calls ``transient`` (the store is
   down, full or read-only) is retried with backoff until it is kept or the consumer stops, and
   logged once per outage: nothing is acknowledged meanwhile, so the bounded queue fills
   and paho's flow control holds back the rest. Any other exception is a bug in one
   message: the batch is retried one message at a time and the one that fails is kept as
   an ``internal_error`` dead letter instead, so no message can stall the stage. A message
   is never acknowledged before it (or its dead letter) is kept,
4. acknowledges the messages in arrival order, each only on the connection it came on
   (``Acknowledger``), and finally calls ``after_ack``.

Whatever was received but not acknowledged when a connection drops or the process dies is
redelivered by the broker to the same persistent session, with the DUP flag set
(``Received.redelivered``); a stage's persist must make that rewrite harmless.

The clock (``received_at``) is injected; the counts each have one meaning, see
``ConsumerCounts``. A thread of ours that dies anyway (the worker, paho's network thread,
a stage's own thread wrapped in ``fatal_on_death`` or passed to ``watch``) takes the
process down with exit status ``EXIT_THREAD_DIED``, so a supervisor restarts it: never a
live process that stopped working.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import gc
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import paho.mqtt.client as paho

from softplace.backoff import Backoff
from softplace.batching import BatchQueue
from softplace.lifecycle import REPORT_EVERY_S, Service
from softplace.mqtt import (
    QOS_AT_LEAST_ONCE,
    RECEIVE_MAXIMUM,
    Acknowledger,
    ConnectionLog,
    Publish,
    connect_async,
    make_client,
    reason_failed,
)
from softplace.settings import MqttSettings

log = logging.getLogger(__name__)

# Under MQTT 5 the broker never has more than Receive Maximum unacknowledged messages in
# flight to us, so the queue bounds what waits for the worker to that; under MQTT 3.1.1 it
# is what makes paho's thread block (backpressure).
QUEUE_BOUND = RECEIVE_MAXIMUM
PUT_POLL_S = 0.5  # how often a blocked network thread checks whether we are stopping
WORKER_JOIN_S = 30.0
EXIT_THREAD_DIED = 70  # EX_SOFTWARE
# allocations between two young-generation collections in a service process (CPython: 700)
SERVICE_GC_GEN0 = 20_000

R = TypeVar("R")


class Outcome(enum.Enum):
    ACCEPTED = "accepted"  # valid input, turned into something to keep
    DEAD_LETTERED = "dead_lettered"  # bad input, kept as a dead letter
    SKIPPED = "skipped"  # nothing to keep (e.g. a redelivered duplicate), acked all the same


_OUTCOMES = tuple(o.value for o in Outcome)  # each also a ConsumerCounts field


@dataclass(slots=True)  # not frozen: its __init__ runs once per message
class Received:
    topic: str
    payload: bytes
    mid: int
    qos: int
    connection: int  # acks belong to the connection the message came on
    received_at: float  # the injected clock, when paho handed it over
    redelivered: bool  # the broker's DUP flag
    retained: bool = False  # replayed by the broker at subscribe time (its retain flag)


@dataclass(slots=True)  # not frozen: its __init__ runs once per message
class Handled(Generic[R]):
    message: Received
    outcome: Outcome
    result: R


@dataclass(slots=True)
class ConsumerCounts:
    """Messages counted once per delivery (a redelivery counts again). The consumer bumps
    one instance in place (plain ints: a frozen copy per message cost more than the
    message's own bookkeeping) and hands out copies (``Consumer.counts``)."""

    connections: int = 0  # connections the broker accepted (CONNACK success)
    received: int = 0  # taken into the queue from paho
    accepted: int = 0  # handled: Outcome.ACCEPTED
    dead_lettered: int = 0  # handled: Outcome.DEAD_LETTERED
    skipped: int = 0  # handled: Outcome.SKIPPED
    failed: int = 0  # ``handle`` or a one-message ``persist`` raised: kept as internal_error
    dropped: int = 0  # failed, and its internal_error dead letter could not be kept either
    persisted: int = 0  # handled messages whose batch ``persist`` completed
    acknowledged: int = 0  # acks sent (QoS > 0, still on the message's connection)
    persist_retries: int = 0  # ``persist`` attempts that raised and were retried
    isolations: int = 0  # batches retried one by one after a non-transient persist error



def tune_gc_for_service() -> None:
    """Call once in a service's own process, its start-up done. A consumer allocates a few
    short-lived objects per message, nearly all freed by reference counting, yet CPython
    collects every 700 allocations and its full collections walk everything start-up built
    (the registry, pydantic's schemas): about a tenth of the gateway's CPU in a profile.
    What exists now is frozen out of the collections, and the young generation collected
    every ``SERVICE_GC_GEN0`` allocations: cycles still go, a little later."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(SERVICE_GC_GEN0, older, oldest)


def die(what: str) -> None:
    """End the process now with ``EXIT_THREAD_DIED`` (from any thread)."""
    log.critical("%s died; exiting with status %d so a supervisor restarts us", what,
                 EXIT_THREAD_DIED)
    logging.shutdown()
    os._exit(EXIT_THREAD_DIED)


def fatal_on_death(target: Callable[[], None], what: str) -> Callable[[], None]:
    """Wrap a thread's target: if it raises, the process exits (``die``)."""

    def run() -> None:
        try:
            target()
        except BaseException:
            log.exception("%s raised", what)
            die(what)

    return run


_watched: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
_previous_excepthook = threading.excepthook


def _exit_on_thread_death(args: threading.ExceptHookArgs) -> None:
    _previous_excepthook(args)
    if args.thread is not None and args.thread in _watched:
        die(f"thread {args.thread.name}")


def watch(thread: threading.Thread | None) -> None:
    """Make an uncaught exception in ``thread`` end the process (``die``); for threads we
    do not start ourselves, such as paho's network thread (``client._thread``)."""
    if thread is not None:
        _watched.add(thread)
    threading.excepthook = _exit_on_thread_death


def watch_client(client: paho.Client) -> None:
    """``watch`` a paho client's network thread (call after ``loop_start``)."""
    watch(getattr(client, "_thread", None))


class Consumer(Service, Generic[R]):
    """Subclass and implement ``subscriptions``, ``handle`` and ``persist``."""

    persist_label: ClassVar[str] = "persist"  # what the retry warning calls an attempt
    expected_errors: ClassVar[tuple[type[BaseException], ...]] = ()  # logged without trace

    def __init__(
        self,
        name: str,
        broker: MqttSettings,
        client_id: str,
        *,
        batch_size: int,
        linger_s: float = 0.0,
        queue_bound: int = QUEUE_BOUND,
        retry: Backoff | None = None,
        clock: Callable[[], float] = time.time,
        report_every_s: float = REPORT_EVERY_S,
    ) -> None:
        super().__init__(name, report_every_s=report_every_s)
        self.broker = broker
        self.clock = clock
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.queue_bound = queue_bound
        self.client = make_client(broker, client_id, manual_ack=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_publishes = self._on_publishes
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.subscribed = threading.Event()  # the broker granted this connection's filters
        self._subscribing: tuple[int | None, list[str]] | None = None  # SUBSCRIBE mid, filters
        self._connection_log = ConnectionLog(broker, name)
        self.client.on_connect_fail = self._connection_log.connect_failed
        self._acks = Acknowledger(self.client)
        self._queue: BatchQueue[Received] = BatchQueue(queue_bound)
        self._retry = retry or Backoff()
        self.retry_delay_s = 0.0  # the current wait before the next persist attempt
        self._tally = ConsumerCounts()
        self._counts_lock = threading.Lock()
        self._worker = threading.Thread(
            target=fatal_on_death(self._work_loop, f"{name} worker"), name=f"{name}-worker",
            daemon=True,
        )
        self._outage: str | None = None  # the persist error being retried, logged once

    # -- what a stage implements -----------------------------------------------------------
    def subscriptions(self) -> list[str]:
        """Topic filters, subscribed at QoS 1 on every connect."""
        raise NotImplementedError

    def handle(self, message: Received) -> tuple[Outcome, R]:
        """Run the stage's core on one message (worker thread)."""
        raise NotImplementedError

    def persist(self, batch: list[Handled[R]]) -> None:
        """Keep the batch durably, or raise: it is retried, never acknowledged before."""
        raise NotImplementedError

    def transient(self, err: Exception) -> bool:
        """Whether a ``persist`` error says the store is unavailable (retry the same batch)
        rather than a bug in one message (isolate it). Everything is retried unless the
        stage narrows this; one that does also implements ``internal_error``."""
        return True

    def internal_error(self, message: Received, detail: str) -> R:
        """A dead letter (reason ``messages.INTERNAL_ERROR``) for a message whose handling
        or persisting raised; ``detail`` names the exception type."""
        raise NotImplementedError

    def linger_for(self, first: Received) -> float:
        """How long a batch starting with ``first`` waits for more messages: ``linger_s``,
        unless the stage knows better (``first`` is a batch itself, say)."""
        return self.linger_s

    def prepare(self, messages: list[Received]) -> None:
        """Work for the whole batch before ``handle`` runs on each message (e.g. one decode
        for all); whatever ``handle`` relies on, it must also manage without."""

    def handling(self) -> contextlib.AbstractContextManager[Any]:
        """Held around ``handle`` for a whole batch (e.g. a stage's lock, taken once)."""
        return contextlib.nullcontext()

    def store_name(self) -> str:
        """Where ``persist`` writes, for the log (e.g. a file path)."""
        return self.persist_label

    def after_ack(self, batch: list[Handled[R]]) -> None:
        """Called once the batch is acknowledged (best-effort follow-ups)."""

    def connected(self, filters: list[str]) -> None:
        log.info("%s subscribed to %s", self.name, ", ".join(filters))

    # -- state -----------------------------------------------------------------------------
    @property
    def counts(self) -> ConsumerCounts:
        with self._counts_lock:
            return dataclasses.replace(self._tally)

    @property
    def queued(self) -> int:
        """Messages waiting in the bounded queue (never more than ``queue_bound``)."""
        return len(self._queue)

    @property
    def accepting(self) -> bool:
        """False while ``persist`` fails for a transient reason (store down, full, read-only)."""
        return self._outage is None

    def summary(self) -> str:
        c = self.counts
        return (f"received {c.received}, accepted {c.accepted}, dead letters "
                f"{c.dead_lettered}, skipped {c.skipped}, failed {c.failed}, persisted "
                f"{c.persisted}, acknowledged {c.acknowledged}, persist retries "
                f"{c.persist_retries}, queued {self.queued}")

    def _count(self, **deltas: int) -> None:
        with self._counts_lock:
            tally = self._tally
            for name, n in deltas.items():
                setattr(tally, name, getattr(tally, name) + n)

    # -- lifecycle -------------------------------------------------------------------------
    def _start(self) -> None:
        self._worker.start()
        connect_async(self.client, self.broker)
        watch_client(self.client)

    def _stop(self) -> None:
        if self._worker.is_alive():
            self._worker.join(WORKER_JOIN_S)
        self.client.disconnect()
        self.client.loop_stop()

    # -- paho's network thread -------------------------------------------------------------
    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any,
                    reason_code: Any, properties: Any = None) -> None:
        if reason_failed(reason_code):
            self._connection_log.refused(reason_code)
            return
        self._acks.reconnected()
        self._count(connections=1)
        filters = self.subscriptions()
        _, mid = client.subscribe([(f, QOS_AT_LEAST_ONCE) for f in filters])
        self._subscribing = (mid, filters)

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int,
                      reason_codes: list[Any], properties: Any = None) -> None:
        """The SUBACK: only now do messages on our filters reach us (a broker that lost
        our session drops what is published before), so only now are we ready."""
        if self._subscribing is None or self._subscribing[0] != mid:
            return
        filters = self._subscribing[1]
        refused = [f"{f} ({code})" for f, code in zip(filters, reason_codes, strict=False)
                   if getattr(code, "is_failure", False)]
        if refused:
            log.error("%s: the broker at %s refused the subscription to %s; not ready",
                      self.name, f"{self.broker.host}:{self.broker.port}", ", ".join(refused))
            return
        self.subscribed.set()
        self.connected(filters)

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: Any,
                       reason_code: Any, properties: Any = None) -> None:
        self.subscribed.clear()
        self._acks.lost()
        if not self.stopping:
            self._connection_log.disconnected(reason_code)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        """A message paho decoded itself (e.g. QoS 2), not cut out by ``_on_publishes``."""
        self._enqueue([Received(message.topic, bytes(message.payload), message.mid,
                                message.qos, self._acks.connection, self.clock(),
                                bool(message.dup), bool(message.retain))])

    def _on_publishes(self, publishes: list[Publish]) -> None:
        connection, now = self._acks.connection, self.clock()
        self._enqueue([Received(topic, payload, mid, (header >> 1) & 3, connection, now,
                                bool(header & 0x08), bool(header & 0x01))
                       for topic, payload, mid, header in publishes])

    def _enqueue(self, items: list[Received]) -> None:
        # full: block, that is backpressure; stopping: what is left out stays
        # unacknowledged, and the broker redelivers it to the session
        self._queue.put_many(items, lambda: self.stopping, self._received, PUT_POLL_S)

    def _received(self, n: int) -> None:
        with self._counts_lock:
            self._tally.received += n

    # -- the worker ------------------------------------------------------------------------
    def _work_loop(self) -> None:
        while not self.stopping:
            messages = self._queue.take(self.batch_size, linger_for=self.linger_for)
            if not messages:
                continue
            outcomes: dict[str, int] = dict.fromkeys(_OUTCOMES, 0)
            with self.handling():
                self._prepare(messages)
                batch = [h for h in (self._handle(m, outcomes) for m in messages)
                         if h is not None]
            self._count(**outcomes)
            if not batch:
                continue
            kept = self._persist(batch)
            if kept is None:
                return  # stopping: unacknowledged, the broker redelivers them
            batch = kept
            self._count(persisted=len(batch))
            acked = self._acks.ack_all([(h.message.mid, h.message.qos, h.message.connection)
                                        for h in batch])
            self._count(acknowledged=acked)
            try:
                self.after_ack(batch)
            except Exception:  # best effort by contract: never let the worker die
                log.exception("%s: after_ack failed", self.name)

    def _prepare(self, messages: list[Received]) -> None:
        try:
            self.prepare(messages)
        except Exception:  # a bug: handle() still takes each message on its own
            log.exception("%s: preparing a batch of %d messages failed", self.name,
                          len(messages))

    def _handle(self, message: Received, outcomes: dict[str, int]) -> Handled[R] | None:
        """Handle one message, adding its outcome to ``outcomes`` (counted per batch)."""
        try:
            outcome, result = self.handle(message)
        except Exception as err:  # a bug, not bad input: dead-letter it, keep going
            log.exception("%s: could not handle a message on %s", self.name, message.topic)
            return self._internal_error(message, "handling", err)
        outcomes[outcome.value] += 1
        return Handled(message, outcome, result)

    def _internal_error(self, message: Received, stage: str,
                        err: BaseException) -> Handled[R] | None:
        self._count(failed=1)
        detail = f"{stage} raised {type(err).__name__}: {err}"
        try:
            result = self.internal_error(message, detail)
        except Exception:
            log.exception("%s: no dead letter for a message on %s; left unacknowledged",
                          self.name, message.topic)
            return None
        self._count(dead_lettered=1)
        return Handled(message, Outcome.DEAD_LETTERED, result)

    def _persist(self, batch: list[Handled[R]]) -> list[Handled[R]] | None:
        """Persist, retrying transient errors with backoff and isolating a poisoned
        message; what was kept (to acknowledge), or None when we stopped first."""
        while True:
            try:
                self.persist(batch)
            except Exception as err:
                if self.transient(err):  # never ack what was not kept
                    if not self._wait_out(err):
                        return None
                    continue
                log.exception("%s failed; retrying the %d messages one by one",
                              self.persist_label, len(batch))
                self._count(isolations=1)
                return self._persist_one_by_one(batch)
            else:
                self._recovered()
                return batch

    def _persist_one_by_one(self, batch: list[Handled[R]]) -> list[Handled[R]] | None:
        kept: list[Handled[R]] = []
        for handled in batch:
            attempt: Handled[R] | None = handled
            while attempt is not None:
                try:
                    self.persist([attempt])
                except Exception as err:
                    if self.transient(err):
                        if not self._wait_out(err):
                            return None
                        continue
                    if attempt is not handled:  # not even its dead letter can be kept
                        log.exception("%s: the internal_error dead letter of a message on "
                                      "%s cannot be kept; acknowledged and dropped",
                                      self.name, handled.message.topic)
                        self._count(dropped=1)
                        kept.append(attempt)
                        break
                    attempt = self._internal_error(handled.message, self.persist_label, err)
                    continue
                self._recovered()
                kept.append(attempt)
                break
        return kept

    def _wait_out(self, err: BaseException) -> bool:
        """Back off after a transient persist error; False when we stopped meanwhile."""
        delay = self._retry.next_delay()
        self.retry_delay_s = delay
        self._count(persist_retries=1)
        described = f"{type(err).__name__}: {err}"
        if self._outage != described:  # once per outage, not once per second
            log.error("%s to %s failed (%s); not accepting, retrying every %.1f s or less "
                      "until it works", self.persist_label, self.store_name(), described,
                      self._retry.cap_s, exc_info=not isinstance(err, self.expected_errors))
            self._outage = described
        return not self.stop_event.wait(delay)

    def _recovered(self) -> None:
        self._retry.reset()
        self.retry_delay_s = 0.0
        if self._outage is not None:
            log.warning("%s to %s works again; accepting", self.persist_label,
                        self.store_name())
            self._outage = None
