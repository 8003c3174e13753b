"""SoftPlace against the tool a user would pick instead: Node-RED + node-red-contrib-influxdb.

    .venv/bin/python bench/bench_peer.py [--messages 50000] [--runs 3] [--node-red-dir DIR]

One private mosquitto and one private influxd (``devkit.services``) serve both. Each run
publishes the same kind of traffic with the same publisher (``bench_pipeline``'s paho
client, QoS 1): N ``DeviceReading`` messages of the sample registry's site, live, as fast
as the publisher goes, and ends when every reading is accounted for (or nothing moved for
``--timeout`` seconds): Node-RED writes a ``room_count`` point per reading; SoftPlace's
ingest stores room counts on change (``softplace.thinning``), so there a reading is either
a point in influxd or one ingest thinned as a repeat of the point before it (about a
quarter of this traffic). The runs alternate A/B (Node-RED, SoftPlace, ...) so
drift in the machine's load hits both; each figure is the median of ``--runs``.

* A, Node-RED 4 with node-red-contrib-influxdb (pinned below, installed with npm into a
  temporary folder at run time unless ``--node-red-dir`` holds an install): the flow
  ``mqtt in -> function -> join 500 -> influxdb batch``; the function maps the device to
  its room's tags (from the registry) and builds the point.
* B, SoftPlace: the gateway and ingest, each in its own OS process, built by
  ``bench_pipeline``'s ``_gateway`` / ``_ingest``: device reading -> outbox -> room
  reading -> broker -> ingest -> influxd, every guarantee on.

CPU is read from ``/proc/<pid>/stat`` (utime + stime) of each process between the first
publish and the last point stored, so the figures hold under load: per 1,000 readings,
for the service processes and for the whole stack (plus mosquitto and influxd). The
throughput is end to end: N over the time from the first publish to the last point
stored. The ratios SoftPlace / Node-RED come last.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import multiprocessing.synchronize
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench_pipeline import (
    BenchClient,
    BenchError,
    _gateway,
    _ingest,
    device_readings,
    drop_session,
    fresh_store,
    stored_count,
)
from rich.console import Console
from rich.table import Table

from devkit.services import Influxd, Mosquitto, ServiceError
from softplace import topics
from softplace.consumer import tune_gc_for_service
from softplace.registry import Site, load_registry
from softplace.schema import RoomCountField, SeriesName
from softplace.settings import InfluxSettings, MqttSettings
from softplace.storage.influx import InfluxStore

NODE_RED = "node-red@4.1.15"  # 5.x needs node >= 22.9; Debian's node is 20
INFLUXDB_NODES = "node-red-contrib-influxdb@0.7.0"
JOIN_COUNT = 500  # the join node's batch: ingest's default batch size too
JOIN_TIMEOUT_S = 1  # the join node flushes a partial batch after this
READY_TIMEOUT_S = 60.0
POLL_S = 0.1
RP = "raw"
CLK_TCK = os.sysconf("SC_CLK_TCK")
NODE_RED_READY = "Connected to broker"
A, B = "Node-RED", "SoftPlace"
console = Console(width=150)
log = logging.getLogger(__name__)


# -- /proc -----------------------------------------------------------------------------------
def cpu_s(pid: int) -> float:
    """utime + stime of one process so far, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # the command may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of stat(5)


