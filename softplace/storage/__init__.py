"""Storage behind one small interface: InfluxDB in production, SQLite embedded."""

from softplace.storage.base import Sample, Store

__all__ = ["Sample", "Store"]
