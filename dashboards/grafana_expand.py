"""Expand a Grafana InfluxQL query template the way Grafana's InfluxDB data source does.

Pure functions, no I/O: the dashboard query test uses them to run every panel's query
against a real influxd without a Grafana server. What is mirrored (Grafana 9 to 11):

- template variables ``$var``, ``${var}``, ``${var:raw}``, ``${var:regex}``, ``[[var]]``;
  values of a multi-value or include-all variable are regex-escaped and joined as
  ``(a|b)``, the "All" option becomes the variable's ``allValue`` verbatim (or every
  option, escaped and joined); a single-value variable is escaped only inside a
  ``=~ /.../`` regex literal (``interpolateQueryExpr``);
- ``$timeFilter``: ``time >= now() - 7d`` for a relative range ending now, absolute
  ``time >= <ms>ms and time <= <ms>ms`` otherwise (``getTimeFilter``/``getInfluxTime``);
- ``$__interval``/``$interval``/``$__interval_ms``: range divided by max data points,
  rounded to Grafana's steps, raised to the panel's or data source's minimum interval
  (``rangeutil.calculateInterval``, ``roundInterval``, ``secondsToHms``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

ALL = "$__all"

_UNIT_MS = {
    "ms": 1,
    "s": 1000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
    "M": 2_592_000_000,
    "y": 31_536_000_000,
}
_DURATION = re.compile(r"^>?(\d+(?:\.\d+)?)(ms|[smhdwMy])$")
_RELATIVE = re.compile(r"^now-(\d+)([smhdwMy])$")
_INFLUX_RELATIVE = re.compile(r"^now-(\d+)([dhms])$")
_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?::([^}]+))?\}")
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")
_REGEX_LITERAL = re.compile(r"=~\s*/((?:[^/\\\n]|\\.)*)/")

# Grafana's roundInterval: (upper bound exclusive, rounded interval), both in ms.
_ROUNDING: tuple[tuple[int, int], ...] = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
    (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000),
    (45000, 30000), (90000, 60000), (210000, 120000), (450000, 300000),
    (750000, 600000), (1050000, 900000), (1500000, 1200000), (2700000, 1800000),
    (5400000, 3600000), (9000000, 7200000), (16200000, 10800000), (32400000, 21600000),
    (86400000, 43200000), (604800000, 86400000), (1814400000, 604800000),
    (3628800000, 2592000000),
)
_ONE_YEAR_MS = 31_536_000_000


@dataclass(frozen=True, slots=True)
class Variable:
    """A dashboard variable's current selection, with the flags that decide its format."""

    name: str
    values: tuple[str, ...]  # the selected values; (ALL,) for the "All" option
    multi: bool = True
    include_all: bool = True
    all_value: str | None = None  # custom "All" value, used verbatim
    options: tuple[str, ...] = ()  # every option; "All" expands to these without all_value

    @property
    def is_all(self) -> bool:
        return self.values == (ALL,)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A dashboard time range as Grafana keeps it raw: ``"now-7d"``/``"now"`` or epoch ms."""

    start: str | int = "now-6h"
    end: str | int = "now"

    def bounds_ms(self, now_ms: int) -> tuple[int, int]:
        return _to_ms(self.start, now_ms), _to_ms(self.end, now_ms)


def parse_duration_ms(text: str) -> int:
    """``"10s"``, ``">1m"``, ``"1d"``, ``"250ms"`` -> milliseconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"not a Grafana interval: {text!r} (like 10s, 1m, 1d)")
    return round(float(match.group(1)) * _UNIT_MS[match.group(2)])


def _to_ms(value: str | int, now_ms: int) -> int:
    if isinstance(value, int):
        return value
    if value == "now":
        return now_ms
    match = _RELATIVE.match(value)
    if not match:
        raise ValueError(f"unsupported time {value!r}: use now, now-<n><unit> or epoch ms")
    return now_ms - int(match.group(1)) * _UNIT_MS[match.group(2)]