class Meter:
    """CPU seconds each named process spends between ``start`` and ``stop``."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start: dict[str, float] = {}
        self.spent: dict[str, float] = {}

    def start(self) -> None:
        self._start = {name: cpu_s(pid) for name, pid in self.pids.items()}

    def stop(self) -> None:
        self.spent = {name: cpu_s(pid) - self._start[name] for name, pid in self.pids.items()}


# -- Node-RED --------------------------------------------------------------------------------
def install_node_red(folder: Path) -> Path:
    """npm-install the pinned Node-RED and InfluxDB nodes into ``folder`` (once)."""
    red = folder / "node_modules" / "node-red" / "red.js"
    if red.exists():
        return red
    npm = shutil.which("npm")
    if npm is None:
        raise BenchError("npm not found: apt-get install -y npm")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "package.json").write_text('{"private": true}\n')
    console.print(f"npm install {NODE_RED} {INFLUXDB_NODES} ...")
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", NODE_RED,
         INFLUXDB_NODES], cwd=folder, check=True, capture_output=True, timeout=600,
    )
    return red


def function_code(site: Site) -> str:
    """The function node: a device's reading -> its room's point (what ingest stores)."""
    rooms = {device: placed.tags for device, placed in site.device_rooms().items()}
    return (
        f"const ROOMS = {json.dumps(rooms)};\n"
        "const r = msg.payload;\n"
        "const tags = ROOMS[r.device];\n"
        "if (!tags) { return null; }\n"
        f"msg.payload = {{measurement: '{SeriesName.ROOM_COUNT}', tags: tags,\n"
        f"  fields: {{{RoomCountField.COUNT}: r.count, {RoomCountField.SOURCES}: 1}},\n"
        "  timestamp: Math.round(r.ts * 1000)};\n"
        "return msg;\n"
    )


# Node-RED reads a property whose value is another node's id as a reference to it, so ids
# must not look like words ("join" as an id made the join node its own config node)
ID = {name: f"{i + 1:016x}" for i, name in enumerate(
    ("tab", "broker", "influx", "in", "fn", "join", "batch"))}


def flow(site: Site, broker: MqttSettings, influx: InfluxSettings) -> list[dict[str, Any]]:
    mqtt, http = urlsplit(broker.url), urlsplit(influx.url)
    host, port, influx_port = mqtt.hostname, mqtt.port, http.port
    return [
        {"id": ID["tab"], "type": "tab", "label": "bench"},
        {"id": ID["broker"], "type": "mqtt-broker", "broker": host, "port": str(port),
         "clientid": f"node-red-{uuid.uuid4().hex[:8]}", "autoConnect": True, "usetls": False,
         "protocolVersion": "4", "keepalive": "60", "cleansession": True},
        {"id": ID["influx"], "type": "influxdb", "hostname": "127.0.0.1", "port": influx_port,
         "protocol": "http", "database": influx.database, "name": "", "usetls": False,
         "tls": "", "influxdbVersion": "1.x"},
        {"id": ID["in"], "type": "mqtt in", "z": ID["tab"],
         "topic": topics.all_device_readings(site.id),
         "qos": "1", "datatype": "json", "broker": ID["broker"], "nl": False, "rap": True,
         "rh": 0, "inputs": 0, "wires": [[ID["fn"]]]},
        {"id": ID["fn"], "type": "function", "z": ID["tab"], "func": function_code(site),
         "outputs": 1, "wires": [[ID["join"]]]},
        {"id": ID["join"], "type": "join", "z": ID["tab"], "mode": "custom", "build": "array",
         "property": "payload", "propertyType": "msg", "key": "topic", "joiner": "\\n",
         "joinerType": "str", "accumulate": False, "timeout": str(JOIN_TIMEOUT_S),
         "count": str(JOIN_COUNT), "reduceRight": False, "wires": [[ID["batch"]]]},
        {"id": ID["batch"], "type": "influxdb batch", "z": ID["tab"], "influxdb": ID["influx"],
         "precision": "ms", "retentionPolicy": RP, "wires": []},
    ]


class NodeRed:
    """One Node-RED process running the bench flow; stopped by its pid."""

    def __init__(self, red: Path, workdir: Path) -> None:
        self.red = red
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workdir / "node-red.log"

    def start(self, flows: list[dict[str, Any]]) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "flows.json").write_text(json.dumps(flows))
        settings = self.workdir / "settings.js"
        settings.write_text(
            "module.exports = {flowFile: 'flows.json', uiHost: '127.0.0.1', uiPort: 0,\n"
            "  httpAdminRoot: false, httpNodeRoot: false, credentialSecret: false,\n"
            "  logging: {console: {level: 'info'}}};\n"
        )
        node = shutil.which("node") or "node"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [node, str(self.red), "--userDir", str(self.workdir), "--settings",
                 str(settings)], stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while NODE_RED_READY not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BenchError(f"Node-RED did not connect: {self.log.read_text()[-2000:]}")
            time.sleep(POLL_S)
        time.sleep(1.0)  # the connection is logged before the SUBACK: let it land

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


# -- SoftPlace, one process per service -------------------------------------------------------
def gateway_process(site_id: str, broker: MqttSettings, state_dir: Path,
                    ready: multiprocessing.synchronize.Event,
                    stop: multiprocessing.synchronize.Event) -> None:
    logging.basicConfig(level=logging.WARNING)
    site = load_registry().site(site_id)
    gateway = _gateway(site, broker, state_dir)
    tune_gc_for_service()  # as `softplace gateway` does
    gateway.start()
    try:
        if gateway.subscribed.wait(READY_TIMEOUT_S):
            ready.set()
        stop.wait()
    finally:
        gateway.stop()


def ingest_process(broker: MqttSettings, influx: InfluxSettings, run: str, stage: str,
                   ready: multiprocessing.synchronize.Event,
                   stop: multiprocessing.synchronize.Event, thinned: Any) -> None:
    logging.basicConfig(level=logging.WARNING)
    store = InfluxStore(influx)
    ingest = _ingest(load_registry(), store, broker, run, stage)
    tune_gc_for_service()  # as `softplace ingest` does
    ingest.start()
    try:
        if ingest.subscribed.wait(READY_TIMEOUT_S):
            ready.set()
        while not stop.wait(POLL_S):
            thinned.value = ingest.thinned
    finally:
        ingest.stop()
        store.close()


@dataclass(slots=True)
class Run:
    peer: str
    n: int
    seconds: float
    stored: int
    thinned: int = 0  # readings not stored as a point: change-only storage (SoftPlace)
    published_s: float = 0.0  # from the first publish to the publisher's last PUBACK
    service_cpu: dict[str, float] = field(default_factory=dict)
    stack_cpu: dict[str, float] = field(default_factory=dict)

    @property
    def service_ms_per_1k(self) -> float:
        return sum(self.service_cpu.values()) * 1e6 / self.n

    @property
    def stack_ms_per_1k(self) -> float:
        return (sum(self.service_cpu.values()) + sum(self.stack_cpu.values())) * 1e6 / self.n

    @property
    def rate(self) -> float:
        return (self.stored + self.thinned) / self.seconds if self.seconds else 0.0

    @property
    def publisher_rate(self) -> float:
        return self.n / self.published_s if self.published_s else 0.0

    @property
    def keeps_up(self) -> float:
        """End-to-end rate over the publisher's own: 1 when the last point is stored as
        the last PUBACK comes, a little less for the tail (batching, the poll)."""
        return self.rate / self.publisher_rate if self.publisher_rate else 0.0

    @property
    def lost(self) -> int:
        return max(self.n - self.stored - self.thinned, 0)


class Bench:
    def __init__(self, mosquitto: Mosquitto, influxd: Influxd, workdir: Path, n: int,
                 timeout: float) -> None:
        self.mosquitto = mosquitto
        self.influxd = influxd
        self.broker = mosquitto.settings
        self.workdir = workdir
        self.n = n
        self.timeout = timeout
        self.site = load_registry().sites[0]
        self.run_id = uuid.uuid4().hex[:8]
        self.runs = 0

    def _measure(self, peer: str, services: dict[str, int], store: InfluxStore,
                 thinned: Callable[[], int] = lambda: 0) -> Run:
        """Publish N readings, wait until each is a point in influxd or ``thinned``; CPU of
        every process."""
        self.runs += 1
        messages = device_readings(self.site, self.n, boot=100 + self.runs)
        meter = Meter({**services, "mosquitto": self.mosquitto.pid,
                       "influxd": self.influxd.pid})
        publisher = BenchClient(self.broker, f"bench-{self.run_id}-peer-pub-{self.runs}")
        publisher.connect()
        try:
            meter.start()
            start = time.monotonic()
            publisher.publish(messages, lambda: None)
            done = stored = skipped = 0
            last_change = end = time.monotonic()
            while done < self.n and time.monotonic() - last_change < self.timeout:
                time.sleep(POLL_S)
                stored, skipped = stored_count(store), thinned()
                if stored + skipped != done:
                    done, last_change, end = stored + skipped, time.monotonic(), time.monotonic()
            meter.stop()
        finally:
            publisher.close()
        run = Run(peer, self.n, end - start, stored, skipped,
                  published_s=publisher.last_acked_at - start if publisher.acked == self.n
                  else 0.0)
        run.service_cpu = {k: v for k, v in meter.spent.items() if k in services}
        run.stack_cpu = {k: v for k, v in meter.spent.items() if k not in services}
        console.print(f"{peer} run: {run.rate:,.0f} msg/s (publisher {run.publisher_rate:,.0f}),"
                      f" {run.service_ms_per_1k:.0f} ms CPU "
                      f"per 1k ({', '.join(f'{k} {v:.2f} s' for k, v in run.service_cpu.items())})"
                      f", stored {run.stored}, thinned {run.thinned}, lost {run.lost}")
        return run

    def node_red(self, red: Path) -> Run:
        database = f"peer_a{self.runs + 1}"
        store = fresh_store(self.influxd, database)
        node_red = NodeRed(red, self.workdir / f"node-red-{self.runs + 1}")
        node_red.start(flow(self.site, self.broker, store.settings))
        try:
            run = self._measure(A, {"node-red": node_red.pid}, store)
            if run.lost:
                console.print(node_red.log.read_text(errors="replace")[-3000:])
            return run
        finally:
            node_red.stop()
            store.close()

    def softplace(self) -> Run:
        database = f"peer_b{self.runs + 1}"
        store = fresh_store(self.influxd, database)
        stage = f"peer{self.runs + 1}"
        context = multiprocessing.get_context("spawn")
        stop = context.Event()
        ingest_ready, gateway_ready = context.Event(), context.Event()
        thinned = context.Value("q", 0)
        ingest = context.Process(target=ingest_process, name="ingest", args=(
            self.broker, store.settings, self.run_id, stage, ingest_ready, stop, thinned))
        gateway = context.Process(target=gateway_process, name="gateway", args=(
            self.site.id, self.broker, self.workdir / f"gateway-{stage}", gateway_ready, stop))
        try:
            ingest.start()
            if not ingest_ready.wait(READY_TIMEOUT_S):
                raise BenchError("ingest never subscribed")
            gateway.start()
            if not gateway_ready.wait(READY_TIMEOUT_S):
                raise BenchError("the gateway never subscribed")
            assert ingest.pid is not None and gateway.pid is not None
            return self._measure(B, {"gateway": gateway.pid, "ingest": ingest.pid}, store,
                                 lambda: int(thinned.value))
        finally:
            stop.set()
            for process in (gateway, ingest):
                if process.pid is not None:
                    process.join(30)
                    if process.is_alive():
                        process.kill()
            # the next run's traffic must not queue for these sessions
            drop_session(self.broker, f"softplace-gateway-{self.site.id}")
            drop_session(self.broker, f"bench-{self.run_id}-ingest-{stage}")
            store.close()


def median(runs: Sequence[Run], value: Callable[[Run], float]) -> float:
    return statistics.median(value(run) for run in runs)


def keeps_up(run: Run) -> float:
    return run.keeps_up


def report(a: Sequence[Run], b: Sequence[Run]) -> Table:
    table = Table(title=f"Side by side, {a[0].n:,} messages, medians of {len(a)} (A/B alternating)")
    table.add_column("")
    table.add_column(f"{A} + node-red-contrib-influxdb", justify="right")
    table.add_column(f"{B} gateway + ingest", justify="right")
    table.add_column(f"{B} / {A}", justify="right")
    def per_1k(name: str) -> Callable[[Run], float]:
        return lambda run: run.service_cpu[name] * 1e6 / run.n

    parts = ", ".join(f"{name} {median(b, per_1k(name)):.0f}" for name in b[0].service_cpu)
    rows: list[tuple[str, Callable[[Run], float], str]] = [
        ("CPU per 1,000 readings, the service(s)", lambda r: r.service_ms_per_1k, "ms"),
        ("CPU per 1,000 readings, whole stack (+ mosquitto, influxd)",
         lambda r: r.stack_ms_per_1k, "ms"),
        ("end-to-end throughput", lambda r: r.rate, "msg/s"),
        ("the publisher's rate (QoS 1, to its last PUBACK)", lambda r: r.publisher_rate,
         "msg/s"),
    ]
    for label, value, unit in rows:
        va, vb = median(a, value), median(b, value)
        extra = f" ({parts})" if label.endswith("service(s)") else ""
        table.add_row(label, f"{va:,.0f} {unit}", f"{vb:,.0f} {unit}{extra}",
                      f"{vb / va:.2f}x" if va else "-")
    table.add_row("end-to-end over the publisher's rate", f"{median(a, keeps_up):.2f}",
                  f"{median(b, keeps_up):.2f}",
                  f"{median(b, keeps_up) / median(a, keeps_up):.2f}x"
                  if median(a, keeps_up) else "-")
    table.add_row("lost (worst run)", str(max(r.lost for r in a)), str(max(r.lost for r in b)),
                  "")
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each peer (median)")
    parser.add_argument("--timeout", type=float, default=30,
                        help="a run ends when no point arrived for this many seconds")
    parser.add_argument("--node-red-dir", type=Path, default=None,
                        help="an npm folder holding (or to receive) the pinned Node-RED install")
    parser.add_argument("--softplace-only", action="store_true",
                        help="run SoftPlace alone (e.g. under py-spy record -s); no ratios")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    workdir = Path(tempfile.mkdtemp(prefix="softplace-peer-"))
    mosquitto, influxd = Mosquitto(workdir / "mosquitto"), Influxd(workdir / "influxd")
    a_runs: list[Run] = []
    b_runs: list[Run] = []
    try:
        red = None if args.softplace_only else install_node_red(
            args.node_red_dir or workdir / "npm")
        mosquitto.start()
        influxd.start()
        bench = Bench(mosquitto, influxd, workdir, args.messages, args.timeout)
        for _ in range(args.runs):
            if red is not None:
                a_runs.append(bench.node_red(red))
            b_runs.append(bench.softplace())
    except (BenchError, ServiceError, subprocess.CalledProcessError) as err:
        console.print(f"[red]bench failed:[/] {err}")
        return 2
    finally:
        influxd.stop()
        mosquitto.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if a_runs:
        console.print(report(a_runs, b_runs))
    return 1 if any(r.lost for r in a_runs + b_runs) else 0


if __name__ == "__main__":
    sys.exit(main())
