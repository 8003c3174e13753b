"""``softplace detect``, ``import``, ``report``, ``slots`` and ``intervals``.

Thin: parse options, open the store and the registry, call the detector, render.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import json
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import click
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from detector.batch import BatchResult, run_batch, run_sites_parallel, summary
from detector.idle_slots import find_idle_slots, to_ical, to_json
from detector.importer import CsvImportError, decode, parse_counts
from detector.measures import RoomRef
from detector.report import RoomUse, build_report, render_report
from detector.service import DetectorService
from detector.settings import DetectorSettings
from softplace import observe
from softplace.cli import LOCAL_DAY, AppContext, check_days, console, pass_app
from softplace.errors import SoftPlaceError
from softplace.lifecycle import stop_on_signals
from softplace.registry import Registry, load_registry
from softplace.schema import SeriesName
from softplace.settings import KernelSettings, ObserveSettings
from softplace.storage.base import Store
from softplace.timeutil import datetime_to_ms, local_date, local_ms, ms_to_datetime

LARGE_IMPORT_LINES = 20_000  # a progress bar from here on
FORMATS = ("text", "json")
REPORT_FORMATS = ("text", "json", "csv")
TABLE_FORMATS = ("table", "csv", "json")


class NothingImportedError(SoftPlaceError):
    """A valid file with nothing to store (empty, or every row past the raw retention)."""


def _open(
    app: AppContext, site: str | None = None, *, create: bool = False
) -> tuple[Store, Registry]:
    """The store and the registry; a bad registry or an unknown ``site`` fails first."""
    from softplace.storage import open_store

    settings = app.settings
    registry = load_registry(settings.registry)
    if site is not None:
        registry.site(site)
    return open_store(settings, create=create), registry


def batch_sentence(result: BatchResult) -> str:
    """What a recompute did, as one sentence."""
    return summary_sentence(summary(result))


def summary_sentence(found: Mapping[str, Any]) -> str:
    """``batch_sentence`` from a batch's ``summary`` (what a worker process sends back)."""
    late = f"; {found['late_dropped']} late readings dropped" if found["late_dropped"] else ""
    return (f"site {found['site']}: {found['readings']} readings -> {found['intervals']} "
            f"intervals, {found['measures']} daily measures, {found['breaches']} breaches; "
            f"{found['written']} points written{late}")


def _kernel(settings: KernelSettings) -> KernelSettings:
    """The shared sections alone: what a worker process needs to open the store (the
    application's settings class is assembled at run time, so it does not pickle)."""
    return KernelSettings.model_construct(
        **{name: getattr(settings, name) for name in KernelSettings.model_fields})


def _worker_store(settings: KernelSettings) -> Store:
    from softplace.storage import open_store

    return open_store(settings, apply_retention=False)


@click.command()
@click.option("--site", "sites", multiple=True, help="only these sites (default: all)")
@click.option("--from", "start", type=LOCAL_DAY, help="recompute from this local day (batch)")
@click.option("--to", "end", type=LOCAL_DAY, help="... to this local day, inclusive")
@click.option("--once", is_flag=True, help="one step, then exit (cron-style)")
@click.option("--since", type=LOCAL_DAY, help="first start only: begin at this local day")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text",
              help="text: a sentence per site; json: one object per site")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="recompute: this many sites at a time, each in a process of its own")
