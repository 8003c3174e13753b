"""The shared consumer shell and lifecycle, in process, against the real mosquitto: what it
persists, when it acknowledges, how it pushes back, how it stops."""

from __future__ import annotations

import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from devkit.embedded_broker import free_port
from devkit.services import Mosquitto
from softplace import mqtt
from softplace.backoff import Backoff
from softplace.consumer import EXIT_THREAD_DIED, Consumer, Handled, Outcome, Received
from softplace.lifecycle import stop_on_signals
from softplace.mqtt import QOS_AT_LEAST_ONCE, RECONNECT_MAX_S, connect_async, make_client
from softplace.settings import MqttSettings
from tests.e2e.stack import wait_for

pytestmark = pytest.mark.services
TIMEOUT_S = 20
_numbers = itertools.count(1)


class Recorder(Consumer[str]):
    """A stage whose core is the identity and whose store is a list; ``gate`` (when given)
    holds every persist until it is set. ``events`` interleaves persists and acks."""

    def __init__(self, broker: MqttSettings, topic: str, client_id: str, *,
                 batch_size: int = 10, queue_bound: int = 100,
                 gate: threading.Event | None = None) -> None:
        super().__init__("recorder", broker, client_id, batch_size=batch_size,
                         queue_bound=queue_bound, clock=lambda: 1_700_000_000.0)
        self.topic = topic
        self.gate = gate
        self.persisting = threading.Event()  # a persist has begun
        self.kept: list[Received] = []
        self.events: list[tuple[str, int]] = []
        real_ack = self.client.ack

        def observed_ack(mid: int, qos: int) -> MQTTErrorCode:
            self.events.append(("ack", mid))
            return real_ack(mid, qos)

        self.client.ack = observed_ack  # type: ignore[method-assign]
        assert isinstance(self.client, mqtt.Client)
        real_ack_many = self.client.ack_many

        def observed_ack_many(mids: Iterable[int]) -> None:  # a batch's acks, one write
            mids = list(mids)
            self.events.extend(("ack", mid) for mid in mids)
            real_ack_many(mids)

        self.client.ack_many = observed_ack_many  # type: ignore[method-assign]

    def subscriptions(self) -> list[str]:
        return [self.topic]

    def handle(self, message: Received) -> tuple[Outcome, str]:
        return Outcome.ACCEPTED, message.payload.decode()

    def persist(self, batch: list[Handled[str]]) -> None:
        self.persisting.set()
        if self.gate is not None:
            assert self.gate.wait(TIMEOUT_S), "the test never opened the gate"
        self.kept.extend(h.message for h in batch)
        self.events.extend(("persist", h.message.mid) for h in batch)

    def payloads(self) -> list[str]:
        return [m.payload.decode() for m in self.kept]


def _names(request: pytest.FixtureRequest) -> tuple[str, str]:
    """A topic and a client id no other test (or earlier run on this broker) uses."""
    unique = f"{request.node.name}-{os.getpid()}-{next(_numbers)}"
    return f"test/consumer/{unique}", f"consumer-{unique}"


@pytest.fixture
def names(request: pytest.FixtureRequest) -> tuple[str, str]:
    return _names(request)


@pytest.fixture
def publisher(mosquitto: Mosquitto, names: tuple[str, str]) -> Iterator[paho.Client]:
    client = make_client(mosquitto.settings, f"{names[1]}-pub", persistent=False)
    connected = threading.Event()
    client.on_connect = lambda *_: connected.set()
    connect_async(client, mosquitto.settings, persistent=False)
    assert connected.wait(TIMEOUT_S)
    yield client
    client.disconnect()
    client.loop_stop()


def publish(client: paho.Client, topic: str, payloads: list[str]) -> None:
    infos = [client.publish(topic, p.encode(), qos=QOS_AT_LEAST_ONCE) for p in payloads]
    for info in infos:
        info.wait_for_publish(TIMEOUT_S)


def started(consumer: Recorder) -> Recorder:
    consumer.start()
    assert consumer.subscribed.wait(TIMEOUT_S), "the consumer never subscribed"
    return consumer


def assert_session_holds_nothing(
    mosquitto: Mosquitto, topic: str, client_id: str, publisher: paho.Client
) -> None:
    """The next consumer on the same session gets only what is sent now: every earlier
    message was acknowledged to the broker."""
    again = started(Recorder(mosquitto.settings, topic, client_id))
    try:
        publish(publisher, topic, ["marker"])
        wait_for(lambda: "marker" in again.payloads(), TIMEOUT_S, "the marker never came")
        assert again.payloads() == ["marker"]
    finally:
        again.stop()


