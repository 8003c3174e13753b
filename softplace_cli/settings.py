"""The whole settings model: the kernel's shared sections plus each stage's own."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import Field

from bookings.settings import BookingsSettings
from dashboards.settings import DashboardsSettings
from detector.settings import DetectorSettings
from gateway.settings import GatewaySettings
from ingest.settings import IngestSettings
from privacy.settings import PrivacySettings
from provision.settings import ProvisionSettings
from softplace import settings as kernel
from web.settings import WebSettings


class Settings(kernel.KernelSettings):
    gateway: GatewaySettings = Field(
        default_factory=GatewaySettings, description="see gateway/README.md"
    )
    ingest: IngestSettings = Field(
        default_factory=IngestSettings, description="see ingest/README.md"
    )
    detector: DetectorSettings = Field(
        default_factory=DetectorSettings, description="see detector/README.md"
    )
    privacy: PrivacySettings = Field(
        default_factory=PrivacySettings, description="see privacy/README.md"
    )
    dashboards: DashboardsSettings = Field(
        default_factory=DashboardsSettings, description="see dashboards/README.md"
    )
    web: WebSettings = Field(default_factory=WebSettings, description="see web/README.md")
    bookings: BookingsSettings = Field(
        default_factory=BookingsSettings, description="see bookings/README.md"
    )
    provision: ProvisionSettings = Field(
        default_factory=ProvisionSettings, description="see provision/README.md"
    )


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings file (optional) overlaid with ``SOFTPLACE_*`` variables, validated."""
    return kernel.load_settings(Settings, path, environ)