@pass_app
def detect(
    app: AppContext, *, sites: tuple[str, ...], start: dt.date | None, end: dt.date | None,
    once: bool, since: dt.date | None, fmt: str, workers: int,
) -> None:
    """Follow room readings and write intervals, daily measures and breaches.

    With --from/--to, recompute that range from the stored room counts instead.
    """
    if (start is None) != (end is None):
        raise click.UsageError("--from and --to go together")
    if start is not None and end is not None:
        check_days(start, end)
    # the service may start before ingest has stored anything; a recompute needs counts
    store, registry = _open(app, create=start is None)
    settings = app.section(DetectorSettings)
    try:
        if start is not None and end is not None and workers > 1:
            chosen = [registry.site(site_id) for site_id in sites] or list(registry.sites)
            opener = functools.partial(_worker_store, _kernel(app.settings))
            with Progress(console=console, transient=True,
                          disable=not console.is_terminal) as progress:
                task = progress.add_task(f"recomputing {len(chosen)} sites, {workers} at a "
                                         "time", total=len(chosen))
                for found in run_sites_parallel(opener, chosen, start,
                                                end + dt.timedelta(days=1), workers=workers,
                                                settings=settings):
                    progress.advance(task)
                    click.echo(json.dumps(found) if fmt == "json"
                               else escape(summary_sentence(found)))
            return
        if start is not None and end is not None:
            for site_id in sites or [s.id for s in registry.sites]:
                with Progress(console=console, transient=True,
                              disable=not console.is_terminal) as progress:
                    task = progress.add_task(f"recomputing {site_id}", total=1.0)
                    def advance(done: int, total: int, task: TaskID = task) -> None:
                        progress.update(task, completed=done / total)

                    result = run_batch(
                        store, registry, site_id, start, end + dt.timedelta(days=1),
                        settings=settings, progress=advance,
                    )
                if fmt == "json":
                    click.echo(json.dumps(summary(result)))
                else:
                    console.print(escape(batch_sentence(result)))
            return
        since_ms = None
        if since is not None:
            site = registry.site(sites[0]) if sites else registry.sites[0]
            since_ms = local_ms(since, 0, site.tz)
        service = DetectorService(
            store, registry, settings, sites=list(sites) or None, since_ms=since_ms
        )
        if once:
            stats = service.step()
            rederived = (f"; {stats.rederived} room-days' breaches re-derived for bookings "
                         "compared since" if stats.rederived else "")
            console.print(
                f"{stats.readings} events; {stats.intervals} intervals, {stats.measures} "
                f"measures, {stats.breaches} breaches concluded; {stats.written} points "
                f"written{rederived}"
            )
        else:
            console.print(f"detector following {', '.join(service.detectors)}; Ctrl-C stops")
            with observe.serving(_serve_metrics(app.settings.observe, service, store)), \
                    stop_on_signals(threading.Event()) as stop:
                service.run(should_stop=stop.is_set, sleep=stop.wait)
            console.print("detector stopped; the checkpoint is saved")
    finally:
        store.close()


def _serve_metrics(settings: ObserveSettings, service: DetectorService,
                   store: Store) -> observe.ObserveServer | None:
    """/metrics, /healthz and /readyz of a following detector, when ``observe.port`` is set."""
    registry = observe.new_registry()
    observe.detector_metrics(registry, lag_s=service.lag_s,
                             checkpoint_age_s=service.checkpoint_age_s,
                             late_dropped=lambda: service.late_readings)
    return observe.serve(settings, registry, {
        "store": observe.succeeds(lambda: store.oldest_ms(SeriesName.ROOM_COUNT)),
    })


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--site", required=True, help="the site the rooms belong to")
@click.option("--dry-run", is_flag=True, help="validate the file, write nothing")
@pass_app
def import_counts(app: AppContext, *, file: Path, site: str, dry_run: bool) -> None:
    """Backfill historical room counts from FILE.csv (timestamp,room,count).

    The whole file is checked first; a file with any bad row is refused whole (every bad
    line is named) and nothing is written. See detector/README.md for the format.
    """
    registry = load_registry(app.settings.registry)
    placed_site = registry.site(site)
    raw_days = app.settings.retention.raw_days
    cutoff = datetime_to_ms(dt.datetime.now(dt.UTC) - dt.timedelta(days=raw_days))
    try:
        data = file.read_bytes()
    except OSError as err:
        raise CsvImportError(f"{file}: cannot read: {err.strerror}") from err
    text = decode(data, str(file))
    lines = text.count("\n")
    with Progress(console=console, transient=True,
                  disable=lines < LARGE_IMPORT_LINES or not console.is_terminal) as progress:
        task = progress.add_task(f"checking {file.name}", total=lines)
        parsed = parse_counts(text, placed_site, str(file), oldest_ms=cutoff,
                              progress=lambda line: progress.update(task, completed=line))
    samples = parsed.samples
    if not samples:
        why = (f"all {parsed.too_old} rows are older than the raw retention ({raw_days} days);"
               " raise retention.raw_days (and retention.derived_days) first"
               if parsed.too_old else "the file has no rows")
        raise NothingImportedError(f"{file}: nothing imported: {why}")
    if not dry_run:
        store = _open(app, create=True)[0]
        try:
            store.write(samples)  # one write: one SQLite transaction, one InfluxDB request
        finally:
            store.close()
    first = min(s.time_ms for s in samples)
    last = max(s.time_ms for s in samples)
    tz = placed_site.tz
    span = (f" from {ms_to_datetime(first, tz):%Y-%m-%d %H:%M} to "
            f"{ms_to_datetime(last, tz):%Y-%m-%d %H:%M}")
    verb = "checked" if dry_run else "imported"
    console.print(escape(f"{verb} {len(samples)} room counts for {site}{span}"))
    if parsed.too_old:
        console.print(
            f"[yellow]skipped {parsed.too_old} rows older than the raw retention ({raw_days} "
            "days); to keep them, raise retention.raw_days (and retention.derived_days) first[/]"
        )
    if not dry_run:
        day_from, day_to = local_date(first, tz), local_date(last, tz)
        console.print(escape(f"recompute with: softplace detect --site {site} "
                             f"--from {day_from} --to {day_to}"))


