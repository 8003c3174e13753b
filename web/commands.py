"""``softplace web`` serves the app; ``softplace web user ...`` manages its accounts."""

from __future__ import annotations

import sys

import click

from softplace import observe
from softplace.cli import AppContext, console, pass_app
from softplace.schema import SeriesName
from softplace.settings import KernelSettings
from web.settings import WebSettings

ROLES = ("facilities", "manager", "privacy_officer", "regulator")


@click.group(invoke_without_command=True)
@click.option("--host", default=None, help="listen address (default: web.host)")
@click.option("--port", type=int, default=None, help="TCP port (default: web.port)")
@click.pass_context
def web(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the web app (reports, live view, privacy, releases, JSON API)."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from softplace.registry import load_registry
    from web.app import create_app

    app_ctx = ctx.find_object(AppContext)
    if app_ctx is None:  # pragma: no cover - the softplace group always sets it
        raise click.UsageError("run as `softplace web`")
    settings = app_ctx.settings
    section = settings.section(WebSettings)
    registry = observe.new_registry()
    app = create_app(settings, load_registry(settings.registry), config=app_ctx.config,
                     metrics=observe.web_metrics(registry))
    host, port = host or section.host, port or section.port
    console.print(f"SoftPlace web app on http://{host}:{port}/ (Ctrl-C stops)")
    with observe.serving(observe.serve(settings.observe, registry, ready_checks(settings))):
        uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=False)


def ready_checks(settings: KernelSettings) -> dict[str, observe.ReadyCheck]:
    """/readyz of the web app: its store opens (never created) and answers a query."""
    from softplace.storage import open_store

    def store_answers() -> None:
        store = open_store(settings, apply_retention=False)
        try:
            store.oldest_ms(SeriesName.ROOM_COUNT)
        finally:
            store.close()

    return {"store": observe.succeeds(store_answers)}


@web.group()
def user() -> None:
    """Accounts of the web app (in web.users_path)."""


def _password(confirm: bool) -> str:
    if not sys.stdin.isatty():  # piped: the first line is the password
        return sys.stdin.readline().rstrip("\r\n")
    return str(click.prompt("password", hide_input=True, confirmation_prompt=confirm))


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--replace", is_flag=True, help="reset an existing account's role and password")
@pass_app
def user_add(app: AppContext, name: str, role: str, replace: bool) -> None:
    """Create account NAME; the password is prompted for, or read from standard input."""
    from web.users import Role, UserStore

    path = app.section(WebSettings).users_file(app.config)
    with UserStore(path) as users:
        users.add(name, Role(role), _password(confirm=True), replace=replace)
    console.print(f"user {name} ({role}) saved in {path}")


@user.command("list")
@pass_app
def user_list(app: AppContext) -> None:
    """The accounts and their roles."""
    from web.users import UserStore

    with UserStore(app.section(WebSettings).users_file(app.config)) as users:
        for account in users.users():
            click.echo(f"{account.name}\t{account.role.value}")


@user.command("remove")
@click.argument("name")
@pass_app
def user_remove(app: AppContext, name: str) -> None:
    """Delete account NAME and close its sessions."""
    from web.users import UserStore

    with UserStore(app.section(WebSettings).users_file(app.config)) as users:
        if not users.remove(name):
            raise click.UsageError(f"no user {name!r}")
    console.print(f"user {name} removed")
