"""Detector throughput, batch and streaming, and the read + analysis of a month from influxd.

    .venv/bin/python bench/bench_detector.py [--rooms 1000 --days 30 --dense-influx-rooms 100]

Synthetic site: ``--rooms`` rooms, a count a minute each for ``--days`` days (meetings of
random length and size between 07:00 and 19:00, Europe/Paris). Each room's minute counts
are stored two ways:

* dense: one point a minute, what a store holding every reading would have;
* change-only: a point when the count changes and at least once per ``HEARTBEAT_MIN``
  (what ingest stores), the same sample-and-hold series with far fewer points.

Figures are in CPU time of this process (``time.process_time``), so they hold under load,
and in "readings represented": a change-only point stands for the minutes it holds, so
both layouts count the same ``rooms x days x 1440`` readings. Printed:

* batch: ``run_chunks`` (what ``run_batch`` runs) over an in-memory ``room_counts`` in the
  default 6-hour chunks, dense and change-only;
* streaming: the same loop stepped every simulated minute with the watermark trailing by
  the reorder window (what the service does, at most), dense and change-only;
* influxd: the change-only points of every room written to a private influxd
  (devkit/services.py), told to snapshot its cache and compact soon after writes stop
  (what a month of data in production long is). The narrow read once right after the
  write, then, with influxd idle (its CPU polled until it stops moving), everything
  else in that steady state: ``run_site_batch`` over the whole range reading the raw
  points through ``InfluxStore.room_counts`` (read and analysed, wall and CPU seconds of
  both processes); the 6-h spans packed into ``room_count_segment`` (what the detector
  does as it passes each span); ``run_site_batch`` again, now reading the packed spans
  (those not marked dirty); the bare reads; the narrow query in JSON, CSV and msgpack;
  the same rooms as a city of sites (a building each) read from packed spans and
  analysed ``--workers`` sites at a time (``run_sites_parallel``, what ``softplace
  detect --workers`` runs; CPU of this process and its workers); the dense layout for
  ``--dense-influx-rooms`` rooms.

The targets (issue 11) are printed as ratios: batch >= 5 M readings/s, streaming >=
200 k readings/s, the month read from influxd and analysed in < 10 s (wall, and CPU of
both processes).
"""

from __future__ import annotations

import argparse
import bisect
import csv
import dataclasses
import datetime as dt
import functools
import io
import itertools
import json
import math
import os
import random
import resource
import tempfile
import time
from array import array
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
from rich.console import Console
from rich.table import Table

from detector.batch import run_site_batch, run_sites_parallel
from detector.chunks import chunk_ms, detector_from, run_chunks, warmup_ms
from detector.settings import DetectorSettings
from devkit.services import Influxd
from softplace.registry import Registry, Site
from softplace.schema import RoomCountField, SeriesName
from softplace.settings import RetentionSettings
from softplace.storage.base import CountColumns, Sample, Store
from softplace.storage.influx import InfluxStore
from softplace.storage.segments import SPAN_MS
from softplace.timeutil import datetime_to_ms, s_to_ms

MIN = 60_000
MIN_PER_DAY = 24 * 60
HEARTBEAT_MIN = 14  # change-only storage: a point at least this often: the detector's 15-min
# heartbeat less one reading interval, so a stored series never goes stale between points
MEETING_START_P = 0.03  # chance a free room's meeting starts in a given minute
OPEN_HOURS = (7, 19)
WRITE_BATCH = 50_000
BATCH_TARGET = 5_000_000
STREAM_TARGET = 200_000
INFLUX_TARGET_S = 10.0
# influxd's defaults keep a shard's writes in its cache for 10 min, then compact in the
# background for minutes more: a month of data in production is long past both
STEADY_CONFIG = ('  cache-snapshot-write-cold-duration = "10s"\n'
                 '  compact-full-write-cold-duration = "30s"\n')
IDLE_MIN_S = 40.0  # the cold snapshot and the full compaction are due by then
IDLE_MAX_S = 300.0
IDLE_CPU_S = 0.03  # influxd's CPU in one poll second below which it counts as idle
IDLE_POLLS = 5
ANALYSED = "read + detector batch"  # the rows the 10-s target applies to
console = Console(width=150)


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