@click.command()
@click.option("--site", required=True)
@click.option("--from", "start", type=LOCAL_DAY, required=True, help="first local day")
@click.option("--to", "end", type=LOCAL_DAY, required=True, help="last local day, inclusive")
@click.option("--format", "fmt", type=click.Choice(REPORT_FORMATS), default="text",
              help="text: tables; json: the whole report; csv: one row per room")
@click.option(
    "--source", type=click.Choice(["auto", "stored", "recompute"]), default="auto",
    help="stored results, or recomputed from room counts (auto: stored unless they are "
    "stale, i.e. differ from what the stored counts give)",
)
@pass_app
def report(
    app: AppContext, *, site: str, start: dt.date, end: dt.date, fmt: str,
    source: Literal["auto", "stored", "recompute"],
) -> None:
    """Under-use ranking, breaches and idle slots of a site over a period."""
    check_days(start, end)
    store, registry = _open(app, site)
    try:
        result = build_report(
            store, registry, site, start, end, settings=app.section(DetectorSettings), source=source
        )
    finally:
        store.close()
    if fmt == "json":
        click.echo(result.model_dump_json(indent=2))
    elif fmt == "csv":
        columns = list(RoomUse.model_fields)
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([getattr(room, c) for c in columns] for room in result.rooms)
    else:
        render_report(result, console)


@click.command()
@click.option("--site", required=True)
@click.option("--from", "start", type=LOCAL_DAY, required=True, help="first local day")
@click.option("--to", "end", type=LOCAL_DAY, required=True, help="last local day, inclusive")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="directory for <room>.ics and <room>.json (serve it as the feed)")
@click.option("--weeks", type=click.IntRange(min=1), default=4, show_default=True,
              help="weeks offered ahead (at least 1)")