def test_consumer_redelivers_what_a_lost_connection_left_unacknowledged(
    mosquitto: Mosquitto, names: tuple[str, str], publisher: paho.Client
) -> None:
    topic, client_id = names
    gate = threading.Event()
    consumer = started(Recorder(mosquitto.settings, topic, client_id, gate=gate))
    try:
        publish(publisher, topic, ["a", "b", "c"])
        assert consumer.persisting.wait(TIMEOUT_S)
        sock = consumer.client.socket()
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)  # the connection dies under the held batch
        wait_for(lambda: consumer.counts.connections == 2, TIMEOUT_S, "never reconnected")
        assert consumer.counts.acknowledged == 0
        gate.set()
        # the held batch is kept but its acks belong to the dead connection: the broker
        # redelivers it (DUP set) to the session, and that copy is kept and acknowledged
        wait_for(lambda: {"a", "b", "c"} <= {m.payload.decode() for m in consumer.kept
                                            if m.redelivered}, TIMEOUT_S,
                 f"not redelivered: {consumer.kept}")
        wait_for(lambda: consumer.counts.acknowledged >= 3, TIMEOUT_S, "never acknowledged")
        # no ack ever left for the first copies: their connection was gone
        latest = consumer.kept[-1].connection
        acks = [mid for kind, mid in consumer.events if kind == "ack"]
        assert len(acks) == len([m for m in consumer.kept if m.connection == latest]) == 3
        assert [m.connection for m in consumer.kept[:3]] == [consumer.kept[0].connection] * 3
        assert consumer.kept[0].connection != latest
    finally:
        consumer.stop()
    # nothing was left unacknowledged
    assert_session_holds_nothing(mosquitto, topic, client_id, publisher)


def test_consumer_acknowledges_in_arrival_order_only_after_persisting(
    mosquitto: Mosquitto, names: tuple[str, str], publisher: paho.Client
) -> None:
    topic, client_id = names
    sent = [f"m{i}" for i in range(12)]
    consumer = started(Recorder(mosquitto.settings, topic, client_id, batch_size=4))
    try:
        publish(publisher, topic, sent)
        wait_for(lambda: consumer.counts.acknowledged == len(sent), TIMEOUT_S,
                 f"acknowledged {consumer.counts.acknowledged}")
        assert consumer.payloads() == sent
        arrival = [m.mid for m in consumer.kept]
        acks = [mid for kind, mid in consumer.events if kind == "ack"]
        assert acks == arrival
        order = {event: i for i, event in enumerate(consumer.events)}
        assert all(order[("persist", mid)] < order[("ack", mid)] for mid in arrival)
        counts = consumer.counts
        assert (counts.received, counts.accepted, counts.persisted) == (12, 12, 12)
    finally:
        consumer.stop()
    # the acks reached the broker
    assert_session_holds_nothing(mosquitto, topic, client_id, publisher)


def test_consumer_bounded_queue_pushes_back_while_persist_blocks(
    mosquitto: Mosquitto, names: tuple[str, str], publisher: paho.Client
) -> None:
    topic, client_id = names
    bound, batch = 5, 3
    sent = [f"m{i}" for i in range(30)]
    gate = threading.Event()
    consumer = started(Recorder(mosquitto.settings, topic, client_id, batch_size=batch,
                                queue_bound=bound, gate=gate))
    try:
        publish(publisher, topic, sent)  # all on the broker; the consumer takes what fits
        # paho's thread may fill the queue before the worker took its first batch
        wait_for(lambda: consumer.queued == bound and consumer.counts.received > bound,
                 TIMEOUT_S, f"the queue never filled: {consumer.queued}")
        held = consumer.counts.received - bound  # in the worker's hands, at most one batch
        assert 1 <= held <= batch
        for _ in range(20):  # paho's thread is blocked: nothing more comes in
            assert consumer.queued <= bound
            assert consumer.counts.received == held + bound
            assert not consumer.stop_event.wait(0.05)
        assert consumer.counts.acknowledged == 0
        gate.set()
        wait_for(lambda: consumer.counts.acknowledged == len(sent), TIMEOUT_S,
                 f"acknowledged {consumer.counts.acknowledged} of {len(sent)}")
        assert consumer.payloads() == sent
    finally:
        gate.set()
        consumer.stop()


