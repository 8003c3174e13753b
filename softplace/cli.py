"""What every stage's commands share: the consoles, the application context that carries
the validated settings, and how a command line runs and renders its errors.

The ``softplace`` group itself is assembled by the application (``softplace_cli``) from the
commands each stage exposes; nothing here knows the stages.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console
from rich.logging import RichHandler

from softplace.errors import SoftPlaceError
from softplace.settings import KernelSettings, SectionT

console = Console()
err_console = Console(stderr=True)

SettingsLoader = Callable[[Path | None], KernelSettings]


class AppContext:
    """What every command gets: validated settings (loaded lazily, once)."""

    def __init__(self, config: Path | None, load: SettingsLoader) -> None:
        self.config = config
        self._load = load
        self._settings: KernelSettings | None = None

    @property
    def settings(self) -> KernelSettings:
        if self._settings is None:
            self._settings = self._load(self.config)
        return self._settings

    def section(self, kind: type[SectionT]) -> SectionT:
        """A stage's own settings section."""
        return self.settings.section(kind)


pass_app = click.make_pass_decorator(AppContext)


def configure_logging(verbose: int) -> None:
    """-v info, -vv debug; services log to stderr through rich."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err_console)]
    )


def run(group: click.Group) -> None:
    """Run ``group`` as the program: exit codes through, errors on one line."""
    try:
        # without standalone mode click hands back a command's ctx.exit(code)
        code = group.main(standalone_mode=False)
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
