"""SoftPlace's exception hierarchy: foreign errors are translated at the boundary."""

from __future__ import annotations


class SoftPlaceError(Exception):
    """Base of every error SoftPlace raises on purpose."""


class ConfigError(SoftPlaceError):
    """A configuration or registry file is wrong; the message names file, line and field."""


class UnknownNameError(SoftPlaceError, KeyError):
    """A site, room or other registry name that does not exist (the message lists them)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownSeriesError(UnknownNameError):
    """A series name not in ``softplace.schema.SERIES`` (a typo): every store refuses to
    write or query it, rather than answering an empty result."""


class InvalidRangeError(SoftPlaceError, ValueError):
    """A time range that ends before it starts."""


class MessageError(SoftPlaceError):
    """An MQTT payload is rejected; ``reason`` is the dead-letter reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class StorageError(SoftPlaceError):
    """The store could not durably write or answer; callers retry with backoff."""


class RejectedWriteError(StorageError):
    """The store refused some points for good (e.g. InfluxDB's HTTP 400): retrying cannot help."""


class PrivacyError(SoftPlaceError):
    """A release would break a privacy rule (budget, suppression); nothing was released."""
