"""The ``softplace`` command line. Each component contributes its commands from its own
package; this module only assembles them and renders errors with rich."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.logging import RichHandler

from softplace.errors import SoftPlaceError
from softplace.settings import Settings, load_settings

console = Console()
err_console = Console(stderr=True)


class AppContext:
    """What every command gets: validated settings (loaded lazily, once)."""

    def __init__(self, config: Path | None) -> None:
        self.config = config
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config)
        return self._settings


pass_app = click.make_pass_decorator(AppContext)


@click.group()
@click.option(
    "--config", "-c", type=click.Path(path_type=Path, dir_okay=False), default=None,
    envvar="SOFTPLACE_CONFIG", help="settings YAML (default: built-in defaults + environment)",
)
@click.option("--verbose", "-v", count=True, help="-v info, -vv debug")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, verbose: int) -> None:
    """SoftPlace: occupancy sensing for shared buildings."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err_console)]
    )
    ctx.obj = AppContext(config)


def main() -> None:
    try:
        # without standalone mode click hands back a command's ctx.exit(code)
        code = cli.main(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except SoftPlaceError as err:
        err_console.print(f"[bold red]error:[/] {err}")
        sys.exit(2)


# Commands contributed by the components (each import adds its commands to ``cli``).


@cli.command("demo")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 28))
@click.option("--step", "step_s", default=300, show_default=True, type=click.IntRange(10, 3600),
              help="simulated seconds between sensor samples")
@click.option("--broker", default=None, help="use this broker (mqtt://host:port) instead of "
              "the embedded one")
@pass_app
def demo_command(app: AppContext, days: int, step_s: int, broker: str | None) -> None:
    """Run the whole chain on embedded defaults: no service needed.

    The result lands in the configured SQLite store (storage.sqlite_path, by default
    .softplace/softplace.sqlite), so `softplace report`, `softplace privacy audit` and
    `softplace export` work on it afterwards. Each run starts that store afresh.
    """
    from detector.report import build_report, render_report
    from softplace.demo import full_days, landed_table, run_demo
    from softplace.registry import load_registry
    from softplace.settings import MqttSettings
    from softplace.storage.sqlite import SqliteStore

    settings = app.settings
    registry = load_registry(settings.registry)
    store_path = settings.storage.sqlite_path
    broker_settings = MqttSettings(url=broker, protocol="3.1.1") if broker else None
    result = run_demo(registry, store_path, console, days=days, step_s=step_s,
                      broker=broker_settings)
    console.print(landed_table(registry, result))
    console.print(
        f"{result.published} device messages published, {result.accepted} accepted, "
        f"{result.rejected} dead-lettered (one malformed message is sent on purpose), "
        f"{result.written} points written to {store_path}"
    )
    store = SqliteStore(store_path)
    try:
        for site in registry.sites:
            first, last = full_days(result, site.tz)
            render_report(build_report(store, registry, site.id, first, last,
                                       settings=settings.detector), console, limit=8)
    finally:
        store.close()


import dashboards.commands  # noqa: E402,F401
import detector.commands  # noqa: E402,F401
import gateway.commands  # noqa: E402,F401
import ingest.commands  # noqa: E402,F401
import softplace.privacy.commands  # noqa: E402,F401
