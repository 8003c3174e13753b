"""Frozen descriptions of dashboards, variables, panels and queries.

A panel is one row in ``dashboards/panels.py``; ``dashboards/build.py`` turns the rows into
grafana-foundation-sdk builders and those into Grafana's JSON. Each query also says what its
result must look like (which columns are numbers, which are text), so the query test checks
the same table the dashboards use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

PanelType = Literal["timeseries", "stat", "bargauge", "table", "heatmap"]
ResultFormat = Literal["time_series", "table"]
ColumnType = Literal["number", "string", "bool"]
ReduceCalc = Literal["lastNotNull", "last", "mean", "sum", "min", "max"]
BarDisplay = Literal["basic", "gradient", "lcd"]
DrawStyle = Literal["line", "bars", "points"]
StackingMode = Literal["none", "normal", "percent"]

DATASOURCE_UID = "softplace-influxdb"
DATASOURCE_NAME = "SoftPlace InfluxDB"
DATASOURCE_TYPE = "influxdb"
DATASOURCE_MIN_INTERVAL = "10s"  # jsonData.timeInterval: the raw readings' finest step

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def frozen(mapping: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, slots=True)
class Query:
    """One InfluxQL target. ``text`` is the template Grafana expands.

    ``columns`` names result columns whose type is not a number (the default for every
    column but ``time``); the query test holds the result to it.
    """

    text: str
    format: ResultFormat = "time_series"
    alias: str = ""
    columns: Mapping[str, ColumnType] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class ValueText:
    """A value mapping: a cell holding ``value`` shows ``text`` on a ``color`` background."""

    value: str
    text: str
    color: str


@dataclass(frozen=True, slots=True)
class Override:
    """Field settings for one column (matched by name): its unit, or text for its values."""

    field: str
    unit: str | None = None
    texts: tuple[ValueText, ...] = ()


@dataclass(frozen=True, slots=True)
class Transform:
    """A Grafana transformation; ``options`` are the transformer's own (free-form in Grafana)."""

    id: str
    options: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Panel:
    """A dashboard panel: what it asks, how it shows it."""

    key: str  # stable within its dashboard; the panel id derives from the row's position
    title: str
    type: PanelType
    queries: tuple[Query, ...]
    unit: str = "short"
    description: str = ""
    width: int = 12
    height: int = 8
    decimals: int | None = None
    min: float | None = None
    max: float | None = None
    min_interval: str | None = None  # Grafana's panel "interval" (lower bound of $__interval)
    time_from: str | None = None  # relative time override, e.g. "7d"
    thresholds: tuple[tuple[float | None, str], ...] = ((None, "green"),)
    calc: ReduceCalc = "lastNotNull"  # stat, bargauge: how a series becomes one value
    display: BarDisplay = "gradient"  # bargauge
    draw: DrawStyle | None = None  # timeseries; None = Grafana's default (lines)
    stacking: StackingMode | None = None  # timeseries
    scheme: str = "Oranges"  # heatmap colour scheme
    overrides: tuple[Override, ...] = ()
    transformations: tuple[Transform, ...] = ()


@dataclass(frozen=True, slots=True)
class Variable:
    """A ``query`` template variable answered by InfluxQL (``SHOW TAG VALUES ...``)."""

    name: str
    label: str
    query: str
    multi: bool = True
    include_all: bool = True
    all_value: str | None = ".*"
    default: str | None = None  # the value selected when the dashboard opens


@dataclass(frozen=True, slots=True)
class Dashboard:
    uid: str
    title: str
    description: str
    variables: tuple[Variable, ...]
    panels: tuple[Panel, ...]
    time_from: str = "now-24h"
    refresh: str = ""
    tags: tuple[str, ...] = ("softplace",)

    @property
    def filename(self) -> str:
        return f"{self.uid.removeprefix('softplace-')}.json"
