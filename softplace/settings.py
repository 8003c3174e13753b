"""Settings: one pydantic model, read from a YAML file and then from the environment.

``SOFTPLACE_CONFIG`` (or ``--config``) names the file; any option can be overridden by an
environment variable ``SOFTPLACE_<SECTION>__<OPTION>``, e.g. ``SOFTPLACE_INFLUXDB__URL``.
Errors name the file, the line and the option. The committed sample is
``softplace/samples/softplace.yaml``.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from detector.settings import DetectorSettings
from softplace.errors import ConfigError
from softplace.privacy.settings import PrivacySettings
from softplace.schema import Family
from softplace.storage.base import RetentionPolicy
from softplace.yamlconfig import Loc, format_validation_error, load_yaml_with_lines

ENV_PREFIX = "SOFTPLACE_"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MqttSettings(_Section):
    url: str = Field(default="mqtt://127.0.0.1:1883", description="mqtt:// or mqtts://host:port")
    username: str | None = None
    password: SecretStr | None = None
    tls_ca_file: Path | None = Field(default=None, description="CA bundle for mqtts://")
    protocol: Literal["5", "3.1.1"] = Field(
        default="5", description="MQTT 5 is needed for shared subscriptions"
    )
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    session_expiry_s: int = Field(
        default=7 * 24 * 3600, ge=0, description="how long the broker keeps an offline session"
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
            raise ValueError(f"{value!r} must look like mqtt://host:1883 or mqtts://host:8883")
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"


class InfluxSettings(_Section):
    url: str = "http://127.0.0.1:8086"
    database: str = Field(default="softplace", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    verify_tls: bool = True
    manage_retention: bool = Field(
        default=True,
        description="create/alter retention policies at start-up; false for InfluxDB 2.x/3, "
        "whose v1 API cannot (their buckets hold the retention)",
    )


class StorageSettings(_Section):
    backend: Literal["sqlite", "influxdb"] = "sqlite"
    sqlite_path: Path = Path(".softplace/softplace.sqlite")


class RetentionSettings(_Section):
    raw_days: int = Field(default=30, ge=1, description="room counts, sensor health, dead letters")
    derived_days: int = Field(default=395, ge=1, description="intervals, daily measures, breaches")
    aggregates_days: int = Field(default=0, ge=0, description="anonymised releases; 0 = forever")

    def policies(self) -> list[RetentionPolicy]:
        return [
            RetentionPolicy(Family.RAW, self.raw_days),
            RetentionPolicy(Family.DERIVED, self.derived_days),
            RetentionPolicy(Family.AGGREGATES, self.aggregates_days),
        ]


class GatewaySettings(_Section):
    site: str | None = Field(default=None, description="the site this gateway serves")
    state_dir: Path = Field(
        default=Path(".softplace/gateway"), description="outbox and dedupe state (on disk)"
    )
    upstream: MqttSettings | None = Field(
        default=None, description="central broker; omitted = the site broker (single building)"
    )
    max_future_s: float = Field(default=300, gt=0, description="readings further ahead: rejected")
    max_age_s: float = Field(
        default=7 * 24 * 3600, gt=0, description="older readings (replayed buffers) are rejected"
    )
    count_bound_factor: float = Field(
        default=2.0, ge=1, description="count above capacity x factor + 2 is implausible"
    )
    sensor_stale_s: float = Field(
        default=900, gt=0, description="a sensor silent this long stops counting in its room"
    )
    dedupe_keys_per_device: int = Field(default=4096, ge=16)
    client_id: str | None = Field(
        default=None, description="MQTT client id prefix; default softplace-gateway-<site>. "
        "Stable across restarts: the broker keeps the gateway's session under it",
    )


class IngestSettings(_Section):
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


class Settings(_Section):
    registry: Path | None = Field(default=None, description="site registry YAML; None = sample")
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    influxdb: InfluxSettings = Field(default_factory=InfluxSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    detector: DetectorSettings = Field(
        default_factory=DetectorSettings, description="see detector/README.md"
    )
    privacy: PrivacySettings = Field(
        default_factory=PrivacySettings, description="see docs/privacy.md"
    )


SAMPLE_SETTINGS = Path(__file__).with_name("samples") / "softplace.yaml"


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``SOFTPLACE_A__B=v`` -> ``{"a": {"b": "v"}}``; ``null`` or an empty value is None.

    Only names whose first part is a settings section or option count, so deployment
    variables that merely share the prefix (``SOFTPLACE_SITE`` in a compose file) pass by.
    """
    result: dict[str, Any] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        path = name[len(ENV_PREFIX):].lower().split("__")
        if path[0] not in Settings.model_fields or path[0] == "config":
            continue
        value: Any = None if raw.strip().lower() in {"", "null", "none"} else raw
        if isinstance(value, str) and value.lstrip()[:1] in {"{", "["}:
            try:  # maps and lists, e.g. SOFTPLACE_PRIVACY__BUDGETS='{"regulator": 6}'
                value = json.loads(value)
            except json.JSONDecodeError as err:
                raise ConfigError(f"{name}: not valid JSON: {err}") from err
        node = result
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name}: {ENV_PREFIX}{part.upper()} is set too, as a value")
            node = child
        if isinstance(node.get(path[-1]), dict):
            raise ConfigError(f"{name}: conflicts with {name}__... variables")
        node[path[-1]] = value
    return result


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    path: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """File (``path`` or ``$SOFTPLACE_CONFIG``, optional) overlaid with environment variables."""
    environ = os.environ if environ is None else environ
    if path is None and environ.get(f"{ENV_PREFIX}CONFIG"):
        path = Path(environ[f"{ENV_PREFIX}CONFIG"])
    data: Any = {}
    lines: dict[Loc, int] = {}
    source = "<environment>"
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise ConfigError(f"{path}: cannot read: {err.strerror}") from err
        data, lines = load_yaml_with_lines(text, str(path))
        source = str(path)
        if not isinstance(data, dict):
            raise ConfigError(f"{path}:1: settings must be a mapping of sections")
    data = _merge(data, _env_overrides(environ))
    try:
        settings = Settings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source, lines)) from err
    if path is not None and settings.registry is not None and not settings.registry.is_absolute():
        settings = settings.model_copy(update={"registry": path.parent / settings.registry})
    return settings
