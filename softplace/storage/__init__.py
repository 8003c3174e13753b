"""Storage behind one small interface: InfluxDB in production, SQLite embedded."""

from __future__ import annotations

from typing import TYPE_CHECKING

from softplace.storage.base import CountColumns, RetentionPolicy, Sample, Store

if TYPE_CHECKING:
    from softplace.settings import KernelSettings

__all__ = ["CountColumns", "RetentionPolicy", "Sample", "Store", "open_store"]


def open_store(settings: KernelSettings, *, apply_retention: bool = True) -> Store:
    """The configured backend, with the retention policies applied (idempotent)."""
    store: Store
    if settings.storage.backend == "influxdb":
        from softplace.storage.influx import InfluxStore

        store = InfluxStore(settings.influxdb)
    else:
        from softplace.storage.sqlite import SqliteStore

        store = SqliteStore(settings.storage.sqlite_path)
    if apply_retention:
        store.apply_retention(settings.retention.policies())
    return store
