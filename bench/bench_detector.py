"""Detector throughput, batch and streaming, against the InfluxDB read of the same data.

    .venv/bin/python bench/bench_detector.py [--rooms 1000 --days 30 --influx-rooms 100]

Synthetic site: ``--rooms`` rooms, one reading a minute each for ``--days`` days (Mon-Fri
08:00-18:00 opening hours, Europe/Paris, meetings of random length and size). Prints:

* batch: the detector driven in 6-hour steps (what ``run_batch`` does per chunk);
* streaming: the same readings in arrival order with the watermark trailing by the
  reorder window and advanced every simulated minute (what the service does, at most);
* influxd read: the same rooms' points written to a private influxd (devkit/services.py),
  then read back with ``InfluxStore.query`` in the batch's 6-hour chunks. Reading
  ``--influx-rooms`` rooms (all by default when small) keeps the run to minutes; the
  figure is readings per second, so it compares directly.

Readings per second and the ratios are printed; the detector must not be the bottleneck
of a batch recompute (the store read is the ceiling).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from detector.core import SiteDetector
from detector.settings import DetectorSettings
from softplace.registry import Registry
from softplace.schema import RoomCountField, SeriesName
from softplace.storage.base import Sample
from softplace.timeutil import MS_PER_H, datetime_to_ms, s_to_ms

MIN = 60_000
CHUNK = 6 * MS_PER_H  # the detector's default batch_chunk_h
console = Console()


def make_site_registry(rooms: int) -> Registry:
    hours = ["08:00-18:00"]
    return Registry.model_validate({
        "sites": [{
            "id": "bench", "district": "d", "timezone": "Europe/Paris",
            "opening_hours": dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), hours),
            "buildings": [{
                "id": f"b{b}",
                "floors": [{
                    "id": f"f{f}",
                    "rooms": [
                        {"id": f"r{b}-{f}-{r}", "kind": "meeting", "area_m2": 20,
                         "capacity": 8, "devices": [f"d{b}-{f}-{r}"]}
                        for r in range(10)
                        if (b * 10 + f) * 10 + r < rooms
                    ],
                } for f in range(10) if (b * 10 + f) * 10 < rooms],
            } for b in range((rooms + 99) // 100)],
        }],
    })


def minute_counts(rooms: list[str], start_ms: int, days: int, seed: int = 7) -> Iterator[
    tuple[int, list[tuple[str, int]]]
]:
    """Per minute, each room's count: meetings start with 3 % chance, last 15-90 min."""
    rng = random.Random(seed)
    busy_until = dict.fromkeys(rooms, 0)
    count = dict.fromkeys(rooms, 0)
    for minute in range(days * 24 * 60):
        ts = start_ms + minute * MIN
        hour = (minute // 60) % 24
        row = []
        for room in rooms:
            if ts >= busy_until[room]:
                count[room] = 0
                if 7 <= hour < 19 and rng.random() < 0.03:
                    busy_until[room] = ts + rng.randint(15, 90) * MIN
                    count[room] = rng.randint(1, 8)
            row.append((room, count[room]))
        yield ts, row


def bench_detector(registry: Registry, start_ms: int, days: int, streaming: bool) -> tuple[
    int, float
]:
    site = registry.sites[0]
    settings = DetectorSettings()
    rooms = [p.room.id for p in site.placed_rooms()]
    detector = SiteDetector(site, settings, start_ms)
    window = s_to_ms(settings.reorder_window_s)
    readings = 0
    elapsed = 0.0
    next_chunk = start_ms + CHUNK
    label = "streaming" if streaming else "batch"
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"detector {label}", total=days * 24 * 60)
        for ts, row in minute_counts(rooms, start_ms, days):
            began = time.perf_counter()
            push = detector.push_reading
            for room, count in row:
                push(room, ts, count)
            readings += len(row)
            if streaming:
                detector.advance(ts - window)
                detector.drain()
            elif ts + MIN >= next_chunk:
                detector.advance(next_chunk)
                detector.drain()
                next_chunk += CHUNK
            elapsed += time.perf_counter() - began
            progress.advance(task)
        began = time.perf_counter()
        detector.advance(start_ms + days * 24 * 60 * MIN + MS_PER_H)
        detector.drain()
        elapsed += time.perf_counter() - began
    return readings, elapsed


