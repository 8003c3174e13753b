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
        cli.main(standalone_mode=False)
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
