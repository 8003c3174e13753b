"""``softplace detect``, ``softplace import``, ``softplace report``, ``softplace slots``.

Thin: parse options, open the store and the registry, call the detector, render.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Literal

import click
from rich.progress import Progress, TaskID

from detector.batch import run_batch, summary
from detector.idle_slots import find_idle_slots, to_ical, to_json
from detector.importer import read_counts
from detector.measures import RoomRef
from detector.report import build_report, render_report
from detector.service import DetectorService
from detector.settings import DetectorSettings
from softplace.cli import AppContext, console, pass_app
from softplace.lifecycle import stop_on_signals
from softplace.registry import Registry, load_registry
from softplace.storage.base import Sample, Store
from softplace.timeutil import datetime_to_ms, local_date, local_ms, ms_to_datetime

IMPORT_BATCH = 5000


def _open(app: AppContext) -> tuple[Store, Registry]:
    from softplace.storage import open_store

    settings = app.settings
    return open_store(settings), load_registry(settings.registry)


def _date(_ctx: click.Context, _param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError as err:
        raise click.BadParameter(f"{value!r} is not a date like 2024-03-31") from err


@click.command()
@click.option("--site", "sites", multiple=True, help="only these sites (default: all)")
@click.option("--from", "start", callback=_date, help="recompute from this local day (batch)")
@click.option("--to", "end", callback=_date, help="... to this local day, inclusive")
@click.option("--once", is_flag=True, help="one step, then exit (cron-style)")
@click.option("--since", callback=_date, help="first start only: begin at this local day")
@pass_app
def detect(
    app: AppContext, *, sites: tuple[str, ...], start: dt.date | None, end: dt.date | None,
    once: bool, since: dt.date | None,
) -> None:
    """Follow room readings and write intervals, daily measures and breaches.

    With --from/--to, recompute that range from the stored room counts instead.
    """
    store, registry = _open(app)
    settings = app.section(DetectorSettings)
    try:
        if start is not None or end is not None:
            if start is None or end is None:
                raise click.UsageError("--from and --to go together")
            for site_id in sites or [s.id for s in registry.sites]:
                with Progress(console=console, transient=True) as progress:
                    task = progress.add_task(f"recomputing {site_id}", total=1.0)
                    def advance(done: int, total: int, task: TaskID = task) -> None:
                        progress.update(task, completed=done / total)

                    result = run_batch(
                        store, registry, site_id, start, end + dt.timedelta(days=1),
                        settings=settings, progress=advance,
                    )
                console.print(summary(result))
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
            console.print(
                f"{stats.readings} events; {stats.intervals} intervals, {stats.measures} "
                f"measures, {stats.breaches} breaches concluded; {stats.written} points written"
            )
        else:
            console.print(f"detector following {', '.join(service.detectors)}; Ctrl-C stops")
            with stop_on_signals(threading.Event()) as stop:
                service.run(should_stop=stop.is_set, sleep=stop.wait)
            console.print("detector stopped; the checkpoint is saved")
    finally:
        store.close()


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--site", required=True, help="the site the rooms belong to")
@click.option("--dry-run", is_flag=True, help="validate the file, write nothing")
@pass_app
def import_counts(app: AppContext, *, file: Path, site: str, dry_run: bool) -> None:
    """Backfill historical room counts from FILE.csv (timestamp,room,count).

    See detector/README.md for the format.
    """
    registry = load_registry(app.settings.registry)
    placed_site = registry.site(site)
    raw_days = app.settings.retention.raw_days
    cutoff = datetime_to_ms(dt.datetime.now(dt.UTC) - dt.timedelta(days=raw_days))
    store = None if dry_run else _open(app)[0]
    rows, too_old, first, last = 0, 0, None, None
    batch: list[Sample] = []
    try:
        with file.open(encoding="utf-8", newline="") as handle:
            for sample in read_counts(handle, placed_site, str(file)):
                if sample.time_ms < cutoff:  # the store's retention would drop it
                    too_old += 1
                    continue
                rows += 1
                first = sample.time_ms if first is None else min(first, sample.time_ms)
                last = sample.time_ms if last is None else max(last, sample.time_ms)
                batch.append(sample)
                if len(batch) >= IMPORT_BATCH:
                    if store is not None:
                        store.write(batch)
                    batch = []
        if batch and store is not None:
            store.write(batch)
    finally:
        if store is not None:
            store.close()
    span = ""
    if first is not None and last is not None:
        tz = placed_site.tz
        span = (f" from {ms_to_datetime(first, tz):%Y-%m-%d %H:%M} to "
                f"{ms_to_datetime(last, tz):%Y-%m-%d %H:%M}")
    verb = "checked" if dry_run else "imported"
    console.print(f"{verb} {rows} room counts for {site}{span}")
    if too_old:
        console.print(
            f"[yellow]skipped {too_old} rows older than the raw retention ({raw_days} days);"
            " to keep them, raise retention.raw_days (and retention.derived_days) first[/]"
        )
    if not dry_run and first is not None and last is not None:
        tz = placed_site.tz
        day_from, day_to = local_date(first, tz), local_date(last, tz)
        console.print(f"recompute with: softplace detect --site {site} "
                      f"--from {day_from} --to {day_to}")


@click.command()
@click.option("--site", required=True)
@click.option("--from", "start", callback=_date, required=True, help="first local day")
@click.option("--to", "end", callback=_date, required=True, help="last local day, inclusive")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option(
    "--source", type=click.Choice(["auto", "stored", "recompute"]), default="auto",
    help="stored results, or recomputed from room counts (auto: stored when present)",
)
@pass_app
def report(
    app: AppContext, *, site: str, start: dt.date, end: dt.date, fmt: str,
    source: Literal["auto", "stored", "recompute"],
) -> None:
    """Under-use ranking, breaches and idle slots of a site over a period."""
    store, registry = _open(app)
    try:
        result = build_report(
            store, registry, site, start, end, settings=app.section(DetectorSettings), source=source
        )
    finally:
        store.close()
    if fmt == "json":
        click.echo(result.model_dump_json(indent=2))
    else:
        render_report(result, console)


@click.command()
@click.option("--site", required=True)
@click.option("--from", "start", callback=_date, required=True, help="first local day")
@click.option("--to", "end", callback=_date, required=True, help="last local day, inclusive")
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="directory for <room>.ics and <room>.json (serve it as the feed)")
@click.option("--weeks", type=int, default=4, show_default=True, help="weeks offered ahead")
@pass_app
def slots(
    app: AppContext, *, site: str, start: dt.date, end: dt.date, out: Path, weeks: int
) -> None:
    """Publish idle-slot offers per room as iCalendar and JSON files."""
    from detector.batch import run_site_batch

    store, registry = _open(app)
    settings = app.section(DetectorSettings)
    placed_site = registry.site(site)
    try:
        result = run_site_batch(
            store, placed_site, start, end + dt.timedelta(days=1), settings=settings,
            write=False,
        )
    finally:
        store.close()
    out.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    written = 0
    index = []
    for placed in placed_site.placed_rooms():
        ref = RoomRef.of(placed, settings.include_housing)
        if not ref.rules:
            continue
        found = find_idle_slots(
            ref, [i for i in result.intervals if i.room == ref.room],
            name=placed.room.name or ref.room, hours=placed.opening_hours,
            tz=placed_site.tz, start=start, end=end + dt.timedelta(days=1), settings=settings,
        )
        (out / f"{ref.room}.ics").write_bytes(
            to_ical(found, placed_site.tz, end + dt.timedelta(days=1), weeks, now)
        )
        (out / f"{ref.room}.json").write_text(to_json(found, placed_site.timezone) + "\n")
        index.append({"room": ref.room, "slots": len(found), "ics": f"{ref.room}.ics",
                      "json": f"{ref.room}.json"})
        written += 1
    (out / "index.json").write_text(json.dumps({"site": site, "rooms": index}, indent=2) + "\n")
    console.print(f"wrote idle-slot feeds for {written} rooms to {out}")