def test_consumer_warns_with_the_address_and_schedule_while_the_broker_is_away(
    caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    port = free_port()  # nothing listens there
    topic, client_id = _names(request)
    consumer = Recorder(MqttSettings(url=f"mqtt://127.0.0.1:{port}"), topic, client_id)
    with caplog.at_level(logging.WARNING, logger="softplace.mqtt"):
        consumer.start()
        try:
            wait_for(lambda: f"127.0.0.1:{port}" in caplog.text, TIMEOUT_S, "nothing logged")
        finally:
            consumer.stop()
            consumer.stop()  # idempotent
    assert f"up to {RECONNECT_MAX_S} s" in caplog.text


def test_stop_on_signals_turns_sigterm_into_a_stop_and_restores_the_handler() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals(threading.Event()) as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGTERM)  # delivered to the main thread: pytest's
        assert stop.wait(TIMEOUT_S)
    assert signal.getsignal(signal.SIGTERM) is before


def test_detect_stops_cleanly_on_sigterm_with_a_checkpoint(tmp_path: Path) -> None:
    checkpoint = tmp_path / "checkpoint.json"
    out = tmp_path / "detect.log"
    env = {**os.environ, "SOFTPLACE_STORAGE__SQLITE_PATH": str(tmp_path / "store.sqlite"),
           "SOFTPLACE_DETECTOR__CHECKPOINT_PATH": str(checkpoint), "COLUMNS": "200"}
    with out.open("wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "softplace_cli", "detect"],
                                   stdout=sink, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: "detector following" in out.read_text(), 60,
                 f"detect never started: {out.read_text()[-2000:]}", process=process)
        wait_for(checkpoint.exists, 60, "no checkpoint after the first step", process=process)
        process.send_signal(signal.SIGTERM)  # now in its poll sleep (10 s by default)
        assert process.wait(TIMEOUT_S) == 0, out.read_text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT_S)
    assert "detector stopped" in out.read_text()
    assert checkpoint.read_text().startswith("{")



class Fragile(Recorder):
    """A stage with bugs on cue: ``handle`` raises on payload "boom", ``persist`` raises
    ValueError for any batch holding "poison" (a bug: isolated) and OSError while
    ``outage`` is set (the store is away: retried)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outage = threading.Event()
        self.results: list[str] = []

    def handle(self, message: Received) -> tuple[Outcome, str]:
        if message.payload == b"boom":
            raise RuntimeError("a bug in the core")
        return super().handle(message)

    def transient(self, err: Exception) -> bool:
        return isinstance(err, OSError)

    def internal_error(self, message: Received, detail: str) -> str:
        return f"dead letter: {detail}"

    def persist(self, batch: list[Handled[str]]) -> None:
        if self.outage.is_set():
            raise OSError(28, "No space left on device")
        if any(h.result == "poison" for h in batch):
            raise ValueError("cannot store this one")
        self.kept.extend(h.message for h in batch)
        self.results.extend(h.result for h in batch)


def test_consumer_dead_letters_what_handling_or_persisting_raised_and_goes_on(
    mosquitto: Mosquitto, names: tuple[str, str], publisher: paho.Client
) -> None:
    topic, client_id = names
    sent = ["a", "boom", "b", "poison", "c"]
    consumer = Fragile(mosquitto.settings, topic, client_id, batch_size=10)
    started(consumer)
    try:
        publish(publisher, topic, sent)
        wait_for(lambda: consumer.counts.acknowledged == len(sent), TIMEOUT_S,
                 f"acknowledged {consumer.counts.acknowledged}: {consumer.summary()}")
        assert consumer.results[0] == "a"
        assert [r for r in consumer.results if r.startswith("dead letter")] == [
            "dead letter: handling raised RuntimeError: a bug in the core",
            "dead letter: persist raised ValueError: cannot store this one",
        ]
        assert [r for r in consumer.results if len(r) == 1] == ["a", "b", "c"]
        assert consumer.counts.failed == 2 and consumer.counts.dead_lettered == 2
    finally:
        consumer.stop()
    assert_session_holds_nothing(mosquitto, topic, client_id, publisher)


def test_consumer_stops_accepting_while_the_store_is_away_and_says_so_once(
    mosquitto: Mosquitto, names: tuple[str, str], publisher: paho.Client,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic, client_id = names
    consumer = Fragile(mosquitto.settings, topic, client_id, batch_size=10)
    consumer._retry = Backoff(base_s=0.01, cap_s=0.05)
    consumer.outage.set()
    with caplog.at_level(logging.INFO, logger="softplace.consumer"):
        started(consumer)
        try:
            publish(publisher, topic, ["a", "b"])
            wait_for(lambda: consumer.counts.persist_retries >= 10, TIMEOUT_S, "no retries")
            assert not consumer.accepting
            assert consumer.counts.acknowledged == 0
            consumer.outage.clear()
            wait_for(lambda: consumer.counts.acknowledged == 2, TIMEOUT_S, consumer.summary())
            assert consumer.accepting
        finally:
            consumer.stop()
    failed = [r for r in caplog.records if "No space left" in r.getMessage()]
    assert len(failed) == 1 and "not accepting" in failed[0].getMessage()
    assert "works again" in caplog.text


_DYING_STAGE = """
import sys, threading
from softplace.consumer import Consumer, Outcome
from softplace.settings import MqttSettings

