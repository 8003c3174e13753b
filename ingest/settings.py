"""The ``ingest:`` section of the settings file (see ``ingest/README.md``)."""

from __future__ import annotations

import socket

from pydantic import Field

from softplace.settings import StageSection


class IngestSettings(StageSection):
    shared_group: str | None = Field(
        default="ingest", description="MQTT 5 shared-subscription group; null = plain subscription"
    )
    client_id: str = Field(
        default_factory=lambda: f"softplace-ingest-{socket.gethostname()}",
        description="stable per instance: the broker keeps its session (and its share of a "
        "shared subscription) under this id",
    )
    batch_size: int = Field(default=500, ge=1, le=50_000)
    batch_interval_s: float = Field(default=0.5, gt=0, le=60)
    max_backoff_s: float = Field(default=30.0, gt=0)
    heartbeat_s: float = Field(
        default=300, ge=0, le=24 * 3600,
        description="change-only storage: an unchanged room count is stored at least once per "
        "heartbeat window (0 = every reading); at most half the detector's heartbeat_s",
    )
