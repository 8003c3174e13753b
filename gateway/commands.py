"""``softplace gateway``: run the edge service for one site."""

from __future__ import annotations

import signal
import threading

import click

from gateway.service import Gateway
from softplace.cli import AppContext, cli, console, pass_app
from softplace.registry import load_registry


@cli.command("gateway")
@click.option("--site", help="site id from the registry (default: gateway.site)")
@pass_app
def gateway_command(app: AppContext, site: str | None) -> None:
    """Validate device readings of one site and forward room readings upstream."""
    settings = app.settings
    registry = load_registry(settings.registry)
    site_id = site or settings.gateway.site or registry.sites[0].id
    service = Gateway(registry.site(site_id), settings.mqtt, settings.gateway)
    _stop_on_signals(service.stop_event)
    console.print(f"gateway for [bold]{site_id}[/]: devices from {settings.mqtt.url}, "
                  f"upstream {(settings.gateway.upstream or settings.mqtt).url}")
    service.run_forever()


def _stop_on_signals(event: threading.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: event.set())