def influx_time(value: str | int, now_ms: int) -> str:
    """Grafana's ``getInfluxTime``: relative d/h/m/s stay relative, the rest is absolute ms."""
    if value == "now":
        return "now()"
    if isinstance(value, str):
        match = _INFLUX_RELATIVE.match(value)
        if match:
            return f"now() - {match.group(1)}{match.group(2)}"
    return f"{_to_ms(value, now_ms)}ms"


def time_filter(time_range: TimeRange, now_ms: int) -> str:
    """What ``$timeFilter`` becomes."""
    start = influx_time(time_range.start, now_ms)
    end = influx_time(time_range.end, now_ms)
    if end == "now()":
        return f"time >= {start}"
    return f"time >= {start} and time <= {end}"


def round_interval(interval_ms: float) -> int:
    for bound, rounded in _ROUNDING:
        if interval_ms < bound:
            return rounded
    return _ONE_YEAR_MS


def seconds_to_hms(seconds: float) -> str:
    """Grafana's ``secondsToHms``: the largest whole unit only (``90`` -> ``"1m"``)."""
    years = int(seconds // 31_536_000)
    if years:
        return f"{years}y"
    rest = seconds % 31_536_000
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")):
        amount = int(rest // size)
        if amount:
            return f"{amount}{unit}"
        rest %= size
    milliseconds = int(seconds * 1000)
    if milliseconds:
        return f"{milliseconds}ms"
    return "less than a millisecond"


def calculate_interval(
    range_ms: int, max_data_points: int, min_interval: str | None = None
) -> tuple[str, int]:
    """``$__interval`` and ``$__interval_ms`` for a range and the panel's max data points."""
    if max_data_points <= 0:
        raise ValueError("max_data_points must be positive")
    interval_ms = round_interval(range_ms / max_data_points)
    if min_interval:
        interval_ms = max(interval_ms, parse_duration_ms(min_interval))
    return seconds_to_hms(interval_ms / 1000), interval_ms


def regex_escape(value: str) -> str:
    """Grafana's ``escapeRegex`` (``kbn.regexEscape``)."""
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def format_variable(variable: Variable, *, in_regex: bool, fmt: str | None = None) -> str:
    """The text a variable becomes in an InfluxQL query (``interpolateQueryExpr``)."""
    if variable.is_all and variable.all_value is not None:
        return variable.all_value
    values: Sequence[str] = variable.options if variable.is_all else variable.values
    if fmt == "raw":
        return ",".join(values)
    if len(values) == 1 and _is_number(values[0]):
        return values[0]
    if variable.multi or variable.include_all or fmt == "regex":
        escaped = [regex_escape(v) for v in values]
        return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
    value = values[0] if values else ""
    return regex_escape(value) if in_regex else value


def _regex_spans(query: str) -> list[tuple[int, int]]:
    return [match.span(1) for match in _REGEX_LITERAL.finditer(query)]


@dataclass(frozen=True, slots=True)
class Expansion:
    """Everything a panel query needs besides its text."""

    variables: Mapping[str, Variable]
    time_range: TimeRange
    now_ms: int
    max_data_points: int = 1000
    min_interval: str | None = None  # the panel's "interval", else the data source's


def expand(query: str, context: Expansion) -> str:
    """The query Grafana sends to InfluxDB for this template, selection and range."""
    start_ms, end_ms = context.time_range.bounds_ms(context.now_ms)
    interval, interval_ms = calculate_interval(
        end_ms - start_ms, context.max_data_points, context.min_interval
    )
    builtins = {
        "timeFilter": time_filter(context.time_range, context.now_ms),
        "__timeFilter": time_filter(context.time_range, context.now_ms),
        "__interval": interval,
        "interval": interval,
        "__interval_ms": str(interval_ms),
        "__from": str(start_ms),
        "__to": str(end_ms),
    }
    spans = _regex_spans(query)

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        fmt = match.group(3) or match.group(5)
        if name in builtins:
            return builtins[name]
        variable = context.variables.get(name)
        if variable is None:
            return match.group(0)  # Grafana leaves unknown variables as they are
        in_regex = any(lo <= match.start() < hi for lo, hi in spans)
        return format_variable(variable, in_regex=in_regex, fmt=fmt)

    return _VARIABLE.sub(replace, query)