class Dying(Consumer[str]):
    def subscriptions(self):
        if sys.argv[2] == "network":
            raise RuntimeError("dies in paho's thread")
        return [sys.argv[3]]
    def handle(self, message):
        raise SystemExit("not an Exception: the worker itself dies")

stage = Dying("dying", MqttSettings(url=sys.argv[1]), sys.argv[3], batch_size=1)
stage.start()
threading.Event().wait(60)  # a live process that stopped working, unless it exits
"""


@pytest.mark.parametrize("where", ["network", "worker"])
def test_consumer_thread_that_dies_ends_the_process_with_a_non_zero_status(
    mosquitto: Mosquitto, names: tuple[str, str], publisher: paho.Client, where: str,
    tmp_path: Path,
) -> None:
    topic, _ = names
    out = tmp_path / "dying.log"
    with out.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-c", _DYING_STAGE, mosquitto.settings.url, where, topic],
            stdout=sink, stderr=subprocess.STDOUT,
        )
    try:
        if where == "worker":
            for _ in range(TIMEOUT_S * 10):  # until its subscription is up and it takes one
                publish(publisher, topic, ["x"])
                if process.poll() is not None:
                    break
                threading.Event().wait(0.1)
        status = process.wait(TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(TIMEOUT_S)
    output = out.read_text()
    assert status == EXIT_THREAD_DIED, output
    assert "died; exiting" in output


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_consumer_reads_bursts_and_packets_larger_than_a_read_in_order(
    mosquitto: Mosquitto, names: tuple[str, str], publisher: paho.Client, protocol: str
) -> None:
    """softplace.mqtt.Client cuts packets out of RECV_BYTES reads itself: many packets per
    read, a packet split over reads, and one larger than a read must all arrive intact,
    in order, and be acknowledged (ack_many) so that the session holds nothing after."""
    topic, client_id = names
    settings = mosquitto.settings.model_copy(update={"protocol": protocol})
    big = "x" * (2 * mqtt.RECV_BYTES + 17)
    sent = [f"m{i:04d}" * (1 + i % 7) for i in range(600)]
    sent[300:300] = [big, big[:mqtt.RECV_BYTES - 3]]
    consumer = started(Recorder(settings, topic, client_id, batch_size=64, queue_bound=200))
    try:
        publish(publisher, topic, sent)
        wait_for(lambda: consumer.counts.acknowledged == len(sent), TIMEOUT_S,
                 consumer.summary())
        assert consumer.payloads() == sent
        assert not any(m.redelivered for m in consumer.kept)
    finally:
        consumer.stop()
    assert_session_holds_nothing(mosquitto, topic, client_id, publisher)


def test_consumer_is_ready_only_once_the_broker_granted_every_filter(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Readiness (and ``connected``) waits for the SUBACK of this connection's SUBSCRIBE;
    a filter the broker refuses keeps the consumer not ready, with the filter named."""
    consumer = Recorder(MqttSettings(), "test/consumer/suback", "consumer-suback")
    granted, refused = ReasonCode(PacketTypes.SUBACK, identifier=1), ReasonCode(
        PacketTypes.SUBACK, identifier=0x87)  # 0x87: not authorized
    consumer._subscribing = (7, ["a/#", "b/#"])
    with caplog.at_level(logging.ERROR):
        consumer._on_subscribe(consumer.client, None, 6, [granted, granted])  # another mid
        assert not consumer.subscribed.is_set()
        consumer._on_subscribe(consumer.client, None, 7, [granted, refused])
    assert not consumer.subscribed.is_set()
    assert "refused the subscription to b/# (Not authorized)" in caplog.text
    assert "a/#" not in caplog.text
    consumer._on_subscribe(consumer.client, None, 7, [granted, granted])
    assert consumer.subscribed.is_set()


def test_tune_gc_for_service_freezes_start_up_and_collects_less_often() -> None:
    """In a process of its own: freezing is for a service's process, not for pytest's."""
    code = ("import gc; from softplace.consumer import SERVICE_GC_GEN0, tune_gc_for_service;"
            "before = gc.get_threshold(); tune_gc_for_service();"
            "after = gc.get_threshold();"
            "assert before[0] < SERVICE_GC_GEN0 == after[0], (before, after);"
            "assert after[1:] == before[1:], (before, after);"
            "assert gc.get_freeze_count() > 0; assert gc.isenabled()")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=TIMEOUT_S, check=False)
    assert done.returncode == 0, done.stderr