def make_city_registry(rooms: int) -> Registry:
    """The same rooms as ``make_site_registry``, each building a site of its own (a city's
    branches and libraries): what ``softplace detect --workers`` spreads over processes."""
    (site,) = make_site_registry(rooms).model_dump(mode="json")["sites"]
    return Registry.model_validate({"sites": [
        {**site, "id": f"bench-{building['id']}", "buildings": [building]}
        for building in site["buildings"]]})


# -- data -----------------------------------------------------------------------------------
def minute_counts(rng: random.Random, minutes: int) -> array[int]:
    """One room's count for each minute: meetings of 15-90 min and 1-8 people start with
    MEETING_START_P a free minute within OPEN_HOURS (a geometric gap, so no draw a minute)."""
    dense = array("q", bytes(8 * minutes))  # int64 like a store's answer: slices, no copies
    log_free = math.log(1 - MEETING_START_P)
    first, last = (h * 60 for h in OPEN_HOURS)
    minute = 0
    while minute < minutes:
        minute += int(math.log(1 - rng.random()) / log_free)
        if minute >= minutes:
            break
        of_day = minute % MIN_PER_DAY
        if not first <= of_day < last:  # memoryless: jump to the next opening, draw again
            minute += (first - of_day) % MIN_PER_DAY
            continue
        length = min(rng.randint(15, 90), minutes - minute)
        dense[minute:minute + length] = array("q", [rng.randint(1, 8)]) * length
        minute += length
    return dense


def change_only(dense: array[int], start_ms: int) -> CountColumns:
    """The points ingest stores for these minute counts: each change, and a repeat when
    HEARTBEAT_MIN passed since the room's last stored point."""
    columns = CountColumns()
    minute = 0
    for count, run in itertools.groupby(dense):
        length = len(list(run))
        for at in range(minute, minute + length, HEARTBEAT_MIN):
            columns.times_ms.append(start_ms + at * MIN)
            columns.counts.append(count)
        minute += length
    return columns


@dataclass(frozen=True, slots=True)
class SiteData:
    """Every room's minute counts (dense) and its change-only points."""

    start_ms: int
    minutes: int
    dense: dict[str, array[int]]
    sparse: dict[str, CountColumns]

    @property
    def readings(self) -> int:
        return self.minutes * len(self.dense)

    @property
    def points(self) -> int:
        return sum(len(c) for c in self.sparse.values())


def site_data(site: Site, start_ms: int, days: int, seed: int = 7) -> SiteData:
    rng = random.Random(seed)
    minutes = days * MIN_PER_DAY
    dense = {p.room.id: minute_counts(rng, minutes) for p in site.placed_rooms()}
    sparse = {room: change_only(counts, start_ms) for room, counts in dense.items()}
    return SiteData(start_ms, minutes, dense, sparse)


