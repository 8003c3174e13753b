"""Pipeline throughput bench: our services against the raw ceilings of their backends.

    .venv/bin/python bench/bench_pipeline.py [--messages N] [--timeout S] [--workdir DIR]

Starts a private mosquitto and influxd (``devkit.services``) on free loopback ports, then
measures in one run:

    a1  mosquitto QoS 1, live: one publisher -> broker -> one subscriber
    a2  mosquitto QoS 1, backlog: a subscriber draining N messages queued in its session
    b   influxd /write: line-protocol batches of 500, one request at a time
    c1  GatewayCore.handle_reading + commit (no I/O)
    c2  IngestCore.samples_for + line protocol (no I/O)
    c3  the gateway's SQLite outbox alone: enqueue + delete per reading (disk, no MQTT)
    d   Gateway service: N device readings queued on the broker -> SQLite outbox ->
        room readings forwarded QoS 1, until the outbox is empty
    e   Ingest service: N room readings queued on the broker -> InfluxStore, until all
        are written and acknowledged
    f   whole chain: N device readings queued -> Gateway -> broker -> Ingest -> influxd

d, e and f drain a backlog, so their ceiling is a2 (and b for ingest). Each stage checks
its counts (and, where points are stored, counts them in influxd); a loss or a timeout
makes the exit status non-zero, so the bench doubles as a sanity check.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from devkit.services import Influxd, Mosquitto, ServiceError
from gateway.core import GatewayCore, Outgoing
from gateway.outbox import Outbox
from gateway.service import BATCH_ROWS, Gateway
from gateway.settings import GatewaySettings
from ingest.core import IngestCore
from ingest.service import Ingest
from ingest.settings import IngestSettings
from softplace import topics
from softplace.consumer import Consumer
from softplace.messages import BatchAck, DeviceReading, RoomReading, RoomReadingBatch
from softplace.mqtt import QOS_AT_LEAST_ONCE, connect_async, make_client, reason_failed
from softplace.registry import Registry, Site, load_registry
from softplace.schema import SERIES, RoomCountField, SeriesName
from softplace.settings import MqttSettings, RetentionSettings
from softplace.storage.base import Sample
from softplace.storage.influx import InfluxStore, to_line

BATCH = IngestSettings.model_fields["batch_size"].default  # ingest's default batch: 500
POLL_S = 0.02
MAX_MESSAGES = 1_000_000


class BenchError(RuntimeError):
    """A stage could not run (no connection, timeout): the bench fails."""


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes


@dataclass(slots=True)
class Figure:
    key: str
    name: str
    unit: str
    count: int  # items processed
    seconds: float
    lost: int = 0  # expected but not seen (or dead-lettered): non-zero fails the bench
    note: str = ""
    cpu_s: float | None = None  # this process's CPU time over the stage (services in-process)

    @property
    def cpu_ms_per_1000(self) -> float | None:
        return 1e6 * self.cpu_s / self.count if self.cpu_s is not None and self.count else None

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


# -- payloads ------------------------------------------------------------------------------
def device_readings(site: Site, n: int, boot: int) -> list[Message]:
    """N readings, round robin over the site's devices; unique (device, boot, seq) and a
    unique millisecond per reading, spread over the last hour (so no point overwrites)."""
    rooms = site.device_rooms()
    devices = sorted(rooms)
    start = time.time() - 3600
    step = 3000 / n  # n <= MAX_MESSAGES keeps one millisecond apart at least
    messages = []
    for i in range(n):
        device = devices[i % len(devices)]
        reading = DeviceReading(
            device=device, boot=boot, seq=i // len(devices), ts=round(start + i * step, 3),
            synced=True, count=(i * 7) % (rooms[device].room.capacity + 1), sensor="ld2410",
            battery_pct=87.5, rssi_dbm=-61,
        )
        messages.append(Message(topics.device_reading(site.id, device), reading.to_json()))
    return messages


def room_readings(registry: Registry, n: int) -> list[Message]:
    """N room readings over every room of the registry, each on its own millisecond."""
    placed = list(registry.placed_rooms())
    start = time.time() - 3600
    step = 3000 / n
    messages = []
    for i in range(n):
        room = placed[i % len(placed)]
        reading = RoomReading(site=room.site.id, room=room.room.id,
                              ts=round(start + i * step, 3),
                              count=i % (room.room.capacity + 1), sources=1)
        messages.append(Message(topics.room(room.site.id, room.room.id), reading.to_json()))
    return messages


# -- a paho client for the bench's own traffic, built like the services' ------------------
class BenchClient:
    def __init__(self, broker: MqttSettings, client_id: str, *, persistent: bool = False) -> None:
        self.broker = broker
        self.persistent = persistent
        self.client = make_client(broker, client_id, persistent=persistent)
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.received = 0  # only paho's network thread writes these three
        self.acked = 0
        self.last_acked_at = 0.0  # monotonic, when the latest PUBACK came
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any,
                    reason_code: Any, properties: Any = None) -> None:
        if not reason_failed(reason_code):
            self.connected.set()

    def _on_subscribe(self, *_: Any) -> None:
        self.subscribed.set()

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self.received += 1

    def _on_publish(self, *_: Any) -> None:
        self.acked += 1
        self.last_acked_at = time.monotonic()

    def connect(self, timeout: float = 10) -> None:
        connect_async(self.client, self.broker, persistent=self.persistent)
        if not self.connected.wait(timeout):
            raise BenchError(f"no connection to {self.broker.url} within {timeout} s")

    def subscribe(self, topic_filter: str, timeout: float = 10) -> None:
        self.client.subscribe(topic_filter, qos=QOS_AT_LEAST_ONCE)
        if not self.subscribed.wait(timeout):
            raise BenchError(f"no SUBACK for {topic_filter} within {timeout} s")

    def publish(self, messages: Sequence[Message], tick: Callable[[], None]) -> None:
        for i, message in enumerate(messages):
            info = self.client.publish(message.topic, message.payload, qos=QOS_AT_LEAST_ONCE)
            if info.rc != paho.MQTT_ERR_SUCCESS:
                raise BenchError(f"publish failed: {paho.error_string(info.rc)}")
            if i % 500 == 0:
                tick()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class BatchAcker(BenchClient):
    """Stands in for ingest in stage d: acknowledges every gateway batch as it arrives
    (the gateway deletes outbox rows only on an ack)."""

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self.received += 1
        batch = RoomReadingBatch.model_validate_json(message.payload)
        ack = BatchAck(site=batch.site, batch=batch.batch)
        client.publish(topics.batch_ack(batch.site), ack.to_json(), qos=QOS_AT_LEAST_ONCE)


def drop_session(broker: MqttSettings, client_id: str) -> None:
    """Connect with a clean start and no expiry: the broker forgets that session."""
    client = BenchClient(broker, client_id)
    client.connect()
    client.close()


# -- running stages ------------------------------------------------------------------------
class Runner:
    def __init__(self, progress: Progress, timeout: float, run: str) -> None:
        self.progress = progress
        self.timeout = timeout
        self.run = run  # in every client id and shared group of this run

    @contextmanager
    def task(self, label: str, total: int) -> Iterator[TaskID]:
        task = self.progress.add_task(label, total=total)
        try:
            yield task
        finally:
            self.progress.stop_task(task)

    def wait(self, task: TaskID, label: str, done: Callable[[], int], total: int,
             finished: Callable[[], bool] = lambda: True) -> float:
        """Poll until ``done() >= total`` and ``finished()``; the monotonic end time."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            count = done()
            self.progress.update(task, completed=min(count, total))
            if count >= total and finished():
                return time.monotonic()
            time.sleep(POLL_S)
        raise BenchError(f"{label}: {done()} of {total} after {self.timeout:.0f} s")

    def preload(self, broker: MqttSettings, label: str, messages: Sequence[Message]) -> None:
        """Publish messages QoS 1 and wait for every PUBACK (they are then queued)."""
        publisher = BenchClient(broker, f"bench-{self.run}-{label}-pub")
        publisher.connect()
        try:
            with self.task(f"{label}: queue on broker", len(messages)) as task:
                def tick() -> None:
                    self.progress.update(task, completed=publisher.acked)
                publisher.publish(messages, tick)
                self.wait(task, label, lambda: publisher.acked, len(messages))
        finally:
            publisher.close()


