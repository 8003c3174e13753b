"""Settings: one pydantic model, read from a YAML file and then from the environment.

The kernel defines the shared sections (registry, broker, database, storage, retention);
each stage defines its own section (``gateway/settings.py``, ...) and the application
(``softplace_cli``) assembles them into one model, validated once at start-up.

``SOFTPLACE_CONFIG`` (or ``--config``) names the file; any option can be overridden by an
environment variable ``SOFTPLACE_<SECTION>__<OPTION>``, e.g. ``SOFTPLACE_INFLUXDB__URL``.
Errors name the file, the line and the option. The committed sample is
``softplace_cli/samples/softplace.yaml``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import EnvSettingsSource, SettingsError
from pydantic_settings.sources.utils import parse_env_vars

from softplace.errors import ConfigError
from softplace.schema import Family
from softplace.storage.base import DEFAULT_SQLITE_PATH, RetentionPolicy
from softplace.yamlconfig import Loc, format_validation_error, load_yaml_with_lines

ENV_PREFIX = "SOFTPLACE_"


class Section(BaseModel):
    """One section of the settings file: frozen, and every option it does not know refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class LocalHolding(Section):
    """Data a stage keeps on its own disk, outside the store: a row of the data inventory."""

    what: str
    description: str
    keys: list[str]
    fields: list[str]
    where: str
    retention: str
    recipients: list[str]
    personal_data: str


LOCAL_DIR = Path(".softplace")  # where local files go when there is no settings file


def beside_config(path: Path | None, config: Path | None, name: str) -> Path:
    """``path`` when configured, else ``name`` next to the settings file (or in
    ``.softplace`` without one): a stage's local file never depends on the working
    directory once a settings file is in use."""
    if path is not None:
        return path
    return (config.parent if config is not None else LOCAL_DIR) / name


class StageSection(Section):
    """A stage's own section; it declares what it keeps on disk for the privacy inventory."""

    def local_holdings(self) -> list[LocalHolding]:
        return []

    def holding_findings(self, now_ms: int, config: Path | None) -> list[tuple[str, str]]:
        """(holding, problem) for local data kept past its retention; the privacy audit
        reports them (a stage with a retention of its own overrides this)."""
        return []

    def holding_deletions(self, config: Path | None) -> list[tuple[str, int, str]]:
        """(holding, when in ms, what was deleted) for each deletion its retention made:
        the privacy audit and the officer's report list them."""
        return []


class MqttSettings(Section):
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


class InfluxSettings(Section):
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


class StorageSettings(Section):
    backend: Literal["sqlite", "influxdb"] = "sqlite"
    sqlite_path: Path = DEFAULT_SQLITE_PATH


class RetentionSettings(Section):
    raw_days: int = Field(default=30, ge=1, description="room counts, sensor health, dead letters")
    derived_days: int = Field(default=395, ge=1, description="intervals, daily measures, breaches")
    aggregates_days: int = Field(default=0, ge=0, description="anonymised releases; 0 = forever")

    def policies(self) -> list[RetentionPolicy]:
        return [
            RetentionPolicy(Family.RAW, self.raw_days),
            RetentionPolicy(Family.DERIVED, self.derived_days),
            RetentionPolicy(Family.AGGREGATES, self.aggregates_days),
        ]


class ObserveSettings(Section):
    host: str = Field(default="127.0.0.1", description="address /metrics and the health "
                      "endpoints listen on; 0.0.0.0 in a container")
    port: int | None = Field(default=None, ge=0, le=65535,
                             description="their port; null = off, 0 = any free port")
    outbox_ready_max: int = Field(default=10000, ge=1,
                                  description="outbox rows at which /readyz turns not-ready")




SectionT = TypeVar("SectionT", bound=StageSection)


