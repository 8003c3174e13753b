"""``softplace privacy ...`` and ``softplace export``: thin shells over the pure cores."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click
from rich.table import Table

from privacy.audit import (
    LEDGER_CHECK,
    AuditResult,
    Deletion,
    Finding,
    audit_samples,
    run_audit,
)
from privacy.inventory import FILE_KIND, build_inventory
from privacy.ledger import Ledger, recorded_spending, store_mismatches
from privacy.settings import PERIODS, PrivacySettings

if TYPE_CHECKING:
    from privacy.release import Release
from rich.markup import escape

from softplace.cli import LOCAL_DAY, AppContext, console, err_console, pass_app
from softplace.errors import PrivacyError
from softplace.registry import load_registry
from softplace.schema import SeriesName
from softplace.settings import KernelSettings
from softplace.storage import Store, open_store
from softplace.timeutil import MS_PER_DAY, datetime_to_ms, ms_to_datetime, now_ms


@click.group()
def privacy() -> None:
    """Data inventory, retention audit and privacy report."""


@privacy.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@pass_app
def inventory(app: AppContext, as_json: bool) -> None:
    """What is stored, where, for how long and who receives it (from the configuration)."""
    inv = build_inventory(app.settings)
    if as_json:
        click.echo(inv.model_dump_json(indent=2))
        return
    table = Table(title="SoftPlace data inventory")
    for column in ("what", "where", "kept", "receives", "personal data?"):
        table.add_column(column)
    for row in inv.rows:
        table.add_row(row.what, row.where, row.retention, "\n".join(row.recipients),
                      row.personal_data)
    console.print(table)


@privacy.command("apply-retention")
@pass_app
def apply_retention(app: AppContext) -> None:
    """Create or alter the retention policies (idempotent; services also do it at start-up)."""
    store = open_store(app.settings, apply_retention=True)
    store.close()
    for policy in app.settings.retention.policies():
        kept = f"{policy.days} days" if policy.days else "kept forever"
        console.print(f"{policy.family}: {kept}")


def _ledger_findings(app: AppContext, store: Store, now: int) -> list[Finding]:
    """The ledger's hash chain, and the store's recorded spending against it."""
    privacy_settings = app.section(PrivacySettings)
    path = privacy_settings.ledger_file(app.config)
    if not path.exists():
        recorded = recorded_spending(store.query(SeriesName.PRIVACY_BUDGET, 0, now + MS_PER_DAY))
        return [Finding(LEDGER_CHECK, str(path), f"ledger missing, but {_store_name(app.settings)}"
                        f" records releases to {sorted(recorded)}")] if recorded else []
    try:
        with Ledger(path, privacy_settings.budgets) as ledger:
            findings = [Finding(LEDGER_CHECK, str(path), f"entry {p.seq}: {p.detail}")
                        for p in ledger.verify()]
            findings += [Finding(LEDGER_CHECK, str(path), problem) for problem in
                         _check_ledger_against_store(ledger, store, app.settings, now)]
    except PrivacyError as err:
        return [Finding(LEDGER_CHECK, str(path), str(err))]
    return findings


def _audit(app: AppContext, *, record: bool) -> AuditResult:
    """Audit the configured store against the retention policies, and the privacy ledger
    against its hash chain and the store (and record it)."""
    settings = app.settings
    store = open_store(settings, apply_retention=False)
    try:
        now = now_ms()
        result = run_audit(store, settings.retention.policies(), now,
                           app.section(PrivacySettings).retention_grace_hours)
        held = [Finding("retention", what, detail) for section in settings.stage_sections()
                for what, detail in section.holding_findings(now, app.config)]
        deletions = sorted(
            (Deletion(what, when, detail) for section in settings.stage_sections()
             for what, when, detail in section.holding_deletions(app.config)),
            key=lambda d: d.when_ms)
        result = dataclasses.replace(
            result, findings=(*result.findings, *_ledger_findings(app, store, now), *held),
            deletions=tuple(deletions))
        if record:
            store.write(audit_samples(result))
    finally:
        store.close()
    return result


@privacy.command()
@click.option("--no-record", is_flag=True, help="do not write privacy_audit points")
@pass_app
def audit(app: AppContext, no_record: bool) -> None:
    """Compare retention policy and schema with what is stored; exit 1 on any breach."""
    result = _audit(app, record=not no_record)
    for finding in result.findings:
        err_console.print(f"[red]{escape(finding.check)}[/] {escape(finding.series)}: "
                          f"{escape(finding.detail)}", soft_wrap=True)
    for holding in build_inventory(app.settings).rows:
        if holding.kind == FILE_KIND:
            console.print(f"{escape(holding.what)}: kept {escape(holding.retention)}")
    for deletion in result.deletions:
        console.print(f"{escape(deletion.holding)}: deleted {escape(deletion.detail)} at"
                      f" {ms_to_datetime(deletion.when_ms, dt.UTC):%Y-%m-%d %H:%M} UTC")
    if not result.ok:
        raise click.exceptions.Exit(1)
    console.print(f"[green]audit passed[/]: {len(result.series_checked)} series within policy")


@privacy.command()
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="write the Markdown report here (default: stdout)")
@pass_app
def report(app: AppContext, out: Path | None) -> None:
    """Write the privacy officer's report: inventory, policies, audit, budget spent."""
    from privacy.noise import rng_source
    from privacy.report import render_report

    settings = app.settings
    privacy_settings = app.section(PrivacySettings)
    result = _audit(app, record=False)
    with Ledger(privacy_settings.ledger_file(app.config),
                privacy_settings.budgets) as ledger:
        text = render_report(build_inventory(settings), result, ledger.states(),
                             ledger.charges(), rng_source())
    if out is None:
        click.echo(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        verdict = "PASS" if result.ok else "FAIL"
        console.print(f"report written to {escape(str(out))} (audit {verdict})")


@privacy.command()
@pass_app
def budget(app: AppContext) -> None:
    """Epsilon spent and left per recipient (the worst room-day over all releases)."""
    privacy_settings = app.section(PrivacySettings)
    with Ledger(privacy_settings.ledger_file(app.config),
                privacy_settings.budgets) as ledger:
        for state in ledger.states():
            console.print(f"{state.recipient}: spent {state.spent:.4g} of {state.limit:g} on"
                          f" the worst day; {state.total:.4g} in total over {state.releases}"
                          " releases")


def _store_name(settings: KernelSettings) -> str:
    if settings.storage.backend == "influxdb":
        return f"the store (InfluxDB {settings.influxdb.url}, {settings.influxdb.database})"
    return f"the store (SQLite {settings.storage.sqlite_path})"


def _check_ledger_against_store(ledger: Ledger, store: Store, settings: KernelSettings,
                                now: int) -> list[str]:
    recorded = recorded_spending(store.query(SeriesName.PRIVACY_BUDGET, 0, now + MS_PER_DAY))
    return store_mismatches(ledger, recorded, _store_name(settings))


def _release_and_charge(
    app: AppContext, store: Store, ledger: Ledger, *, recipient: str, sites: tuple[str, ...],
    districts: tuple[str, ...], first: dt.date, last: dt.date, period: str | None,
    out_dir: Path,
) -> tuple[Release, Path, Path]:
    """Build the release, stage its files (fsynced), charge, then move them into place:
    a failure before the charge leaves no files in ``out_dir`` and charges nothing."""
    from privacy.export import discard_staged, publish_staged, stage_release
    from privacy.release import budget_sample, build_release, to_samples

    settings = app.settings
    now = now_ms()
    lost = _check_ledger_against_store(ledger, store, settings, now)
    if lost:
        raise PrivacyError("; ".join(lost))
    # wide margins: the period may be widened to whole weeks or months (filtered later)
    start_ms = datetime_to_ms(dt.datetime.combine(first, dt.time(), dt.UTC)) - MS_PER_DAY * 40
    end_ms = datetime_to_ms(dt.datetime.combine(last, dt.time(), dt.UTC)) + MS_PER_DAY * 41
    registry = load_registry(settings.registry)
    # the earliest local date of any site: a day is released only once it is over everywhere
    today = min(ms_to_datetime(now, ZoneInfo(site.timezone)).date() for site in registry.sites)
    try:
        release = build_release(
            registry, app.section(PrivacySettings), ledger,
            recipient=recipient, start=first, end=last + dt.timedelta(days=1),
            measures=store.query(SeriesName.ROOM_MEASURE, start_ms, end_ms),
            breaches=store.query(SeriesName.BREACH, start_ms, end_ms),
            bookings=store.query(SeriesName.BOOKING, start_ms, end_ms),
            sites=sites, districts=districts,
            period=period,  # type: ignore[arg-type]
            now_ms=now, today=today,
        )
    except KeyError as err:
        raise click.UsageError(str(err.args[0])) from err
    try:
        staging = stage_release(release, out_dir)
    except OSError as err:
        raise PrivacyError(f"cannot write the release into {out_dir}: {err.strerror};"
                           " nothing was charged") from err
    try:
        ledger.charge(recipient, release.epsilon, start=release.start, end=release.end,
                      release_id=release.id, now_ms=now,
                      note=f"{release.period} {release.start}..{release.end} k={release.k}",
                      hidden=release.hidden_areas(), published=release.published_areas())
    except PrivacyError:
        discard_staged(staging)  # a concurrent export spent it first
        raise
    csv_path, package_path = publish_staged(staging)
    store.write([*to_samples(release), budget_sample(ledger, recipient, now)])
    return release, csv_path, package_path


SHOWN_DIGITS = 9


@click.command("export")
@click.option("--recipient", required=True, help="who receives it; needs a budget")
@click.option("--site", "sites", multiple=True, help="limit to these sites' buildings")
@click.option("--district", "districts", multiple=True, help="these districts, whole")
@click.option("--from", "first", required=True, type=LOCAL_DAY, help="first day (inclusive)")
@click.option("--to", "last", required=True, type=LOCAL_DAY, help="last day (inclusive)")
@click.option("--period", type=click.Choice(PERIODS), default=None,
              help="finest period (default: privacy.period); may be coarsened")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False))
