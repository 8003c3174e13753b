"""``softplace demo``: the whole chain on embedded defaults, no service installed.

An embedded broker (unless one is given), the sample registry, one virtual sensor per
registered device playing a working week at accelerated time, one gateway per site,
ingest into SQLite, then what landed per room and the detector's report.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from detector.batch import run_batch
from devkit.embedded_broker import EmbeddedBroker, free_port
from devkit.simulation import RoomSchedule, split_count
from devkit.virtual_sensor import VirtualSensor, firmware_config
from gateway.service import Gateway
from gateway.settings import GatewaySettings
from ingest.service import Ingest
from ingest.settings import IngestSettings
from softplace.errors import SoftPlaceError
from softplace.registry import Registry
from softplace.schema import SeriesName
from softplace.settings import MqttSettings
from softplace.storage.base import DEFAULT_SQLITE_PATH
from softplace.storage.sqlite import SqliteStore
from softplace.timeutil import datetime_to_ms, s_to_ms


@dataclass(slots=True)
class DemoResult:
    start: dt.datetime
    end: dt.datetime
    published: int = 0
    accepted: int = 0
    rejected: int = 0
    written: int = 0
    per_room: dict[tuple[str, str], int] = field(default_factory=dict)


BAD_PAYLOAD = b'{"v": 1, "device": "lyon-office-1", "count": "three"}'
DEMO_MARK_SUFFIX = ".demo"  # beside a store the demo created: the next run may replace it
OVERWRITE_FLAG = "--overwrite"
_SQLITE_SIDECARS = ("", "-wal", "-shm", "-journal")


class DemoStoreError(SoftPlaceError):
    """The demo's target holds data it did not create; nothing was touched."""


def demo_mark(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + DEMO_MARK_SUFFIX)


def claim_store(store_path: Path, *, overwrite: bool) -> None:
    """Make ``store_path`` the demo's: refuse a store the demo did not create (unless
    ``overwrite``), then remove exactly that store's files (never a neighbour sharing its
    name's prefix, like a ``.backup``), and mark it as the demo's."""
    if store_path.exists() and not demo_mark(store_path).exists() and not overwrite:
        raise DemoStoreError(
            f"{store_path} holds data the demo did not create; pass {OVERWRITE_FLAG} to "
            "replace it, or point storage.sqlite_path at another file"
        )
    if store_path == DEFAULT_SQLITE_PATH:
        store_path.parent.mkdir(parents=True, exist_ok=True)
    if not store_path.parent.is_dir():
        raise DemoStoreError(f"{store_path}: directory {store_path.parent} does not exist")
    for suffix in _SQLITE_SIDECARS:
        Path(f"{store_path}{suffix}").unlink(missing_ok=True)
    demo_mark(store_path).write_text(
        "written by softplace demo: the next demo run replaces this store\n", encoding="utf-8"
    )


def run_demo(
    registry: Registry,
    store_path: Path,
    console: Console,
    *,
    days: int = 7,
    step_s: int = 300,
    heartbeat_s: int = 900,
    broker: MqttSettings | None = None,
    end: dt.datetime | None = None,
    overwrite: bool = False,
) -> DemoResult:
    """Play ``days`` of the registry's rooms through broker, gateway and ingest.

    DemoStoreError, before anything runs, when ``store_path`` holds a store the demo did
    not create and ``overwrite`` is not given."""
    end = (end or dt.datetime.now(dt.UTC)).replace(second=0, microsecond=0)
    start = end - dt.timedelta(days=days)
    result = DemoResult(start, end)
    claim_store(store_path, overwrite=overwrite)
    state_dir = store_path.parent / "demo-gateway"
    state_dir.mkdir(parents=True, exist_ok=True)
    # a fresh run: virtual sensors start again at boot 1, seq 0, which the gateway's
    # persisted dedupe keys would otherwise take for duplicates (this directory is the
    # demo's own)
    for stale in state_dir.glob("*.sqlite*"):
        stale.unlink(missing_ok=True)
    embedded = None
    # rejected input is summed up at the end; the demo's screen is for its progress bars
    logging.getLogger("gateway").setLevel(logging.ERROR)
    if broker is None:
        embedded = EmbeddedBroker(free_port()).start()
        broker = embedded.settings
    store = SqliteStore(store_path)
    max_age_s = (dt.datetime.now(dt.UTC) - start).total_seconds() + 86_400
    gateways = [
        # the played week reaches back further than a live sensor's buffer would
        Gateway(site, broker, GatewaySettings(site=site.id, state_dir=state_dir,
                                              max_age_s=max_age_s))
        for site in registry.sites
    ]
    ingest = Ingest(registry, store, broker,
                    IngestSettings(shared_group=None, client_id="softplace-demo-ingest"))
    sensors: dict[str, VirtualSensor] = {}
    try:
        for gateway in gateways:
            gateway.start()
        ingest.start()
        config = firmware_config(site="demo", heartbeat_s=heartbeat_s, hold_s=60)
        schedules = []
        for placed in registry.placed_rooms():
            devices = [
                VirtualSensor(placed.site.id, device, broker,
                              config={**config, "site": placed.site.id},
                              battery_pct=90.0 - 3 * i, rssi_dbm=-55 - 4 * i)
                for i, device in enumerate(placed.room.devices)
            ]
            for sensor in devices:
                sensor.connect(now_ts=start.timestamp())
                result.published += 1  # its retained "online" status
                sensors[sensor.device] = sensor
            if devices:
                schedules.append((RoomSchedule(placed), devices))
        time.sleep(0.5)  # let the gateways see the retained statuses first
        _play(result, schedules, start, end, step_s, console)
        next(iter(sensors.values())).publish_raw(BAD_PAYLOAD)
        result.published += 1
        _wait_until_landed(result, gateways, ingest, console)
    finally:
        with contextlib.ExitStack() as cleanup:  # every step runs even if one fails
            if embedded is not None:
                cleanup.callback(embedded.stop)
            for gateway in gateways:
                cleanup.callback(gateway.stop)
            cleanup.callback(ingest.stop)
            for sensor in sensors.values():
                cleanup.callback(sensor.close)
    for sample in store.query(SeriesName.ROOM_COUNT, datetime_to_ms(start) - 1,
                              datetime_to_ms(end) + 1):
        key = (sample.tags["site"], sample.tags["room"])
        result.per_room[key] = result.per_room.get(key, 0) + 1
    for site in registry.sites:
        first, last = full_days(result, site.tz)
        run_batch(store, registry, site.id, first, last + dt.timedelta(days=1))
    store.close()
    return result


