"""``softplace demo``: the whole chain on embedded defaults."""

from __future__ import annotations

import click
from rich.markup import escape

from detector.settings import DetectorSettings
from softplace.cli import AppContext, console, pass_app


@click.command("demo")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 28))
@click.option("--step", "step_s", default=300, show_default=True, type=click.IntRange(10, 3600),
              help="simulated seconds between sensor samples")
@click.option("--broker", default=None, help="use this broker (mqtt://host:port) instead of "
              "the embedded one")
@click.option("--overwrite", is_flag=True,
              help="replace the configured store even though the demo did not create it")
@pass_app
def demo_command(
    app: AppContext, days: int, step_s: int, broker: str | None, overwrite: bool
) -> None:
    """Run the whole chain on embedded defaults: no service needed.

    The result lands in the configured SQLite store (storage.sqlite_path, by default
    .softplace/softplace.sqlite), so `softplace report`, `softplace privacy audit` and
    `softplace export` work on it afterwards. Each run starts a store it created afresh; a
    store it did not create (ingest's, an import's) is refused unless --overwrite is given.
    """
    from detector.report import build_report, render_report
    from devkit.demo import full_days, landed_table, run_demo
    from softplace.registry import load_registry
    from softplace.settings import MqttSettings
    from softplace.storage.sqlite import SqliteStore

    settings = app.settings
    registry = load_registry(settings.registry)
    store_path = settings.storage.sqlite_path
    broker_settings = MqttSettings(url=broker, protocol="3.1.1") if broker else None
    result = run_demo(registry, store_path, console, days=days, step_s=step_s,
                      broker=broker_settings, overwrite=overwrite)
    console.print(landed_table(registry, result))
    console.print(
        f"{result.published} device messages published, {result.accepted} accepted, "
        f"{result.rejected} dead-lettered (one malformed message is sent on purpose), "
        f"{result.written} points written to {escape(str(store_path))}"
    )
    store = SqliteStore(store_path)
    try:
        for site in registry.sites:
            first, last = full_days(result, site.tz)
            render_report(build_report(store, registry, site.id, first, last,
                                       settings=app.section(DetectorSettings)), console, limit=8)
    finally:
        store.close()
