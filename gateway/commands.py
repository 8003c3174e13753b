"""``softplace gateway``: run the edge service for one site."""

from __future__ import annotations

import click

from gateway.service import Gateway
from gateway.settings import GatewaySettings
from softplace import observe
from softplace.cli import AppContext, console, pass_app
from softplace.consumer import tune_gc_for_service
from softplace.lifecycle import run_until_signalled
from softplace.registry import load_registry
from softplace.settings import ObserveSettings


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
    with observe.serving(serve_metrics(app.settings.observe, service)):
        tune_gc_for_service()
        run_until_signalled(service)


def serve_metrics(settings: ObserveSettings, gateway: Gateway) -> observe.ObserveServer | None:
    """/metrics, /healthz and /readyz of the gateway, when ``observe.port`` is set: ready
    while both brokers are connected and the outbox is below ``outbox_ready_max``."""
    registry = observe.new_registry()
    observe.consumer_metrics(registry, gateway)
    observe.dead_letter_reasons(registry, gateway.dead_letters.copy)
    observe.gateway_metrics(
        registry, outbox_depth=gateway.outbox.size, outbox_oldest_age_s=gateway.outbox_age_s,
        forwarder_inflight=gateway.inflight_rows, forwarded=lambda: gateway.forwarded,
        parked=lambda: gateway.parked,
    )
    return observe.serve(settings, registry, {
        "site_broker": gateway.subscribed.is_set,
        "upstream": gateway.upstream_connected,
        "outbox": observe.below(gateway.outbox.size, settings.outbox_ready_max),
    })
