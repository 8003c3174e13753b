"""What every stage's commands share: the consoles, the application context that carries
the validated settings, and how a command line runs and renders its errors.

The ``softplace`` group itself is assembled by the application (``softplace_cli``) from the
commands each stage exposes; nothing here knows the stages.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import click
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from softplace.errors import SoftPlaceError
from softplace.settings import KernelSettings, SectionT

# Redirected output (a file, a pipe, a log collector) is not cut to 80 columns: tables take
# their natural width and a message stays on one line. COLUMNS, when set, still rules.
UNWRAPPED_WIDTH = 10_000


def _console(*, stderr: bool) -> Console:
    probe = Console(stderr=stderr)
    if probe.is_terminal or "COLUMNS" in os.environ:
        return probe
    return Console(stderr=stderr, width=UNWRAPPED_WIDTH)


console = _console(stderr=False)
err_console = _console(stderr=True)


def wide(target: Console) -> bool:
    """Whether ``target`` writes unwrapped (redirected): rules and banners stay short."""
    return target.width >= UNWRAPPED_WIDTH


def error_line(message: str) -> None:
    """One ``error:`` line on stderr; the message is user text, never rich markup."""
    flat = "; ".join(line for line in message.splitlines() if line.strip())
    err_console.print(f"[bold red]error:[/] {escape(flat)}", soft_wrap=True)


class LocalDay(click.ParamType):  # type: ignore[type-arg]
    """``--from``/``--to``: a local day of the site, ``2026-11-02``; both ends inclusive.

    One convention on every command: ``--to 2026-11-08`` includes the whole of the 8th."""

    name = "date"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.date:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        try:
            return dt.date.fromisoformat(str(value).strip())
        except ValueError:
            self.fail(f"{value!r} is not a date like 2026-11-02 (a local day, inclusive)",
                      param, ctx)


LOCAL_DAY = LocalDay()


def check_days(start: dt.date, end: dt.date) -> None:
    """Refuse a range whose inclusive last day comes before its first."""
    if end < start:
        raise click.UsageError(f"--to {end} is before --from {start} (both days are included)")

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


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# libraries that log every HTTP request at info: shown from -vv only
CHATTY_LOGGERS = ("httpx", "httpcore", "urllib3")


def configure_logging(verbose: int) -> None:
    """-v info, -vv debug; to stderr, through rich on a terminal, one plain line per record
    otherwise (a log collector must not get wrapped or boxed records)."""
    level = logging.WARNING - 10 * min(verbose, 2)
    handler: logging.Handler
    if err_console.is_terminal:
        handler = RichHandler(console=err_console)
        fmt = "%(message)s"
    else:
        handler = logging.StreamHandler(sys.stderr)
        fmt = LOG_FORMAT
    logging.basicConfig(level=level, format=fmt, handlers=[handler])
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(level if verbose >= 2 else logging.WARNING)


PROGRAM = "softplace"  # the command's name in messages, however it was started


def run(group: click.Group, args: list[str] | None = None) -> None:
    """Run ``group`` as the program (``args``, default the command line): exit codes
    through, errors on one line."""
    try:
        # without standalone mode click hands back a command's ctx.exit(code)
        code = group.main(args, prog_name=PROGRAM, standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except click.UsageError as err:
        # one line, as every other error: the command and its complaint, then where to look
        where = err.ctx.command_path if err.ctx is not None else PROGRAM
        error_line(f"{where}: {err.format_message()} (see: {where} --help)")
        sys.exit(err.exit_code)
    except click.ClickException as err:
        error_line(err.format_message())
        sys.exit(err.exit_code)
    except SoftPlaceError as err:
        error_line(str(err))
        sys.exit(2)