class MemoryCounts:
    """``Store.room_counts`` (and an empty ``sensor_health``) over SiteData, for timing
    the detector alone: a read here costs a slice, not a round trip."""

    def __init__(self, data: SiteData, dense: bool) -> None:
        self.data = data
        self.dense = dense

    def room_counts(self, site: str, start_ms: int, end_ms: int) -> dict[str, CountColumns]:
        data = self.data
        found: dict[str, CountColumns] = {}
        if self.dense:
            lo = max(0, -((data.start_ms - start_ms) // MIN))  # first minute >= start
            hi = min(data.minutes, max(0, -((data.start_ms - end_ms) // MIN)))
            if hi <= lo:
                return found
            times = array("q", range(data.start_ms + lo * MIN, data.start_ms + hi * MIN, MIN))
            for room, counts in data.dense.items():
                found[room] = CountColumns(times, counts[lo:hi])
            return found
        for room, columns in data.sparse.items():
            lo = bisect.bisect_left(columns.times_ms, start_ms)
            hi = bisect.bisect_left(columns.times_ms, end_ms, lo)
            if hi > lo:
                found[room] = CountColumns(columns.times_ms[lo:hi], columns.counts[lo:hi])
        return found

    def query(self, series_name: str, start_ms: int, end_ms: int,
              tags: Mapping[str, str] | None = None) -> list[Sample]:
        return []  # no sensor_health: every sensor online


# -- detector alone ---------------------------------------------------------------------------
def bench_batch(site: Site, data: SiteData, dense: bool) -> float:
    """CPU seconds of the batch's chunk loop over the whole range."""
    settings = DetectorSettings()
    store = cast(Store, MemoryCounts(data, dense))
    detector = detector_from(site, settings, data.start_ms)
    end = data.start_ms + data.minutes * MIN + s_to_ms(settings.hold_s)
    began = time.process_time()
    run_chunks(store, detector, end, chunk_ms=chunk_ms(settings))
    return time.process_time() - began


def bench_streaming(site: Site, data: SiteData, dense: bool) -> float:
    """CPU seconds of the chunk loop stepped every simulated minute, trailing by the
    reorder window, as the service polls."""
    settings = DetectorSettings()
    store = cast(Store, MemoryCounts(data, dense))
    detector = detector_from(site, settings, data.start_ms)
    window = s_to_ms(settings.reorder_window_s)
    step = chunk_ms(settings)
    began = time.process_time()
    for minute in range(1, data.minutes + 1):
        run_chunks(store, detector, data.start_ms + minute * MIN - window, chunk_ms=step)
    return time.process_time() - began


# -- influxd ----------------------------------------------------------------------------------
def line_protocol(site: Site, columns: Mapping[str, CountColumns]) -> Iterator[str]:
    tags = {p.room.id: ",".join(f"{k}={v}" for k, v in sorted(p.tags.items()))
            for p in site.placed_rooms()}
    for room, points in columns.items():
        prefix = f"{SeriesName.ROOM_COUNT},{tags[room]} "
        for ts, count in zip(points.times_ms, points.counts, strict=True):
            yield f"{prefix}{RoomCountField.COUNT}={count}i,{RoomCountField.SOURCES}=1i {ts}"


def write_points(server: Influxd, database: str, lines: Iterator[str]) -> int:
    written = 0
    params = {"db": database, "rp": "raw", "precision": "ms"}
    with httpx.Client(base_url=server.url, timeout=120) as http:
        while batch := list(itertools.islice(lines, WRITE_BATCH)):
            response = http.post("/write", params=params, content="\n".join(batch).encode())
            if response.status_code != 204:
                raise RuntimeError(f"/write answered {response.status_code}: {response.text}")
            written += len(batch)
    return written


def days_kept(data: SiteData) -> int:
    """Raw retention long enough to keep every generated day (it starts days back)."""
    return data.minutes // MIN_PER_DAY + 30


def dense_columns(data: SiteData, rooms: int) -> dict[str, CountColumns]:
    times = array("q", range(data.start_ms, data.start_ms + data.minutes * MIN, MIN))
    return {room: CountColumns(times, counts)
            for room, counts in itertools.islice(data.dense.items(), rooms)}


@dataclass(frozen=True, slots=True)
class Timed:
    points: int
    wall_s: float
    cpu_s: float
    server_cpu_s: float | None = None  # influxd's, from /proc, when it took part


def process_cpu_s(pid: int) -> float:
    """utime + stime of a process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(server: Influxd) -> float:
    """Seconds until influxd's own CPU stops moving (snapshots and compactions done)."""
    began = time.monotonic()
    quiet, before = 0, process_cpu_s(server.pid)
    while time.monotonic() - began < IDLE_MAX_S:
        time.sleep(1.0)
        now = process_cpu_s(server.pid)
        quiet = quiet + 1 if now - before < IDLE_CPU_S else 0
        before = now
        if quiet >= IDLE_POLLS and time.monotonic() - began >= IDLE_MIN_S:
            break
    return time.monotonic() - began


def timed(action: Callable[[], int], server: Influxd | None = None) -> Timed:
    before = process_cpu_s(server.pid) if server is not None else 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    points = action()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    server_cpu = process_cpu_s(server.pid) - before if server is not None else None
    return Timed(points, wall, cpu, server_cpu)


def read_all(store: InfluxStore, site: str, start_ms: int, end_ms: int) -> int:
    """The narrow read alone, in the batch's 6-hour chunks (on multiples of 6 h, as
    ``run_site_batch`` reads)."""
    step = chunk_ms(DetectorSettings())
    points = 0
    lo = start_ms
    while lo < end_ms:
        hi = min(lo - lo % step + step, end_ms)
        points += sum(len(c) for c in store.room_counts(site, lo, hi).values())
        lo = hi
    return points


def narrow_format(server: Influxd, database: str, site: str, start_ms: int, end_ms: int,
                  accept: str) -> tuple[int, int]:
    """The same narrow query answered as ``accept``, decoded into columns: points, bytes."""
    query = (f'SELECT "count" FROM "{database}"."raw"."room_count" WHERE "site" = \'{site}\''
             f' AND time >= {start_ms}ms AND time < {end_ms}ms GROUP BY "room"')
    params = {"db": database, "q": query, "epoch": "ms", "chunked": "true",
              "chunk_size": "100000"}
    points = size = 0
    step = chunk_ms(DetectorSettings())
    with httpx.Client(base_url=server.url, timeout=120,
                      headers={"Accept": accept}) as http:
        for lo in range(start_ms, end_ms, step):
            params["q"] = query.replace(f"{start_ms}ms AND", f"{lo}ms AND").replace(
                f"< {end_ms}ms", f"< {min(lo + step, end_ms)}ms")
            body = http.get("/query", params=params).content
            size += len(body)
            points += _decode(body, accept)
    return points, size


def _decode(body: bytes, accept: str) -> int:
    found: dict[str, CountColumns] = {}
    if accept == "application/csv":
        rows = csv.reader(io.StringIO(body.decode()))
        next(rows, None)
        for name, tags, ts, count in rows:  # name,tags,time,count; tags "room=r1"
            if name == "name":
                continue
            columns = found.setdefault(tags, CountColumns())
            columns.times_ms.append(int(ts))
            columns.counts.append(int(count))
    elif accept == "application/x-msgpack":
        import msgpack  # type: ignore[import-not-found,import-untyped,unused-ignore]

        for chunk in msgpack.Unpacker(io.BytesIO(body), raw=False):
            _add_rows(found, chunk)
    else:
        for line in body.splitlines():
            if line.strip():
                _add_rows(found, json.loads(line))
    return sum(len(c) for c in found.values())


def _add_rows(found: dict[str, CountColumns], chunk: dict[str, Any]) -> None:
    for result in chunk.get("results", []):
        for block in result.get("series", []):
            flat = array("q", itertools.chain.from_iterable(block.get("values") or []))
            columns = found.setdefault(block["tags"]["room"], CountColumns())
            columns.times_ms.extend(flat[0::2])
            columns.counts.extend(flat[1::2])


def add(rows: list[tuple[str, int, Timed]], what: str, readings: int, result: Timed) -> None:
    """Keep a figure and print it at once: a long run stopped later keeps what it measured."""
    rows.append((what, readings, result))
    console.print(f"  {what}: {result.points:,} points, {result.wall_s:.2f} s wall, "
                  f"{result.cpu_s:.2f} s CPU, influxd {result.server_cpu_s or 0:.2f} s CPU")


def children_cpu_s() -> float:
    """CPU of this process's children that ended (a process pool's workers, once shut)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def bench_city(server: Influxd, data: SiteData, settings: DetectorSettings,
               workers: int) -> list[tuple[str, int, Timed]]:
    """The same rooms and counts as a city of sites (one a building), packed, then read and
    analysed ``workers`` sites at a time (``run_sites_parallel``, as ``softplace detect
    --workers``): wall, and the CPU of this process and its workers."""
    city = make_city_registry(len(data.sparse))
    store = InfluxStore(server.settings_for("city"))
    store.apply_retention(RetentionSettings(raw_days=days_kept(data)).policies())
    end_ms = data.start_ms + data.minutes * MIN
    for site in city.sites:
        rooms = {p.room.id for p in site.placed_rooms()}
        write_points(server, "city", line_protocol(
            site, {room: columns for room, columns in data.sparse.items() if room in rooms}))
    wait_idle(server)
    for site in city.sites:
        lo = (data.start_ms - warmup_ms(settings, site)) // SPAN_MS * SPAN_MS
        hi = -(-(end_ms + s_to_ms(settings.hold_s)) // SPAN_MS) * SPAN_MS
        store.pack_room_counts(site.id, lo, hi)
    store.close()
    console.print(f"  city of {len(city.sites)} sites written and packed; influxd idle after "
                  f"{wait_idle(server):.0f} s")
    opener = functools.partial(InfluxStore, server.settings_for("city"))

    def analyse() -> int:
        return sum(found["readings"] for found in run_sites_parallel(
            opener, city.sites, data.start_ms, end_ms, workers=workers, settings=settings,
            write=False))
    children = children_cpu_s()
    result = timed(analyse, server)
    result = dataclasses.replace(result, cpu_s=result.cpu_s + children_cpu_s() - children)
    rows: list[tuple[str, int, Timed]] = []
    add(rows, f"influxd {ANALYSED}, packed spans, {len(city.sites)} sites, {workers} at a time",
        data.readings, result)
    return rows


def bench_influx(site: Site, data: SiteData, dense_rooms: int,
                 workers: int) -> list[tuple[str, int, Timed]]:
    """(what, readings represented, timing) rows for the influxd figures."""
    rows: list[tuple[str, int, Timed]] = []
    end_ms = data.start_ms + data.minutes * MIN
    settings = DetectorSettings()
    with tempfile.TemporaryDirectory(prefix="bench-influxd-") as workdir:
        server = Influxd(Path(workdir))
        server.config.write_text(server.config.read_text().replace(
            "[data]\n", "[data]\n" + STEADY_CONFIG))
        server.start()
        try:
            store = InfluxStore(server.settings_for("bench"))
            store.apply_retention(RetentionSettings(raw_days=days_kept(data)).policies())
            console.print(f"writing {data.points:,} change-only points to influxd")
            wrote = timed(lambda: write_points(server, "bench", line_protocol(site, data.sparse)),
                          server)
            add(rows, "influxd write, change-only (line protocol)", data.readings, wrote)
            store.count_segments = False
            add(rows, "influxd room_counts read only, raw points, right after the write",
                data.readings,
                timed(lambda: read_all(store, site.id, data.start_ms, end_ms), server))
            console.print(f"  influxd idle after {wait_idle(server):.0f} s; "
                          "all that follows is measured in that steady state")

            def analyse() -> int:
                return run_site_batch(store, site, data.start_ms, end_ms, settings=settings,
                                      write=False).readings
            add(rows, f"influxd {ANALYSED}, raw points", data.readings, timed(analyse, server))
            add(rows, "influxd room_counts read only, raw points", data.readings,
                timed(lambda: read_all(store, site.id, data.start_ms, end_ms), server))
            # what the detector packs as it passes each hour, here all at once
            lo = (data.start_ms - warmup_ms(settings, site)) // SPAN_MS * SPAN_MS
            hi = -(-(end_ms + s_to_ms(settings.hold_s)) // SPAN_MS) * SPAN_MS
            add(rows, "pack 6-h spans into room_count_segment", data.readings,
                timed(lambda: store.pack_room_counts(site.id, lo, hi), server))
            console.print(f"  influxd idle after {wait_idle(server):.0f} s")
            store.count_segments = True
            add(rows, f"influxd {ANALYSED}, packed spans", data.readings,
                timed(analyse, server))
            add(rows, "influxd room_counts read only, packed spans", data.readings,
                timed(lambda: read_all(store, site.id, data.start_ms, end_ms), server))
            for label, accept in (("JSON", "application/json"), ("CSV", "application/csv"),
                                  ("msgpack", "application/x-msgpack")):
                sizes: list[int] = []

                def read(accept: str = accept, sizes: list[int] = sizes) -> int:
                    points, size = narrow_format(server, "bench", site.id, data.start_ms,
                                                 end_ms, accept)
                    sizes.append(size)
                    return points
                result = timed(read, server)
                add(rows, f"narrow read of raw points as {label}, {sizes[0] / 1e6:.1f} MB",
                    data.readings, result)
            store.close()
            rows.extend(bench_city(server, data, settings, workers))
            if dense_rooms:
                dense_store = InfluxStore(server.settings_for("dense"))
                dense_store.count_segments = False
                dense_store.apply_retention(RetentionSettings(raw_days=days_kept(data)).policies())
                columns = dense_columns(data, dense_rooms)
                readings = dense_rooms * data.minutes
                console.print(f"writing {readings:,} dense points to influxd")
                add(rows, f"influxd write, dense, {dense_rooms} rooms", readings,
                    timed(lambda: write_points(server, "dense", line_protocol(site, columns)),
                          server))
                wait_idle(server)
                add(rows, f"influxd room_counts read only, dense, {dense_rooms} rooms",
                    readings, timed(lambda: read_all(dense_store, site.id, data.start_ms,
                                                     end_ms), server))
                dense_store.close()
        finally:
            server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--rooms", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--stream-days", type=int, default=None,
                        help="days of the streaming runs (default: --days)")
    parser.add_argument("--dense-influx-rooms", type=int, default=100,
                        help="rooms whose dense series is also written to and read from influxd")
    parser.add_argument("--skip-influx", action="store_true")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="processes of the city run (softplace detect --workers)")
    args = parser.parse_args()
    registry = make_site_registry(args.rooms)
    site = registry.sites[0]
    start_ms = datetime_to_ms(dt.datetime.combine(
        dt.datetime.now(site.tz).date() - dt.timedelta(days=args.days + 1), dt.time(), site.tz
    ))
    data = site_data(site, start_ms, args.days)
    console.print(f"{args.rooms} rooms x {args.days} days of one-minute counts = "
                  f"{data.readings:,} readings; change-only with a {HEARTBEAT_MIN}-minute "
                  f"heartbeat: {data.points:,} points ({data.readings / data.points:.1f}x fewer)")
    stream_days = min(args.stream_days or args.days, args.days)
    stream_data = site_data(site, start_ms, stream_days) if stream_days != args.days else data
    rows: list[tuple[str, int, Timed, float | None]] = []
    for dense in (True, False):
        layout = "dense" if dense else "change-only"
        for what, source, bench, goal in (
            ("batch (6 h chunks)", data, bench_batch, BATCH_TARGET),
            (f"streaming (1 min steps, {stream_days} d)", stream_data, bench_streaming,
             STREAM_TARGET),
        ):
            console.print(f"detector {what}, {layout} ...")
            cpu = bench(site, source, dense)
            console.print(f"  {source.readings / cpu:,.0f} readings/s CPU")
            rows.append((f"detector {what}, {layout}", source.readings,
                         Timed(source.readings if dense else source.points, cpu, cpu), goal))
    if not args.skip_influx:
        for what, readings, result in bench_influx(site, data, args.dense_influx_rooms,
                                                      args.workers):
            rows.append((what, readings, result, None))
    table = Table(title="Detector throughput (readings represented; CPU of this process)")
    for column in ("what", "readings", "points", "wall s", "CPU s", "influxd CPU s",
                   "readings/s (CPU)", "vs target"):
        table.add_column(column, justify="left" if column == "what" else "right")
    for what, readings, result, target in rows:
        rate = readings / result.cpu_s if result.cpu_s else float("inf")
        ratio = f"{rate / target:.2f}x" if target else ""
        server = result.server_cpu_s
        if ANALYSED in what:  # both processes' CPU, and wall
            total = result.cpu_s + (server or 0.0)
            ratio = (f"{INFLUX_TARGET_S / total:.2f}x CPU both, "
                     f"{INFLUX_TARGET_S / result.wall_s:.2f}x wall")
        table.add_row(what, f"{readings:,}", f"{result.points:,}", f"{result.wall_s:.2f}",
                      f"{result.cpu_s:.2f}", "" if server is None else f"{server:.2f}",
                      f"{rate:,.0f}", ratio)
    console.print(table)


if __name__ == "__main__":
    main()
