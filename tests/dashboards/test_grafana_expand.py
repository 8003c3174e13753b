"""The Grafana expansion rules the query test relies on, checked on plain values."""

from __future__ import annotations

import pytest

from dashboards.grafana_expand import (
    ALL,
    Expansion,
    TimeRange,
    Variable,
    calculate_interval,
    expand,
    format_variable,
    influx_time,
    parse_duration_ms,
    regex_escape,
    round_interval,
    seconds_to_hms,
    time_filter,
)

NOW = 1_700_000_000_000
DAY = 86_400_000


def _context(**variables: Variable) -> Expansion:
    return Expansion(variables=variables, time_range=TimeRange("now-7d", "now"), now_ms=NOW)


def test_regex_escape_escapes_what_grafana_escapes() -> None:
    assert regex_escape("branch.lyon/a(b)|c*+?^$[]{}\\") == (
        r"branch\.lyon\/a\(b\)\|c\*\+\?\^\$\[\]\{\}\\"
    )
    assert regex_escape("office-1_a") == "office-1_a"


def test_format_multi_value_joins_escaped_values() -> None:
    site = Variable("site", ("branch.lyon", "nantes"))
    assert format_variable(site, in_regex=True) == r"(branch\.lyon|nantes)"
    assert format_variable(Variable("site", ("a.b",)), in_regex=True) == r"a\.b"


def test_format_all_uses_all_value_verbatim_or_every_option() -> None:
    assert format_variable(Variable("room", (ALL,), all_value=".*"), in_regex=True) == ".*"
    every = Variable("room", (ALL,), options=("hall", "meeting.a"))
    assert format_variable(every, in_regex=True) == r"(hall|meeting\.a)"


def test_format_single_value_escapes_only_inside_a_regex() -> None:
    band = Variable("band", ("a.m",), multi=False, include_all=False)
    assert format_variable(band, in_regex=True) == r"a\.m"
    assert format_variable(band, in_regex=False) == "a.m"
    assert format_variable(Variable("n", ("1.5",), multi=False, include_all=False),
                           in_regex=True) == "1.5"


def test_expand_variables_in_every_syntax() -> None:
    context = _context(site=Variable("site", ("b.l",)),
                       band=Variable("band", ("a.m",), multi=False, include_all=False))
    query = ("""SELECT 1 FROM "raw"."x" WHERE "site" =~ /^$site$/ AND "b" = '$band'"""
             " AND \"band\" =~ /^${band}$/ AND [[band]] AND ${site:raw} AND $unknown")
    assert expand(query, context) == (
        r"""SELECT 1 FROM "raw"."x" WHERE "site" =~ /^b\.l$/ AND "b" = 'a.m'"""
        r""" AND "band" =~ /^a\.m$/ AND a.m AND b.l AND $unknown"""
    )


def test_time_filter_relative_and_absolute() -> None:
    assert time_filter(TimeRange("now-7d", "now"), NOW) == "time >= now() - 7d"
    assert time_filter(TimeRange("now-6h", "now-1h"), NOW) == (
        "time >= now() - 6h and time <= now() - 1h"
    )
    assert time_filter(TimeRange(NOW - DAY, NOW), NOW) == (
        f"time >= {NOW - DAY}ms and time <= {NOW}ms"
    )
    # Grafana only keeps d/h/m/s relative; weeks become absolute
    assert influx_time("now-2w", NOW) == f"{NOW - 14 * DAY}ms"
    with pytest.raises(ValueError, match="unsupported time"):
        influx_time("now/d", NOW)


@pytest.mark.parametrize(
    ("interval_ms", "rounded"),
    [(5, 10), (1000, 1000), (1600, 2000), (20_000, 20_000), (100_000, 120_000),
     (3_000_000, 3_600_000), (50_000_000, 43_200_000), (100_000_000, 86_400_000),
     (10**12, 31_536_000_000)],
)
def test_round_interval_follows_grafana_steps(interval_ms: int, rounded: int) -> None:
    assert round_interval(interval_ms) == rounded


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.02, "20ms"), (1, "1s"), (90, "1m"), (3600, "1h"), (86_400, "1d"), (604_800, "7d"),
     (31_536_000, "1y"), (0.0001, "less than a millisecond")],
)
def test_seconds_to_hms_keeps_the_largest_unit(seconds: float, text: str) -> None:
    assert seconds_to_hms(seconds) == text


def test_calculate_interval_uses_range_points_and_minimum() -> None:
    assert calculate_interval(6 * 3_600_000, 960) == ("20s", 20_000)
    assert calculate_interval(6 * 3_600_000, 960, "1m") == ("1m", 60_000)
    assert calculate_interval(30 * DAY, 960, "1d") == ("1d", DAY)
    assert calculate_interval(30 * DAY, 960, ">10s") == ("1h", 3_600_000)
    with pytest.raises(ValueError, match="positive"):
        calculate_interval(DAY, 0)


def test_expand_builtins() -> None:
    context = Expansion({}, TimeRange("now-6h", "now"), NOW, max_data_points=960,
                        min_interval="10s")
    assert expand("WHERE $timeFilter GROUP BY time($__interval) -- $__interval_ms $interval",
                  context) == "WHERE time >= now() - 6h GROUP BY time(20s) -- 20000 20s"


def test_parse_duration_rejects_garbage() -> None:
    assert parse_duration_ms("250ms") == 250
    with pytest.raises(ValueError, match="Grafana interval"):
        parse_duration_ms("soon")