@pass_app
def slots(
    app: AppContext, *, site: str, start: dt.date, end: dt.date, out: Path, weeks: int
) -> None:
    """Publish idle-slot offers per room as iCalendar and JSON files.

    A room with no reliably idle slot gets no .ics (an empty calendar is invalid, RFC 5545
    3.6); its JSON lists no slot and index.json says so."""
    from detector.batch import run_site_batch
    from detector.booked_store import stored_booked
    from detector.records import day_bounds_ms

    check_days(start, end)
    store, registry = _open(app, site)
    settings = app.section(DetectorSettings)
    placed_site = registry.site(site)
    now = dt.datetime.now(dt.UTC)
    try:
        result = run_site_batch(
            store, placed_site, start, end + dt.timedelta(days=1), settings=settings,
            write=False,
        )
        booked = stored_booked(store, placed_site, day_bounds_ms(start, placed_site.timezone)[0],
                               datetime_to_ms(now + dt.timedelta(weeks=weeks + 1)))
    finally:
        store.close()
    out.mkdir(parents=True, exist_ok=True)
    written, without = 0, []
    index = []
    for placed in placed_site.placed_rooms():
        ref = RoomRef.of(placed, settings.include_housing)
        if not ref.rules:
            continue
        found = find_idle_slots(
            ref, [i for i in result.intervals if i.room == ref.room],
            name=placed.room.name or ref.room, hours=placed.opening_hours,
            tz=placed_site.tz, start=start, end=end + dt.timedelta(days=1), settings=settings,
            booked=booked,
        )
        ics = out / f"{ref.room}.ics"
        if found:
            ics.write_bytes(to_ical(found, placed_site.tz, end + dt.timedelta(days=1), weeks, now,
                                    booked))
            written += 1
        else:
            ics.unlink(missing_ok=True)  # an earlier run's offers are no longer true
            without.append(ref.room)
        (out / f"{ref.room}.json").write_text(to_json(found, placed_site.timezone) + "\n")
        index.append({"room": ref.room, "slots": len(found),
                      "ics": ics.name if found else None, "json": f"{ref.room}.json"})
    (out / "index.json").write_text(json.dumps({"site": site, "rooms": index}, indent=2) + "\n")
    console.print(escape(f"wrote idle-slot feeds for {written} rooms to {out}"))
    if without:
        console.print(escape(f"no reliably idle slot, so no calendar, for: {', '.join(without)}"))


@click.command()
@click.option("--site", required=True)
@click.option("--from", "start", type=LOCAL_DAY, required=True, help="first local day")
@click.option("--to", "end", type=LOCAL_DAY, required=True, help="last local day, inclusive")
@click.option("--room", "rooms", multiple=True, help="only these rooms (default: all)")
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="table")
@click.option("--longest", is_flag=True,
              help="each open day's longest vacancy inside opening hours, not every interval")
@pass_app
def intervals(
    app: AppContext, *, site: str, start: dt.date, end: dt.date, rooms: tuple[str, ...],
    fmt: str, longest: bool,
) -> None:
    """Vacancy intervals of a site's rooms, or each day's longest vacancy (--longest),
    recomputed from the stored room counts."""
    from detector.batch import run_site_batch
    from detector.vacancy import (
        INTERVAL_COLUMNS,
        LONGEST_COLUMNS,
        VacancyListing,
        longest_per_day,
        to_csv_rows,
        vacancy_rows,
    )

    check_days(start, end)
    store, registry = _open(app, site)
    settings = app.section(DetectorSettings)
    placed_site = registry.site(site)
    chosen = [placed_site.room(r) for r in rooms] or list(placed_site.placed_rooms())
    tz = placed_site.tz
    try:
        result = run_site_batch(store, placed_site, start, end + dt.timedelta(days=1),
                                settings=settings, write=False)
    finally:
        store.close()
    lo, hi = local_ms(start, 0, tz), local_ms(end, 24 * 60, tz)
    listing = VacancyListing(
        site=site, timezone=placed_site.timezone, start=start, end=end,
        intervals=[row for p in chosen
                   for row in vacancy_rows(p.room.id, result.intervals, tz, lo, hi)],
        longest=[row for p in chosen for row in longest_per_day(
            p.room.id, result.intervals, p.opening_hours, tz, start, end)],
    )
    columns: Sequence[str] = LONGEST_COLUMNS if longest else INTERVAL_COLUMNS
    rows = listing.longest if longest else listing.intervals
    if fmt == "json":
        click.echo(listing.model_dump_json(indent=2, include={
            "site", "timezone", "start", "end", "longest" if longest else "intervals"}))
    elif fmt == "csv":
        csv.writer(sys.stdout, lineterminator="\n").writerows(to_csv_rows(rows, columns))
    else:
        table = Table(title=f"{'Longest vacancy per day' if longest else 'Vacancy intervals'}"
                            f", {site}, {start} to {end}")
        for column in columns:
            table.add_column(column)
        for line in to_csv_rows(rows, columns)[1:]:
            table.add_row(*(escape(cell) for cell in line))
        console.print(table)