def stored_count(store: InfluxStore) -> int:
    family = SERIES[SeriesName.ROOM_COUNT].family
    source = f'"{store.settings.database}"."{family}"."{SeriesName.ROOM_COUNT}"'
    blocks = store.influxql(f'SELECT count("{RoomCountField.COUNT}") FROM {source}')
    return sum(int(row[1]) for block in blocks for row in block.get("values", []))


def fresh_store(influxd: Influxd, database: str) -> InfluxStore:
    store = InfluxStore(influxd.settings_for(database))
    store.apply_retention(RetentionSettings().policies())
    return store


def mosquitto_live(r: Runner, broker: MqttSettings, run: str, site: Site, n: int) -> Figure:
    messages = device_readings(site, n, boot=1)
    subscriber = BenchClient(broker, f"bench-{run}-a1-sub")
    publisher = BenchClient(broker, f"bench-{run}-a1-pub")
    subscriber.connect()
    subscriber.subscribe(topics.all_device_readings(site.id))
    publisher.connect()
    try:
        with r.task("a1 mosquitto live pub -> sub", n) as task:
            start = time.monotonic()
            publisher.publish(
                messages, lambda: r.progress.update(task, completed=subscriber.received)
            )
            end = r.wait(task, "a1", lambda: subscriber.received, n)
    finally:
        publisher.close()
        subscriber.close()
    size = len(messages[0].payload)
    return Figure("a1", "mosquitto live pub->sub", "msg/s", n, end - start,
                  lost=max(n - subscriber.received, 0), note=f"QoS 1, {size} B payloads")


