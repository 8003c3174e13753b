"""``softplace ingest``: run the central writer."""

from __future__ import annotations

import click

from ingest.service import Ingest
from ingest.settings import IngestSettings
from softplace import observe
from softplace.cli import AppContext, console, pass_app
from softplace.consumer import tune_gc_for_service
from softplace.lifecycle import run_until_signalled
from softplace.registry import load_registry
from softplace.retention import RetentionSchedule
from softplace.settings import ObserveSettings
from softplace.storage import open_store


@click.command("ingest")
@click.option("--site", "sites", multiple=True, help="only these sites (default: all)")
@pass_app
def ingest_command(app: AppContext, sites: tuple[str, ...]) -> None:
    """Write room readings, sensor health and dead letters from MQTT into the store."""
    settings = app.settings
    registry = load_registry(settings.registry)
    store = open_store(settings, create=True)
    service = Ingest(registry, store, settings.mqtt, app.section(IngestSettings),
                     list(sites) or None,
                     retention=RetentionSchedule(store, settings.retention.policies()))
    console.print(f"ingest from {settings.mqtt.url} into {settings.storage.backend}")
    try:
        with observe.serving(serve_metrics(app.settings.observe, service)):
            tune_gc_for_service()
            run_until_signalled(service)
    finally:
        store.close()


def serve_metrics(settings: ObserveSettings, ingest: Ingest) -> observe.ObserveServer | None:
    """/metrics, /healthz and /readyz of ingest, when ``observe.port`` is set: ready while
    the broker is connected and the store takes writes."""
    registry = observe.new_registry()
    observe.consumer_metrics(registry, ingest)
    ingest.metrics = observe.store_metrics(registry)
    ingest.metrics.backoff_seconds.set_function(lambda: ingest.retry_delay_s)
    return observe.serve(settings, registry, {
        "broker": ingest.subscribed.is_set,
        "store": lambda: ingest.accepting,
    })