@pass_app
def export(
    app: AppContext, *, recipient: str, sites: tuple[str, ...], districts: tuple[str, ...],
    first: dt.date, last: dt.date, period: str | None, out_dir: Path,
) -> None:
    """Anonymised regulator aggregates as CSV + datapackage.json; spends privacy budget.

    The days are widened to whole weeks or months when the period needs it (the output
    and the datapackage say so). Epsilon is charged only once the files are on disk."""

    settings = app.settings
    privacy_settings = app.section(PrivacySettings)
    store = open_store(settings)
    try:
        with Ledger(privacy_settings.ledger_file(app.config),
                    privacy_settings.budgets) as ledger:
            release, csv_path, package_path = _release_and_charge(
                app, store, ledger, recipient=recipient, sites=sites, districts=districts,
                first=first, last=last, period=period, out_dir=out_dir,
            )
    except PrivacyError as err:
        err_console.print(f"[bold red]refused:[/] {escape(str(err))}", soft_wrap=True)
        raise click.exceptions.Exit(3) from err
    finally:
        store.close()
    released = sum(c.status == "released" for c in release.cells)
    click.echo(json.dumps({
        "release": release.id, "period": release.period, "widening": release.widening,
        "first_day": str(release.start), "last_day": str(release.budget.window_last_day),
        # shown to 9 digits: summing per-quantity epsilons leaves float dust (0.6000000000000001)
        "epsilon": round(release.epsilon, SHOWN_DIGITS),
        "spent_in_window": round(release.budget.spent_in_window, SHOWN_DIGITS),
        "left_in_window": round(release.budget.left_in_window, SHOWN_DIGITS), "k": release.k,
        "cells": len(release.cells), "released": released,
        "csv": str(csv_path), "datapackage": str(package_path),
    }))
