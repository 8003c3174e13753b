"""Storage behind one small interface: InfluxDB in production, SQLite embedded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from softplace.storage.base import DEFAULT_SQLITE_PATH, CountColumns, RetentionPolicy, Sample, Store

if TYPE_CHECKING:
    from softplace.settings import KernelSettings

__all__ = ["CountColumns", "RetentionPolicy", "Sample", "Store", "open_store"]


def open_store(
    settings: KernelSettings, *, apply_retention: bool = True, create: bool = False
) -> Store:
    """The configured backend, with the retention policies applied (idempotent).

    Only writers that bring data of their own (ingest, import) pass ``create=True``; every
    other command refuses a missing SQLite file rather than reading an empty new one. The
    default directory (``.softplace``) is created for them; a configured one must exist.
    """
    store: Store
    if settings.storage.backend == "influxdb":
        from softplace.storage.influx import InfluxStore

        store = InfluxStore(settings.influxdb)
    else:
        from softplace.storage.sqlite import SqliteStore

        path = settings.storage.sqlite_path
        if create and path == DEFAULT_SQLITE_PATH:
            path.parent.mkdir(parents=True, exist_ok=True)
        store = SqliteStore(path, create=create)
    if apply_retention:
        store.apply_retention(settings.retention.policies())
    return store
