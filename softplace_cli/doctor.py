"""``softplace doctor``: is this installation able to run? One row per check, ok/warn/fail,
each with the fix; the exit status is 1 when any check fails.

Every check only looks: the store is never created, the database never altered, nothing is
published to a device topic. Checks after a failed configuration or registry are not run
(there is nothing to check them against); the others run independently.
"""

from __future__ import annotations

import itertools
import logging
import os
import shutil
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import click
import paho.mqtt.client as paho
from pydantic import ValidationError
from rich.table import Table

from gateway.settings import GatewaySettings
from privacy.settings import PrivacySettings
from softplace import topics
from softplace.cli import AppContext, console, pass_app
from softplace.errors import SoftPlaceError
from softplace.messages import DeviceReading
from softplace.mqtt import address, connect_async, make_client, reason_failed
from softplace.registry import Registry, load_registry
from softplace.schema import SensorHealthField, SeriesName
from softplace.settings import KernelSettings
from softplace.storage.base import Store
from softplace.storage.influx import InfluxStore
from softplace.storage.sqlite import SqliteStore

log = logging.getLogger(__name__)

BROKER_TIMEOUT_S = 5.0
SKEW_LISTEN_S = 3.0  # how long doctor listens to live sensor readings to compare clocks
SKEW_WARN_S = 2.0
DISK_WARN_BYTES = 1 << 30
DISK_FAIL_BYTES = 100 << 20
SILENT_LOOKBACK_S = 24 * 3600
SHOWN_IDS = 5
EXIT_FAILED = 1
_numbers = itertools.count(1)


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


STYLES = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "bold red"}


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""


@dataclass(frozen=True, slots=True)
class Probe:
    """What the checks may vary in tests: the clock and how long to listen."""

    clock: Callable[[], float] = time.time
    broker_timeout_s: float = BROKER_TIMEOUT_S
    skew_listen_s: float = SKEW_LISTEN_S
    disk_warn_bytes: int = DISK_WARN_BYTES
    disk_fail_bytes: int = DISK_FAIL_BYTES


# -- configuration and registry --------------------------------------------------------------
def check_configuration(load: Callable[[], KernelSettings]) -> tuple[Check, KernelSettings | None]:
    try:
        settings = load()
    except SoftPlaceError as err:
        return Check("configuration", Status.FAIL, str(err),
                     "correct the option named (file, line) or the SOFTPLACE_* variable"), None
    return Check("configuration", Status.OK, "settings valid"), settings


def check_registry(settings: KernelSettings) -> tuple[Check, Registry | None]:
    where = str(settings.registry) if settings.registry else "the bundled sample"
    try:
        registry = load_registry(settings.registry)
    except (SoftPlaceError, ValidationError, OSError) as err:
        return Check("registry", Status.FAIL, f"{where}: {err}".splitlines()[0],
                     "fix the registry YAML (the error names the line)"), None
    rooms = sum(1 for site in registry.sites for _ in site.placed_rooms())
    devices = sum(len(site.device_rooms()) for site in registry.sites)
    status = Status.WARN if settings.registry is None else Status.OK
    return Check("registry", status,
                 f"{where}: {len(registry.sites)} sites, {rooms} rooms, {devices} devices",
                 "set `registry:` to your site registry" if status is Status.WARN else ""
                 ), registry