class KernelSettings(Section):
    """What every stage shares. The application subclasses it with the stages' sections."""

    registry: Path | None = Field(default=None, description="site registry YAML; None = sample")
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    influxdb: InfluxSettings = Field(default_factory=InfluxSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    observe: ObserveSettings = Field(default_factory=ObserveSettings)

    def stage_sections(self) -> Iterator[StageSection]:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, StageSection):
                yield value

    def section(self, kind: type[SectionT]) -> SectionT:
        """The stage section of this type; a model without one is a wiring error."""
        for value in self.stage_sections():
            if isinstance(value, kind):
                return value
        raise ConfigError(f"the settings model {type(self).__name__} has no {kind.__name__}"
                          " section")


SettingsT = TypeVar("SettingsT", bound=KernelSettings)




# Variables that share the prefix but are no setting: the compose file's own
# (``SOFTPLACE_SITE`` in ``.env``, the image tag) and the settings file's path.
DEPLOYMENT_VARIABLES = frozenset({"SOFTPLACE_CONFIG", "SOFTPLACE_SITE", "SOFTPLACE_IMAGE"})
_NONE_TEXT = "null"


class _EnvSource(EnvSettingsSource):
    """pydantic-settings' environment parsing over a given mapping (tests pass their own)."""

    def __init__(self, model: type[BaseModel], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(
            model,  # type: ignore[arg-type]  # reads fields only; a plain model does
            case_sensitive=False, env_prefix=ENV_PREFIX, env_nested_delimiter="__",
            env_parse_none_str=_NONE_TEXT,
        )

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, False, False, _NONE_TEXT)


def _setting_names(model: type[BaseModel], prefix: str = ENV_PREFIX) -> Iterator[str]:
    for name, info in model.model_fields.items():
        env_name = f"{prefix}{name.upper()}"
        yield env_name
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            yield from _setting_names(info.annotation, f"{env_name}__")


def _check_names(model: type[BaseModel], environ: Mapping[str, str]) -> None:
    """Every ``SOFTPLACE_*`` variable must name an option: a typo is refused, naming it,
    instead of silently leaving the default in force."""
    known = set(_setting_names(model))
    sections = {
        f"{ENV_PREFIX}{name.upper()}" for name, info in model.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
    }
    for raw_name in sorted(environ):
        name = raw_name.upper()
        if not name.startswith(ENV_PREFIX) or name in DEPLOYMENT_VARIABLES:
            continue
        if name in sections:
            raise ConfigError(f"{raw_name}: names the section {name[len(ENV_PREFIX):].lower()};"
                              f" set its options as {name}__<OPTION>")
        # below a known option that is a mapping (privacy budgets), any key is the data's
        if name in known or any(name.startswith(f"{k}__") and k not in sections
                                for k in known):
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise ConfigError(f"{raw_name}: no such setting{hint}")


def _env_overrides(model: type[KernelSettings], environ: Mapping[str, str]) -> dict[str, Any]:
    """``SOFTPLACE_A__B=v`` -> ``{"a": {"b": "v"}}`` through pydantic-settings; ``null`` or
    an empty value is None, a map or list is JSON (``SOFTPLACE_PRIVACY__BUDGETS='{...}'``)."""
    _check_names(model, environ)
    values = {
        name: _NONE_TEXT if value.strip().lower() in {"", "null", "none"} else value
        for name, value in environ.items()
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in DEPLOYMENT_VARIABLES
    }
    try:
        return dict(_EnvSource(model, values)())
    except SettingsError as err:
        raise ConfigError(f"environment: {err}") from err


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_settings(
    model: type[SettingsT], path: Path | None = None, environ: Mapping[str, str] | None = None
) -> SettingsT:
    """File (``path`` or ``$SOFTPLACE_CONFIG``, optional) overlaid with environment variables,
    validated as ``model``."""
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
    data = _merge(data, _env_overrides(model, environ))
    try:
        settings = model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source, lines)) from err
    if path is not None and settings.registry is not None and not settings.registry.is_absolute():
        settings = settings.model_copy(update={"registry": path.parent / settings.registry})
    return settings
