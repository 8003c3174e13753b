"""``softplace gateway``: run the edge service for one site."""

from __future__ import annotations

import click

from gateway.service import Gateway
from gateway.settings import GatewaySettings
from softplace.cli import AppContext, console, pass_app
from softplace.lifecycle import run_until_signalled
from softplace.registry import load_registry


@click.command("gateway")
@click.option("--site", help="site id from the registry (default: gateway.site)")
@pass_app
def gateway_command(app: AppContext, site: str | None) -> None:
    """Validate device readings of one site and forward room readings upstream."""
    settings = app.settings
    gateway_settings = app.section(GatewaySettings)
    registry = load_registry(settings.registry)
    site_id = site or gateway_settings.site or registry.sites[0].id
    service = Gateway(registry.site(site_id), settings.mqtt, gateway_settings)
    console.print(f"gateway for [bold]{site_id}[/]: devices from {settings.mqtt.url}, "
                  f"upstream {(gateway_settings.upstream or settings.mqtt).url}")
    run_until_signalled(service)