def full_days(result: DemoResult, tz: dt.tzinfo) -> tuple[dt.date, dt.date]:
    """The first and last local days the demo covered from midnight to midnight."""
    first = result.start.astimezone(tz).date() + dt.timedelta(days=1)
    last = result.end.astimezone(tz).date() - dt.timedelta(days=1)
    return first, max(first, last)


def _play(
    result: DemoResult,
    schedules: list[tuple[RoomSchedule, list[VirtualSensor]]],
    start: dt.datetime,
    end: dt.datetime,
    step_s: int,
    console: Console,
) -> None:
    steps = int((end - start).total_seconds() // step_s)
    with _progress(console) as progress:
        task = progress.add_task("virtual sensors play the week", total=steps)
        for step in range(steps + 1):
            when = start + dt.timedelta(seconds=step * step_s)
            for schedule, devices in schedules:
                count = schedule.count_at(when)
                shares = split_count(count, len(devices), schedule.placed.room.combine)
                for sensor, share in zip(devices, shares, strict=True):
                    sent = sensor.observe(s_to_ms(step * step_s), when.timestamp(), share)
                    result.published += len(sent)
            progress.update(task, completed=step,
                            description=f"virtual sensors play {when:%a %d %b %H:%M} UTC")


def _wait_until_landed(
    result: DemoResult, gateways: list[Gateway], ingest: Ingest, console: Console,
    timeout_s: float = 600,
) -> None:
    deadline = time.monotonic() + timeout_s
    with _progress(console) as progress:
        task = progress.add_task("gateway -> ingest -> SQLite", total=result.published)
        while time.monotonic() < deadline:
            handled = sum(g.counts.accepted + g.counts.dead_lettered for g in gateways)
            progress.update(task, completed=handled)
            # a gateway deletes an outbox row only once ingest acknowledged it stored
            if handled >= result.published and all(g.outbox.size() == 0 for g in gateways):
                break
            time.sleep(0.2)
        else:
            console.print("[yellow]timed out waiting for every reading to land[/]")
    result.accepted = sum(g.counts.accepted for g in gateways)
    result.rejected = sum(g.counts.dead_lettered for g in gateways)
    result.written = ingest.points


def _progress(console: Console) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console, transient=False)


def landed_table(registry: Registry, result: DemoResult) -> Table:
    table = Table(title=f"What landed, {result.start:%d %b} to {result.end:%d %b %Y} (UTC)")
    for column in ("site", "room", "kind", "m²", "seats", "sensors", "room readings"):
        table.add_column(column, justify="right" if column in {"m²", "seats", "sensors",
                                                                "room readings"} else "left")
    for placed in registry.placed_rooms():
        key = (placed.site.id, placed.room.id)
        table.add_row(placed.site.id, placed.room.id, placed.room.kind.value,
                      f"{placed.room.area_m2:g}", str(placed.room.capacity),
                      str(len(placed.room.devices)), str(result.per_room.get(key, 0)))
    return table