# -- broker ----------------------------------------------------------------------------------
class BrokerSession:
    """One short non-persistent connection: CONNACK (or why not), then live readings."""

    def __init__(self, settings: KernelSettings, probe: Probe) -> None:
        self.settings = settings.mqtt
        self.probe = probe
        self.client = make_client(self.settings, f"softplace-doctor-{os.getpid()}-"
                                  f"{next(_numbers)}", persistent=False)
        self.client.reconnect_delay_set(min_delay=60, max_delay=60)  # one attempt is enough
        self.answered = threading.Event()
        self.refusal: str | None = None
        self.offsets: list[float] = []  # sensor clock minus ours, synced readings only
        self.client.on_connect = self._on_connect
        self.client.on_connect_fail = lambda *_: self.answered.set()
        self.client.on_message = self._on_message

    def _on_connect(self, client: paho.Client, userdata: Any, flags: Any, reason_code: Any,
                    properties: Any = None) -> None:
        if reason_failed(reason_code):
            self.refusal = str(reason_code)
        self.answered.set()

    def _on_message(self, client: paho.Client, userdata: Any,
                    message: paho.MQTTMessage) -> None:
        if message.retain:
            return  # an old retained message says nothing about the clocks now
        try:
            reading = DeviceReading.model_validate_json(message.payload)
        except ValidationError:
            return
        if reading.synced:
            self.offsets.append(reading.ts - self.probe.clock())

    def __enter__(self) -> BrokerSession:
        connect_async(self.client, self.settings, persistent=False)
        self.answered.wait(self.probe.broker_timeout_s)
        return self

    def __exit__(self, *_: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def check(self) -> Check:
        where = address(self.settings)
        if self.client.is_connected():
            return Check("broker", Status.OK, f"connected to {where}")
        if self.refusal is not None:
            return Check("broker", Status.FAIL, f"{where} refused the connection: "
                         f"{self.refusal}", "check mqtt.username / mqtt.password and the "
                         "broker's ACL")
        return Check("broker", Status.FAIL, f"cannot reach {where} within "
                     f"{self.probe.broker_timeout_s:g} s", "start the broker or correct mqtt.url"
                     " (host, port, mqtts:// for TLS)")

    def check_skew(self, registry: Registry) -> Check:
        if not self.client.is_connected():
            return Check("clock skew", Status.WARN, "not measured: no broker connection",
                         "fix the broker check first")
        self.client.subscribe([(topics.all_device_readings(site.id), 0)
                               for site in registry.sites])
        deadline = time.monotonic() + self.probe.skew_listen_s
        while time.monotonic() < deadline and not self.offsets:
            time.sleep(0.05)
        if not self.offsets:
            return Check("clock skew", Status.WARN, "not measured: no NTP-synced sensor reading"
                         f" in {self.probe.skew_listen_s:g} s", "run again while sensors report")
        skew = statistics.median(self.offsets)
        if abs(skew) > SKEW_WARN_S:
            return Check("clock skew", Status.WARN, f"sensors' clocks are {skew:+.1f} s from "
                         "this host's", "enable NTP (chrony or systemd-timesyncd) here; the "
                         "gateway rejects readings too far ahead")
        return Check("clock skew", Status.OK, f"{skew:+.1f} s against {len(self.offsets)} "
                     "live sensor readings through the broker")


# -- storage ---------------------------------------------------------------------------------
def check_influx(settings: KernelSettings) -> Iterator[Check]:
    if settings.storage.backend != "influxdb":
        yield Check("influxdb", Status.OK, "not used (storage.backend: sqlite)")
        return
    store = InfluxStore(settings.influxdb)
    try:
        if not store.ping():
            yield Check("influxdb", Status.FAIL, f"no answer from {settings.influxdb.url}",
                        "start influxd or correct influxdb.url")
            return
        yield Check("influxdb", Status.OK, f"{settings.influxdb.url} answers")
        try:
            databases = [row[0] for block in store.influxql("SHOW DATABASES")
                         for row in block.get("values", [])]
        except SoftPlaceError as err:
            yield Check("store", Status.FAIL, str(err), "check influxdb.username / password")
            return
        if settings.influxdb.database not in databases:
            yield Check("store", Status.FAIL, f"database {settings.influxdb.database} missing",
                        "softplace privacy apply-retention (creates it with its policies)")
            return
        yield Check("store", Status.OK, f"database {settings.influxdb.database} present")
        yield _retention_check(store, settings)
    finally:
        store.close()


def _retention_check(store: InfluxStore, settings: KernelSettings) -> Check:
    existing = store.retention_policies()
    missing, wrong = [], []
    for policy in settings.retention.policies():
        duration = existing.get(policy.family.value)
        if duration is None:
            missing.append(policy.family.value)
        elif _hours(duration) != policy.days * 24:
            wrong.append(f"{policy.family.value} {duration} (want {policy.days or 'INF'}d)")
    fix = "softplace privacy apply-retention"
    if missing:
        return Check("retention", Status.FAIL, f"missing policies: {', '.join(missing)}", fix)
    if wrong:
        return Check("retention", Status.WARN, "; ".join(wrong), fix)
    return Check("retention", Status.OK, ", ".join(f"{k} {v}" for k, v in sorted(existing.items())
                                                   if k != "autogen"))


def _hours(duration: str) -> int:
    """InfluxDB's ``720h0m0s`` (``0s`` = forever) in hours."""
    return int(duration.split("h", 1)[0]) if "h" in duration else 0


def open_existing_store(settings: KernelSettings) -> Store | None:
    """The configured store if it exists; never creates one."""
    if settings.storage.backend == "influxdb":
        return InfluxStore(settings.influxdb)
    if not settings.storage.sqlite_path.exists():
        return None
    return SqliteStore(settings.storage.sqlite_path)


def check_sqlite(settings: KernelSettings) -> Check | None:
    if settings.storage.backend != "sqlite":
        return None
    path = settings.storage.sqlite_path
    if not path.exists():
        return Check("store", Status.FAIL, f"{path} does not exist",
                     "start ingest (it creates the store) or correct storage.sqlite_path")
    return Check("store", Status.OK, f"{path} ({path.stat().st_size} bytes)")


def check_silent_sensors(settings: KernelSettings, registry: Registry, stale_s: float,
                         probe: Probe) -> Check:
    try:
        store = open_existing_store(settings)
    except SoftPlaceError as err:
        return Check("sensors", Status.WARN, f"not checked: {err}", "fix the store check first")
    if store is None:
        return Check("sensors", Status.WARN, "not checked: no store", "fix the store check first")
    now = probe.clock()
    try:
        latest: dict[str, float] = {}
        for sample in store.query(SeriesName.SENSOR_HEALTH, int((now - SILENT_LOOKBACK_S) * 1000),
                                  int(now * 1000) + 1):
            seen = float(sample.fields.get(SensorHealthField.LAST_SEEN, sample.time_ms / 1000))
            device = sample.tags["device"]
            latest[device] = max(latest.get(device, seen), seen)
    except SoftPlaceError as err:
        return Check("sensors", Status.WARN, f"not checked: {err}", "fix the store check first")
    finally:
        store.close()
    devices = sorted(d for site in registry.sites for d in site.device_rooms())
    silent = [d for d in devices if now - latest.get(d, 0.0) > stale_s]
    if not devices:
        return Check("sensors", Status.WARN, "the registry lists no device",
                     "add each room's devices to the registry")
    if silent:
        shown = ", ".join(silent[:SHOWN_IDS]) + (" ..." if len(silent) > SHOWN_IDS else "")
        return Check("sensors", Status.WARN, f"{len(silent)} of {len(devices)} silent for more"
                     f" than {stale_s:g} s: {shown}", "check power and Wi-Fi of those sensors "
                     "(the dashboard's sensor health panel shows since when)")
    return Check("sensors", Status.OK, f"all {len(devices)} reported within {stale_s:g} s")


# -- local disk ------------------------------------------------------------------------------
def _existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_outbox_disk(state_dir: Path, probe: Probe) -> Check:
    free = shutil.disk_usage(_existing_parent(state_dir)).free
    detail = f"{free / (1 << 30):.1f} GiB free for {state_dir}"
    fix = "free disk space or move gateway.state_dir: the outbox grows while upstream is away"
    if free < probe.disk_fail_bytes:
        return Check("outbox disk", Status.FAIL, detail, fix)
    if free < probe.disk_warn_bytes:
        return Check("outbox disk", Status.WARN, detail, fix)
    return Check("outbox disk", Status.OK, detail)


def check_ledger(ledger: Path) -> Check:
    if ledger.exists():
        return Check("privacy ledger", Status.OK, f"{ledger} present")
    return Check("privacy ledger", Status.WARN, f"{ledger} not found",
                 "normal before the first release; otherwise restore it from backup (epsilon "
                 "already spent would be forgotten)")


# -- all of it -------------------------------------------------------------------------------
def diagnose(load: Callable[[], KernelSettings], probe: Probe | None = None,
             config_file: Path | None = None) -> list[Check]:
    probe = probe or Probe()
    config, settings = check_configuration(load)
    checks = [config]
    if settings is None:
        return checks
    registry_check, registry = check_registry(settings)
    checks.append(registry_check)
    with BrokerSession(settings, probe) as broker:
        checks.append(broker.check())
        if registry is not None:
            checks.append(broker.check_skew(registry))
    checks.extend(check_influx(settings))
    sqlite_check = check_sqlite(settings)
    if sqlite_check is not None:
        checks.append(sqlite_check)
    gateway = settings.section(GatewaySettings)
    if registry is not None:
        checks.append(check_silent_sensors(settings, registry, gateway.sensor_stale_s, probe))
    checks.append(check_outbox_disk(gateway.state_dir, probe))
    checks.append(check_ledger(settings.section(PrivacySettings).ledger_file(config_file)))
    return checks


def render(checks: list[Check]) -> Table:
    table = Table(title="softplace doctor")
    for column in ("check", "status", "detail", "fix"):
        table.add_column(column)
    for check in checks:
        table.add_row(check.name, f"[{STYLES[check.status]}]{check.status}[/]", check.detail,
                      check.fix)
    return table


@click.command("doctor")
@click.option("--listen-s", type=click.FloatRange(min=0), default=SKEW_LISTEN_S,
              show_default=True, help="how long to listen to live sensor readings for clock skew")
@pass_app
@click.pass_context
def doctor(ctx: click.Context, app: AppContext, listen_s: float) -> None:
    """Check configuration, registry, broker, InfluxDB, store, clocks, sensors, disk, ledger."""
    checks = diagnose(lambda: app.settings, Probe(skew_listen_s=listen_s), app.config)
    console.print(render(checks))
    if any(c.status is Status.FAIL for c in checks):
        ctx.exit(EXIT_FAILED)