def bench_influx(registry: Registry, start_ms: int, days: int, rooms: int) -> tuple[
    int, float, float
]:
    from devkit.services import Influxd
    from softplace.settings import RetentionSettings
    from softplace.storage.influx import InfluxStore

    site = registry.sites[0]
    placed = list(site.placed_rooms())[:rooms]
    tags = {p.room.id: p.tags for p in placed}
    with tempfile.TemporaryDirectory(prefix="bench-influxd-") as workdir:
        server = Influxd(Path(workdir))
        server.start()
        try:
            store = InfluxStore(server.settings_for("bench"))
            store.apply_retention(RetentionSettings(raw_days=days + 30).policies())
            written = 0
            began = time.perf_counter()
            batch: list[Sample] = []
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("writing to influxd", total=days * 24 * 60)
                for ts, row in minute_counts(list(tags), start_ms, days):
                    batch.extend(
                        Sample(SeriesName.ROOM_COUNT, tags[room],
                               {RoomCountField.COUNT: c, RoomCountField.SOURCES: 1}, ts)
                        for room, c in row
                    )
                    if len(batch) >= 20_000:
                        store.write(batch)
                        written += len(batch)
                        batch = []
                    progress.advance(task)
                if batch:
                    store.write(batch)
                    written += len(batch)
            write_s = time.perf_counter() - began
            read = 0
            began = time.perf_counter()
            end_ms = start_ms + days * 24 * 60 * MIN
            lo = start_ms
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("reading from influxd", total=end_ms - start_ms)
                while lo < end_ms:
                    for name in (SeriesName.ROOM_COUNT, SeriesName.SENSOR_HEALTH):
                        read += len(store.query(name, lo, lo + CHUNK, {"site": site.id}))
                    lo += CHUNK
                    progress.update(task, completed=lo - start_ms)
            read_s = time.perf_counter() - began
            store.close()
        finally:
            server.stop()
    if read != written:
        console.print(f"[red]read {read} points, wrote {written}[/]")
    return read, read_s, write_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--influx-rooms", type=int, default=None,
                        help="rooms written to and read from influxd (default: all)")
    parser.add_argument("--skip-influx", action="store_true")
    args = parser.parse_args()
    registry = make_site_registry(args.rooms)
    tz = registry.sites[0].tz
    start_ms = datetime_to_ms(dt.datetime.combine(
        dt.datetime.now(tz).date() - dt.timedelta(days=args.days + 1), dt.time(), tz
    ))
    console.print(f"{args.rooms} rooms x {args.days} days of one-minute readings "
                  f"= {args.rooms * args.days * 1440:,} readings")
    rows = []
    n, batch_s = bench_detector(registry, start_ms, args.days, streaming=False)
    rows.append(("detector batch (6 h steps)", n, batch_s))
    n, stream_s = bench_detector(registry, start_ms, args.days, streaming=True)
    rows.append(("detector streaming (1 min steps)", n, stream_s))
    if not args.skip_influx:
        influx_rooms = min(args.influx_rooms or args.rooms, args.rooms)
        read, read_s, write_s = bench_influx(registry, start_ms, args.days, influx_rooms)
        rows.append((f"influxd write ({influx_rooms} rooms)", read, write_s))
        rows.append((f"influxd read, InfluxStore.query ({influx_rooms} rooms)", read, read_s))
    table = Table(title="Detector throughput")
    for column in ("what", "readings", "seconds", "readings/s", "vs influxd read"):
        table.add_column(column, justify="left" if column == "what" else "right")
    read_rate = rows[-1][1] / rows[-1][2] if not args.skip_influx else None
    for what, count, seconds in rows:
        rate = count / seconds if seconds else float("inf")
        ratio = f"{rate / read_rate:.1f}x" if read_rate else "-"
        table.add_row(what, f"{count:,}", f"{seconds:.1f}", f"{rate:,.0f}", ratio)
    console.print(table)


if __name__ == "__main__":
    main()