def mosquitto_backlog(r: Runner, broker: MqttSettings, run: str, site: Site, n: int) -> Figure:
    client_id = f"bench-{run}-a2-sub"
    setup = BenchClient(broker, client_id, persistent=True)
    setup.connect()
    setup.subscribe(topics.all_device_readings(site.id))
    setup.close()
    r.preload(broker, "a2", device_readings(site, n, boot=2))
    subscriber = BenchClient(broker, client_id, persistent=True)
    try:
        with r.task("a2 mosquitto backlog -> sub", n) as task:
            start = time.monotonic()
            subscriber.connect()
            end = r.wait(task, "a2", lambda: subscriber.received, n)
    finally:
        subscriber.close()
        drop_session(broker, client_id)
    return Figure("a2", "mosquitto backlog drain", "msg/s", n, end - start,
                  lost=max(n - subscriber.received, 0))


def influx_raw(r: Runner, influxd: Influxd, registry: Registry, n: int) -> Figure:
    store = fresh_store(influxd, "bench_raw")
    core = IngestCore(registry)
    lines = []
    for message in room_readings(registry, n):
        sample = core.samples_for(message.topic, message.payload)
        if not isinstance(sample, Sample):
            raise BenchError(f"b: ingest's core rejected a bench payload: {sample}")
        lines.append(to_line(sample))
    bodies = ["\n".join(lines[i:i + BATCH]).encode() for i in range(0, n, BATCH)]
    params = {"db": "bench_raw", "rp": "raw", "precision": "ms"}
    with r.task(f"b  influxd /write, batches of {BATCH}", n) as task, \
            httpx.Client(base_url=influxd.url, timeout=30) as http:
        deadline = time.monotonic() + r.timeout
        start = time.monotonic()
        for i, body in enumerate(bodies):
            response = http.post("/write", params=params, content=body)
            if response.status_code != 204:
                raise BenchError(f"b: /write answered {response.status_code}: {response.text}")
            r.progress.update(task, completed=min((i + 1) * BATCH, n))
            if time.monotonic() > deadline:
                raise BenchError(f"b: {i * BATCH} of {n} after {r.timeout:.0f} s")
        end = time.monotonic()
    stored = stored_count(store)
    store.close()
    return Figure("b", f"influxd /write x{BATCH}", "points/s", n, end - start,
                  lost=n - stored, note=f"{stored} stored")


