"""The ``gateway:`` section of the settings file (see ``gateway/README.md``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from softplace.plausibility import DEFAULT_COUNT_BOUND_FACTOR, DEFAULT_MAX_FUTURE_S
from softplace.settings import LocalHolding, MqttSettings, StageSection


class GatewaySettings(StageSection):
    site: str | None = Field(default=None, description="the site this gateway serves")
    state_dir: Path = Field(
        default=Path(".softplace/gateway"), description="outbox and dedupe state (on disk)"
    )
    upstream: MqttSettings | None = Field(
        default=None, description="central broker; omitted = the site broker (single building)"
    )
    max_future_s: float = Field(
        default=DEFAULT_MAX_FUTURE_S, gt=0, description="readings further ahead: rejected"
    )
    max_age_s: float = Field(
        default=7 * 24 * 3600, gt=0, description="older readings (replayed buffers) are rejected"
    )
    count_bound_factor: float = Field(
        default=DEFAULT_COUNT_BOUND_FACTOR, ge=1,
        description="count above capacity x factor + 2 is implausible",
    )
    sensor_stale_s: float = Field(
        default=900, gt=0, description="a sensor silent this long stops counting in its room"
    )
    dedupe_keys_per_device: int = Field(default=4096, ge=16)
    upstream_ack_timeout_s: float = Field(
        default=30, gt=0, le=3600, description="a batch ingest has not acknowledged this long "
        "is sent again (the wait doubles per attempt, up to 8 times this)",
    )
    client_id: str | None = Field(
        default=None, description="MQTT client id prefix; default softplace-gateway-<site>. "
        "Stable across restarts: the broker keeps the gateway's session under it",
    )

    def local_holdings(self) -> list[LocalHolding]:
        return [LocalHolding(
            what="gateway outbox and dedupe state",
            description="Room readings waiting for the central broker; recent (device, boot,"
            " seq) keys to drop redelivered readings.",
            keys=["device", "boot", "seq"], fields=["count: int"],
            where=f"gateway disk, {self.state_dir}",
            retention="until forwarded; dedupe keys bounded to"
            f" {self.dedupe_keys_per_device} per device",
            recipients=["operator: facilities"],
            personal_data="Transient, on the site; device identity never leaves the gateway with"
            " a count.",
        )]
