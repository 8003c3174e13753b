"""The ``softplace`` command line, assembled from the commands each stage exposes.

A table maps each command to where it lives; a command's module is imported only when
that command runs (or ``--help`` lists them all), so ``softplace gateway`` never loads the
detector or the privacy stage.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from softplace.cli import AppContext, configure_logging, run
from softplace_cli.settings import Settings, load_settings

__all__ = ["COMMANDS", "Settings", "cli", "load_settings", "main"]

COMMANDS: dict[str, str] = {
    "demo": "devkit.commands:demo_command",
    "gateway": "gateway.commands:gateway_command",
    "ingest": "ingest.commands:ingest_command",
    "detect": "detector.commands:detect",
    "import": "detector.commands:import_counts",
    "report": "detector.commands:report",
    "slots": "detector.commands:slots",
    "intervals": "detector.commands:intervals",
    "privacy": "privacy.commands:privacy",
    "export": "privacy.commands:export",
    "dashboards": "dashboards.commands:dashboards",
    "web": "web.commands:web",
    "doctor": "softplace_cli.doctor:doctor",
    "bookings": "bookings.commands:bookings",
    "device": "provision.commands:device",
}


class _AssembledGroup(click.Group):
    """Commands resolved from ``COMMANDS`` on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(cls=_AssembledGroup)
@click.option(
    "--config", "-c", type=click.Path(path_type=Path, dir_okay=False), default=None,
    envvar="SOFTPLACE_CONFIG", help="settings YAML (default: built-in defaults + environment)",
)
@click.option("--verbose", "-v", count=True, help="-v info, -vv debug")
@click.version_option(package_name="softplace", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, verbose: int) -> None:
    """SoftPlace: occupancy sensing for shared buildings."""
    configure_logging(verbose)
    ctx.obj = AppContext(config, load_settings)


def main() -> None:
    run(cli)