def gateway_core(r: Runner, site: Site, n: int) -> Figure:
    messages = device_readings(site, n, boot=3)
    core = GatewayCore(site, GatewaySettings(site=site.id))
    accepted = 0
    with r.task("c1 GatewayCore (no I/O)", n) as task:
        start = time.monotonic()
        for i, message in enumerate(messages):
            decision = core.handle_reading(message.topic, message.payload, time.time())
            accepted += decision.accepted is not None
            if i % 2000 == 0:
                r.progress.update(task, completed=i)
        end = time.monotonic()
        r.progress.update(task, completed=n)
    return Figure("c1", "GatewayCore (no I/O)", "readings/s", n, end - start,
                  lost=n - accepted)


def ingest_core(r: Runner, registry: Registry, n: int) -> Figure:
    messages = room_readings(registry, n)
    core = IngestCore(registry)
    made = 0
    with r.task("c2 IngestCore + line protocol (no I/O)", n) as task:
        start = time.monotonic()
        for i, message in enumerate(messages):
            sample = core.samples_for(message.topic, message.payload)
            if isinstance(sample, Sample) and to_line(sample):
                made += 1
            if i % 2000 == 0:
                r.progress.update(task, completed=i)
        end = time.monotonic()
        r.progress.update(task, completed=n)
    return Figure("c2", "IngestCore+to_line (no I/O)", "readings/s", n, end - start, lost=n - made)


def gateway_outbox(r: Runner, workdir: Path, registry: Registry, n: int) -> Figure:
    """The outbox's disk work per reading, as the service does it: one transaction per
    enqueue, then the forwarder's read and delete of up to BATCH_ROWS rows."""
    outgoing = [Outgoing(m.topic, m.payload) for m in room_readings(registry, n)]
    outbox = Outbox(workdir / "outbox-c3.sqlite")
    last = 0
    try:
        with r.task("c3 gateway outbox on disk (no MQTT)", n) as task:
            start = time.monotonic()
            for i, message in enumerate(outgoing, 1):
                outbox.enqueue_many([([message], ("bench-device", 1, i))])
                if i % BATCH_ROWS == 0 or i == n:
                    ids = [row_id for row_id, _ in outbox.pending(last, BATCH_ROWS)]
                    outbox.delete(ids)
                    last = ids[-1] if ids else last
                    r.progress.update(task, completed=i)
            end = time.monotonic()
        left = outbox.size()
    finally:
        outbox.close()
    return Figure("c3", "gateway Outbox (disk only)", "readings/s", n, end - start,
                  lost=left, note="enqueue + delete, as the service does")


class BacklogWatch:
    """Polled with the progress: when the gateway had taken in every reading, and how far
    the forwarder fell behind (accepted, not yet acknowledged upstream)."""

    def __init__(self, gateway: Gateway, total: int) -> None:
        self.gateway = gateway
        self.total = total
        self.start = time.monotonic()
        self.peak = 0
        self.all_in: float | None = None

    def handled(self) -> int:
        gateway = self.gateway
        counts = gateway.counts
        self.peak = max(self.peak, counts.accepted - gateway.forwarded)
        handled = counts.accepted + counts.dead_lettered
        if handled >= self.total and self.all_in is None:
            self.all_in = time.monotonic() - self.start
        return handled

    def __str__(self) -> str:
        all_in = f"all in after {self.all_in:.1f} s, " if self.all_in is not None else ""
        return f"{all_in}outbox peak {self.peak}"


def _gateway(site: Site, broker: MqttSettings, state_dir: Path) -> Gateway:
    return Gateway(site, broker, GatewaySettings(site=site.id, state_dir=state_dir))


def _ensure_session(r: Runner, service: Consumer[Any], label: str) -> None:
    """Start a service once so the broker holds its session and subscriptions, then stop."""
    service.start()
    try:
        if not service.subscribed.wait(r.timeout):
            raise BenchError(f"{label}: the service never subscribed")
    finally:
        service.stop()


