"""``softplace privacy ...`` and ``softplace export``: thin shells over the pure cores."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click
from rich.table import Table

from privacy.audit import AuditResult, audit_samples, run_audit
from privacy.inventory import build_inventory
from privacy.ledger import Ledger
from privacy.settings import PERIODS, PrivacySettings
from softplace.cli import AppContext, console, err_console, pass_app
from softplace.errors import PrivacyError
from softplace.registry import load_registry
from softplace.schema import SeriesName
from softplace.storage import open_store
from softplace.timeutil import MS_PER_DAY, datetime_to_ms, now_ms


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
        console.print(f"{policy.family}: {policy.days or 'forever'} days")


def _audit(app: AppContext, *, record: bool) -> AuditResult:
    """Audit the configured store against the retention policies (and record it)."""
    settings = app.settings
    store = open_store(settings, apply_retention=False)
    try:
        result = run_audit(store, settings.retention.policies(), now_ms(),
                           app.section(PrivacySettings).retention_grace_hours)
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
        err_console.print(f"[red]{finding.check}[/] {finding.series}: {finding.detail}")
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
    with Ledger(privacy_settings.ledger_path, privacy_settings.budgets) as ledger:
        text = render_report(build_inventory(settings), result, ledger.states(),
                             ledger.charges(), rng_source())
    if out is None:
        click.echo(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        console.print(f"report written to {out} (audit {'PASS' if result.ok else 'FAIL'})")


@privacy.command()
@pass_app
def budget(app: AppContext) -> None:
    """Epsilon spent and left per recipient."""
    privacy_settings = app.section(PrivacySettings)
    with Ledger(privacy_settings.ledger_path, privacy_settings.budgets) as ledger:
        for state in ledger.states():
            console.print(f"{state.recipient}: spent {state.spent:.4g} of {state.limit:g}"
                          f" in {state.releases} releases")


@click.command("export")
@click.option("--recipient", required=True, help="who receives it; needs a budget")
@click.option("--site", "sites", multiple=True, help="limit to these sites' buildings")
@click.option("--district", "districts", multiple=True, help="these districts, whole")
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]))
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="exclusive")
@click.option("--period", type=click.Choice(PERIODS), default=None,
              help="finest period (default: privacy.period); may be coarsened")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False))
@pass_app
def export(
    app: AppContext, *, recipient: str, sites: tuple[str, ...], districts: tuple[str, ...],
    start: dt.datetime, end: dt.datetime, period: str | None, out_dir: Path,
) -> None:
    """Anonymised regulator aggregates as CSV + datapackage.json; spends privacy budget."""
    from privacy.export import export_release
    from privacy.release import budget_sample, build_release, to_samples

    settings = app.settings
    privacy_settings = app.section(PrivacySettings)
    registry = load_registry(settings.registry)
    now = now_ms()
    # wide margins: the period may be widened to whole weeks or months (filtered later)
    start_ms = datetime_to_ms(start.replace(tzinfo=dt.UTC)) - MS_PER_DAY * 40
    end_ms = datetime_to_ms(end.replace(tzinfo=dt.UTC)) + MS_PER_DAY * 40
    store = open_store(settings)
    try:
        measures = store.query(SeriesName.ROOM_MEASURE, start_ms, end_ms)
        breaches = store.query(SeriesName.BREACH, start_ms, end_ms)
        with Ledger(privacy_settings.ledger_path, privacy_settings.budgets) as ledger:
            try:
                release = build_release(
                    registry, privacy_settings, ledger, recipient=recipient,
                    start=start.date(), end=end.date(), measures=measures, breaches=breaches,
                    sites=sites, districts=districts,
                    period=period,  # type: ignore[arg-type]
                    now_ms=now,
                )
            except KeyError as err:
                raise click.UsageError(str(err.args[0])) from err
            store.write([*to_samples(release), budget_sample(ledger, recipient, now)])
    except PrivacyError as err:
        err_console.print(f"[bold red]refused:[/] {err}")
        raise click.exceptions.Exit(3) from err
    finally:
        store.close()
    csv_path, package_path = export_release(release, out_dir)
    released = sum(c.status == "released" for c in release.cells)
    click.echo(json.dumps({
        "release": release.id, "period": release.period, "epsilon": release.epsilon,
        "k": release.k, "cells": len(release.cells), "released": released,
        "csv": str(csv_path), "datapackage": str(package_path),
    }))