def gateway_service(r: Runner, broker: MqttSettings, workdir: Path, site: Site,
                    n: int) -> Figure:
    state = workdir / "gateway-d"
    first = _gateway(site, broker, state)
    _ensure_session(r, first, "d")
    r.preload(broker, "d", device_readings(site, n, boot=4))
    gateway = _gateway(site, broker, state)
    watch = BacklogWatch(gateway, n)
    acker = BatchAcker(broker, f"bench-{r.run}-acker")
    acker.connect()
    acker.subscribe(topics.batch(site.id))
    try:
        with r.task("d  gateway: backlog -> outbox -> broker", n) as task:
            start = watch.start = time.monotonic()
            cpu = time.process_time()
            gateway.start()
            end = r.wait(task, "d", watch.handled, n, lambda: gateway.outbox.size() == 0)
            cpu = time.process_time() - cpu
    finally:
        gateway.stop()
        acker.close()
    accepted = gateway.counts.accepted
    health = gateway.forwarded - accepted
    return Figure("d", "Gateway service", "readings/s", n, end - start,
                  lost=n - accepted,
                  note=f"forwarded {gateway.forwarded} ({health} health); {watch}", cpu_s=cpu)


def _ingest(registry: Registry, store: InfluxStore, broker: MqttSettings, run: str,
            stage: str) -> Ingest:
    settings = IngestSettings(shared_group=f"bench-{run}-{stage}",
                              client_id=f"bench-{run}-ingest-{stage}")
    return Ingest(registry, store, broker, settings)


def ingest_service(r: Runner, broker: MqttSettings, influxd: Influxd, run: str,
                   registry: Registry, n: int) -> Figure:
    store = fresh_store(influxd, "bench_ingest")
    first = _ingest(registry, store, broker, run, "e")
    _ensure_session(r, first, "e")
    r.preload(broker, "e", room_readings(registry, n))
    ingest = _ingest(registry, store, broker, run, "e")
    try:
        with r.task("e  ingest: backlog -> influxd", n) as task:
            start = time.monotonic()
            cpu = time.process_time()
            ingest.start()
            end = r.wait(task, "e", lambda: ingest.counts.persisted, n)
            cpu = time.process_time() - cpu
    finally:
        ingest.stop()
        drop_session(broker, ingest.settings.client_id)
    stored = stored_count(store)
    store.close()
    return Figure("e", "Ingest service", "points/s", n, end - start,
                  lost=n - stored,
                  note=f"{stored} stored, {ingest.counts.persist_retries} write failures",
                  cpu_s=cpu)


def whole_chain(r: Runner, broker: MqttSettings, influxd: Influxd, workdir: Path, run: str,
                site: Site, registry: Registry, n: int) -> Figure:
    store = fresh_store(influxd, "bench_chain")
    ingest = _ingest(registry, store, broker, run, "f")
    ingest.start()
    # the gateway's session (same client id as in d) is on the broker: this queues for it
    gateway = _gateway(site, broker, workdir / "gateway-f")
    watch = BacklogWatch(gateway, n)
    try:
        if not ingest.subscribed.wait(r.timeout):
            raise BenchError("f: ingest never subscribed")
        r.preload(broker, "f", device_readings(site, n, boot=5))
        with r.task("f  chain: backlog -> gateway -> ingest -> influxd", n) as task:
            start = watch.start = time.monotonic()
            cpu = time.process_time()
            gateway.start()
            # the gateway deletes a row only once ingest acknowledged it stored
            end = r.wait(task, "f", lambda: min(watch.handled(), gateway.forwarded), n,
                         lambda: gateway.outbox.size() == 0)
            cpu = time.process_time() - cpu
    finally:
        gateway.stop()
        ingest.stop()
        drop_session(broker, ingest.settings.client_id)
    stored = stored_count(store)
    store.close()
    # change-only storage: a reading not stored repeats the point before it (a thinned
    # reading written later as a batch's prev counts twice, so this check is a lower bound)
    thinned = ingest.thinned
    return Figure("f", "whole chain", "readings/s", n, end - start,
                  lost=max(n - gateway.counts.accepted, n - stored - thinned, 0),
                  note=f"{stored} stored, {thinned} thinned, {gateway.resent} batches re-sent; "
                  f"{watch}", cpu_s=cpu)


# -- report --------------------------------------------------------------------------------
# which raw ceiling each of our figures is compared with: d, e and f drain a backlog
CEILINGS: dict[str, tuple[str, ...]] = {"d": ("a2",), "e": ("a2", "b"), "f": ("a2", "b")}


def ceiling(key: str, by_key: dict[str, Figure]) -> Figure | None:
    candidates = [by_key[c] for c in CEILINGS.get(key, ()) if c in by_key]
    return min(candidates, key=lambda figure: figure.rate) if candidates else None


def report(figures: Sequence[Figure]) -> Table:
    by_key = {figure.key: figure for figure in figures}
    table = Table(title="SoftPlace pipeline throughput")
    table.add_column("")
    table.add_column("stage")
    table.add_column("count", justify="right")
    table.add_column("seconds", justify="right")
    table.add_column("rate", justify="right")
    table.add_column("vs ceiling", justify="right")
    table.add_column("CPU ms/1k", justify="right")
    table.add_column("check")
    table.add_column("note")
    for figure in figures:
        limit = ceiling(figure.key, by_key)
        ratio = f"{figure.rate / limit.rate:.0%} of {limit.key}" if limit and limit.rate else ""
        check = "[green]ok[/]" if figure.lost == 0 else f"[red]lost {figure.lost}[/]"
        cpu = figure.cpu_ms_per_1000
        table.add_row(figure.key, figure.name, f"{figure.count:,}", f"{figure.seconds:.2f}",
                      f"{figure.rate:,.0f} {figure.unit}", ratio,
                      f"{cpu:.0f}" if cpu is not None else "", check, figure.note)
    return table


# -- main ----------------------------------------------------------------------------------
def run_all(args: argparse.Namespace, workdir: Path, console: Console,
            figures: list[Figure]) -> None:
    """Run every stage, appending to ``figures`` (kept if a later stage fails)."""
    registry = load_registry()
    site = registry.sites[0]
    run = uuid.uuid4().hex[:8]
    n: int = args.messages
    broker_proc = Mosquitto(workdir / "mosquitto")
    influx_proc = Influxd(workdir / "influxd")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    try:
        broker_proc.start()
        influx_proc.start()
        broker = broker_proc.settings
        with Progress(*columns, console=console) as progress:
            r = Runner(progress, args.timeout, run)
            stages: list[Callable[[], Figure]] = [
                lambda: mosquitto_live(r, broker, run, site, n),
                lambda: mosquitto_backlog(r, broker, run, site, n),
                lambda: influx_raw(r, influx_proc, registry, n),
                lambda: gateway_core(r, site, n),
                lambda: ingest_core(r, registry, n),
                lambda: gateway_outbox(r, workdir, registry, n),
                lambda: gateway_service(r, broker, workdir, site, n),
                lambda: ingest_service(r, broker, influx_proc, run, registry, n),
            ]
            if not args.no_chain:
                stages.append(lambda: whole_chain(r, broker, influx_proc, workdir, run, site,
                                                  registry, n))
            for stage in stages:
                figures.append(stage())
    finally:
        influx_proc.stop()
        broker_proc.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=40_000, help="messages per stage")
    parser.add_argument("--timeout", type=float, default=120, help="seconds allowed per stage")
    parser.add_argument("--no-chain", action="store_true", help="skip the whole-chain stage f")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the services and the gateway outbox live (default: a "
                             "temporary directory; put it on the disk you deploy on)")
    args = parser.parse_args(argv)
    if not 1 <= args.messages <= MAX_MESSAGES:
        parser.error(f"--messages must be between 1 and {MAX_MESSAGES}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    console = Console()
    if not console.is_terminal:
        console.width = max(console.width, 120)
    workdir = Path(tempfile.mkdtemp(prefix="softplace-bench-", dir=args.workdir))
    figures: list[Figure] = []
    try:
        run_all(args, workdir, console, figures)
    except (BenchError, ServiceError) as err:
        if figures:
            console.print(report(figures))
        console.print(f"[red]bench failed:[/] {err}")
        return 2
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    console.print(report(figures))
    lost = [figure.key for figure in figures if figure.lost]
    if lost:
        console.print(f"[red]messages lost in stage(s) {', '.join(lost)}[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
