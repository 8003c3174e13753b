"""The four SoftPlace dashboards as tables of panels: a new metric is one new row.

Every query names its retention policy (``FROM "raw"."room_count"``), filters by the
dashboard's variables with anchored regexes (``"site" =~ /^$site$/``) and, where it reads a
time range, by ``$timeFilter``; series, tags and fields come from ``softplace.schema``.
"""

from __future__ import annotations

from collections.abc import Mapping

from dashboards.spec import (
    ColumnType,
    Dashboard,
    Override,
    Panel,
    Query,
    Transform,
    ValueText,
    Variable,
    frozen,
)
from softplace.schema import (
    SERIES,
    AggregateField,
    AuditField,
    BreachField,
    BudgetField,
    DeadletterField,
    MeasureField,
    RoomCountField,
    RoomIntervalField,
    SensorHealthField,
    Series,
    SeriesName,
)
from softplace.timeutil import MS_PER_H, MS_PER_S

S, COUNT, HEALTH, M, BREACH = (
    SeriesName, RoomCountField, SensorHealthField, MeasureField, BreachField
)
AGG, AUDIT, BUDGET = AggregateField, AuditField, BudgetField
_S_PER_H = MS_PER_H // MS_PER_S

_ROOM = '"site" =~ /^$site$/ AND "building" =~ /^$building$/ AND "room" =~ /^$room$/'
_DEVICE = '"site" =~ /^$site$/ AND "room" =~ /^$room$/'
_BAND = '"band" =~ /^$band$/'
_RECIPIENT = '"recipient" =~ /^$recipient$/'
_ROOM_ALIAS = "$tag_building / $tag_room"
M2H = "suffix: m²·h"


def _q(name: str) -> str:
    """A field (or column) as an InfluxQL identifier."""
    return f'"{name}"'


def _last(name: str) -> str:
    """``last("x") AS "x"``: a column named after its field."""
    return f"last({_q(name)}) AS {_q(name)}"


def _max(name: str) -> str:
    return f"max({_q(name)}) AS {_q(name)}"


def _sum(name: str) -> str:
    return f"sum({_q(name)}) AS {_q(name)}"


def _from(name: str) -> str:
    """``"<family>"."<series>"``: queries always name the retention policy."""
    found: Series = SERIES[name]
    return f'"{found.family.value}"."{found.name}"'


def _text(*names: str) -> Mapping[str, ColumnType]:
    return frozen(dict.fromkeys(names, "string"))


def _unit(field: str, unit: str) -> Override:
    return Override(field, unit=unit)


def _hide_time() -> Transform:
    return Transform("organize", frozen({"excludeByName": {"Time": True}}))


def _sort(field: str, desc: bool = False) -> Transform:
    return Transform("sortBy", frozen({"sort": [{"field": field, "desc": desc}]}))


def _pass_fail(field: str, passed: str, failed: str) -> Override:
    """A 1/0 column shown as words on green/red cells."""
    return Override(field, texts=(ValueText("1", passed, "green"), ValueText("0", failed, "red")))


def _room_variables(source: str) -> tuple[Variable, ...]:
    """site -> building -> room, chained, read from the tags of ``source``."""
    table = _from(source)
    return (
        Variable("site", "Site", f'SHOW TAG VALUES FROM {table} WITH KEY = "site"'),
        Variable(
            "building", "Building",
            f'SHOW TAG VALUES FROM {table} WITH KEY = "building" WHERE "site" =~ /^$site$/',
        ),
        Variable(
            "room", "Room",
            f'SHOW TAG VALUES FROM {table} WITH KEY = "room"'
            ' WHERE "site" =~ /^$site$/ AND "building" =~ /^$building$/',
        ),
    )


_SENSOR_SUBQUERY = (
    f'(SELECT last({_q(HEALTH.ONLINE)}) AS {_q(HEALTH.ONLINE)} FROM {_from(S.SENSOR_HEALTH)}'
    f' WHERE {_DEVICE} AND $timeFilter GROUP BY "device")'
)

FACILITIES = Dashboard(
    uid="softplace-facilities",
    title="SoftPlace · Facilities",
    description="Live occupancy per room and the health of the sensors that count it.",
    variables=_room_variables(S.ROOM_COUNT),
    time_from="now-6h",
    refresh="30s",
    panels=(
        Panel(
            "people-now", "People now", "bargauge",
            (Query(f'SELECT last({_q(COUNT.COUNT)}) FROM {_from(S.ROOM_COUNT)} WHERE {_ROOM}'
                   ' AND $timeFilter GROUP BY "building", "room"', alias=_ROOM_ALIAS),),
            description="Last count reported per room within the time range.",
            decimals=0, min=0,
        ),
        Panel(
            "people-per-room", "People per room", "timeseries",
            (Query(f'SELECT max({_q(COUNT.COUNT)}) FROM {_from(S.ROOM_COUNT)} WHERE {_ROOM}'
                   ' AND $timeFilter GROUP BY time($__interval), "building", "room" fill(none)',
                   alias=_ROOM_ALIAS),),
            description="Peak count per room in each interval.", decimals=0, min=0,
            min_interval="1m",
        ),
        Panel(
            "sensors-online", "Sensors online", "stat",
            (Query(f'SELECT sum({_q(HEALTH.ONLINE)}) FROM {_SENSOR_SUBQUERY}'),),
            description="Sensors whose last health report in the range says online.",
            width=4, height=5, decimals=0,
        ),
        Panel(
            "sensors-offline", "Sensors offline", "stat",
            (Query(f'SELECT count({_q(HEALTH.ONLINE)}) - sum({_q(HEALTH.ONLINE)})'
                   f' FROM {_SENSOR_SUBQUERY}'),),
            description="Sensors whose last health report in the range says offline.",
            width=4, height=5, decimals=0, thresholds=((None, "green"), (1, "red")),
        ),
        Panel(
            "deadletters-total", "Dead letters", "stat",
            (Query(f'SELECT sum({_q(DeadletterField.N)}) FROM {_from(S.DEADLETTER)}'
                   ' WHERE "site" =~ /^$site$/ AND $timeFilter'),),
            description="Messages the gateway rejected in the range (see the reasons).",
            width=4, height=5, decimals=0, thresholds=((None, "green"), (1, "orange")),
        ),
        Panel(
            "deadletter-rate", "Dead-letter rate by reason", "timeseries",
            (Query(f'SELECT sum({_q(DeadletterField.N)}) FROM {_from(S.DEADLETTER)}'
                   ' WHERE "site" =~ /^$site$/ AND $timeFilter'
                   ' GROUP BY time($__interval), "reason" fill(0)', alias="$tag_reason"),),
            description="Rejected messages per interval (1 min or more), one bar per reason.",
            height=5, decimals=0, min_interval="1m", draw="bars", stacking="normal",
        ),
        Panel(
            "sensors", "Sensors", "table",
            (Query(
                f'SELECT {_last(HEALTH.ONLINE)},'
                f' last({_q(HEALTH.LAST_SEEN)}) * {MS_PER_S} AS {_q(HEALTH.LAST_SEEN)},'
                f' {_last(HEALTH.BATTERY_PCT)}, {_last(HEALTH.RSSI_DBM)}'
                f' FROM {_from(S.SENSOR_HEALTH)} WHERE {_DEVICE} AND $timeFilter'
                ' GROUP BY "site", "room", "device"',
                format="table", columns=_text("site", "room", "device")),),
            description="Each sensor's last health report: online, last seen, battery, RSSI.",
            width=24,
            overrides=(_pass_fail(HEALTH.ONLINE, "online", "offline"),
                       _unit(HEALTH.LAST_SEEN, "dateTimeFromNow"),
                       _unit(HEALTH.BATTERY_PCT, "percent"), _unit(HEALTH.RSSI_DBM, "dBm")),
            transformations=(_hide_time(), _sort(HEALTH.ONLINE)),
        ),
        Panel(
            "battery", "Battery", "timeseries",
            (Query(f'SELECT min({_q(HEALTH.BATTERY_PCT)}) FROM {_from(S.SENSOR_HEALTH)}'
                   f' WHERE {_DEVICE}'
                   ' AND $timeFilter GROUP BY time($__interval), "device" fill(none)',
                   alias="$tag_device"),),
            unit="percent", min=0, max=100, min_interval="5m",
            thresholds=((None, "red"), (20, "orange"), (40, "green")),
        ),
        Panel(
            "rssi", "Radio signal (RSSI)", "timeseries",
            (Query(f'SELECT mean({_q(HEALTH.RSSI_DBM)}) FROM {_from(S.SENSOR_HEALTH)}'
                   f' WHERE {_DEVICE}'
                   ' AND $timeFilter GROUP BY time($__interval), "device" fill(none)',
                   alias="$tag_device"),),
            unit="dBm", min_interval="5m",
            thresholds=((None, "red"), (-85, "orange"), (-70, "green")),
        ),
    ),
)

_MEASURE = f'{_from(S.ROOM_MEASURE)} WHERE {_ROOM} AND {_BAND} AND $timeFilter'
# Rates over a range are ratios of sums, as the report computes them (SMG): seat-hours in
# use over seat-hours observed, never a mean of daily rates (a closed day's 0 % would pull
# a room under the threshold). A room's capacity is constant, so per room the seat-hours
# reduce to hours: person-hours = utilisation x observed hours, observed = open - unknown.
PERSON_H, OBSERVED_H = "person_h", "observed_h"
_OBSERVED = f'({_q(M.AVAILABLE_H)} - {_q(M.UNKNOWN_H)})'
_MEASURE_HOURS = (
    f'(SELECT {_q(M.UTILISATION_RATE)} * {_OBSERVED} AS {_q(PERSON_H)},'
    f' {_OBSERVED} AS {_q(OBSERVED_H)}, {_q(M.USED_H)}, {_q(M.IDLE_M2H)}, {_q(M.PEAK_COUNT)},'
    f' {_q(M.CAPACITY)}, {_q(M.AREA_M2)} FROM {_MEASURE} GROUP BY "building", "room")'
)
UTILISATION = f'sum({_q(PERSON_H)}) / sum({_q(OBSERVED_H)})'
FREQUENCY = f'sum({_q(M.USED_H)}) / sum({_q(OBSERVED_H)})'
OCCUPANCY = f'sum({_q(PERSON_H)}) / sum({_q(M.USED_H)})'
_BREACH = f'{_from(S.BREACH)} WHERE {_ROOM} AND $timeFilter'

BRANCH = Dashboard(
    uid="softplace-branch",
    title="SoftPlace · Branch idle space",
    description="How the branch's rooms are really used: utilisation, idle square-metre"
                "-hours, vacancy rule breaches and the rooms used least.",
    variables=(
        *_room_variables(S.ROOM_MEASURE),
        Variable("band", "Time band",
                 f'SHOW TAG VALUES FROM {_from(S.ROOM_MEASURE)} WITH KEY = "band"'
                 ' WHERE "site" =~ /^$site$/',
                 multi=False, include_all=False, all_value=None, default="opening"),
    ),
    time_from="now-30d",
    panels=(
        Panel(
            "utilisation-per-room", "Utilisation per room", "bargauge",
            (Query(f'SELECT {UTILISATION} AS "utilisation" FROM {_MEASURE_HOURS}'
                   ' GROUP BY "building", "room"', alias=_ROOM_ALIAS),),
            description="SMG utilisation over the range: person-hours over seat-hours"
                        " observed (the report's figure).",
            unit="percentunit", min=0, max=1,
            thresholds=((None, "red"), (0.3, "orange"), (0.6, "green")),
            calc="mean",
        ),
        Panel(
            "utilisation-per-day", "Utilisation per day", "timeseries",
            (Query(f'SELECT {UTILISATION} AS "utilisation" FROM {_MEASURE_HOURS}'
                   ' WHERE $timeFilter GROUP BY time($__interval), "building", "room"'
                   ' fill(none)', alias=_ROOM_ALIAS),),
            unit="percentunit", min=0, max=1, min_interval="1d",
        ),
        Panel(
            "hour-of-week", "Occupancy by hour of the week", "heatmap",
            (Query(f'SELECT mean({_q(COUNT.COUNT)}) FROM {_from(S.ROOM_COUNT)} WHERE {_ROOM}'
                   ' AND $timeFilter GROUP BY time(1h), "room" fill(none)',
                   alias="$tag_room"),),
            description="The last seven days hour by hour: one row per room, one cell per"
                        " hour of the week, colour = mean people counted.",
            width=24, height=9, time_from="7d", scheme="Oranges",
        ),
        Panel(
            "idle-m2h", "Idle m²·h", "stat",
            (Query(f'SELECT sum({_q(M.IDLE_M2H)}) FROM {_MEASURE}'),),
            description="Square metres x hours of opening time no one used.",
            unit=M2H, width=4, height=5, decimals=0,
        ),
        Panel(
            "breaches-total", "Rule breaches", "stat",
            (Query(f'SELECT count({_q(BREACH.DURATION_S)}) FROM {_BREACH}'),),
            description="Vacancies inside opening hours longer than the rule's limit.",
            width=4, height=5, decimals=0, thresholds=((None, "green"), (1, "red")),
        ),
        Panel(
            "vacant-hours", "Vacant hours", "stat",
            (Query(f'SELECT sum({_q(RoomIntervalField.DURATION_S)}) / {_S_PER_H}'
                   f' FROM {_from(S.ROOM_INTERVAL)}'
                   f""" WHERE {_ROOM} AND "state" = 'vacant' AND $timeFilter"""),),
            description="Hours of vacant intervals, in and out of opening hours.",
            unit="h", width=4, height=5, decimals=0,
        ),
        Panel(
            "idle-per-room", "Idle m²·h per room", "bargauge",
            (Query(f'SELECT sum({_q(M.IDLE_M2H)}) FROM {_MEASURE} GROUP BY "building", "room"',
                   alias=_ROOM_ALIAS),),
            unit=M2H, height=5, decimals=0, display="basic", calc="sum",
        ),
        Panel(
            "under-use", "Under-use ranking", "table",
            (Query(
                f'SELECT {UTILISATION} AS "utilisation",'
                f' {FREQUENCY} AS "frequency",'
                f' {OCCUPANCY} AS "occupancy",'
                f' sum({_q(M.IDLE_M2H)}) AS {_q(M.IDLE_M2H)}, max({_q(M.PEAK_COUNT)}) AS "peak",'
                f' {_max(M.CAPACITY)}, {_max(M.AREA_M2)}'
                f' FROM {_MEASURE_HOURS} GROUP BY "building", "room"',
                format="table", columns=_text("building", "room")),),
            description="Rooms from least to most used over the range.",
            overrides=(_unit("utilisation", "percentunit"), _unit("frequency", "percentunit"),
                       _unit("occupancy", "percentunit"), _unit(M.IDLE_M2H, M2H),
                       _unit(M.AREA_M2, "areaM2")),
            transformations=(_hide_time(), _sort("utilisation")),
        ),
        Panel(
            "utilisation-per-floor", "Utilisation per floor", "bargauge",
            (Query(f'SELECT sum({_q(M.OCCUPIED_SEAT_H)}) / sum({_q(M.OBSERVED_SEAT_H)})'
                   f' FROM {_from(S.SPACE_MEASURE)}'
                   ' WHERE "site" =~ /^$site$/ AND "building" =~ /^$building$/'
                   f""" AND "level" = 'floor' AND {_BAND} AND $timeFilter"""
                   ' GROUP BY "building", "floor"', alias="$tag_building / $tag_floor"),),
            description="Rooms under the vacancy rule rolled up per floor, seat-weighted.",
            unit="percentunit", min=0, max=1,
            thresholds=((None, "red"), (0.3, "orange"), (0.6, "green")),
            calc="mean",
        ),
        Panel(
            "breaches", "Breaches", "table",
            (Query(
                f'SELECT {_q(BREACH.DURATION_S)} / {_S_PER_H} AS "vacant_h",'
                f' {_q(BREACH.LIMIT_S)} / {_S_PER_H} AS "limit_h",'
                f' {_q(BREACH.END_MS)}, {_q(BREACH.GHOST_BOOKED)} FROM {_BREACH}'
                ' GROUP BY "building", "room"',
                format="table", columns=_text("building", "room")),),
            description="Each breach: when the vacancy started and ended, how long it lasted;"
                        " ghost_booked 1 when a booking overlapped it but the room stayed empty"
                        " (a used booking cuts the breach instead).",
            width=24,
            overrides=(_unit("vacant_h", "h"), _unit("limit_h", "h"),
                       _unit(BREACH.END_MS, "dateTimeAsIso")),
            transformations=(_sort("Time", desc=True),),
        ),
    ),
)


def _oldest_query(found: Series) -> Query:
    field = next(name for name, kind in found.fields.items() if kind != "str")
    return Query(f'SELECT first({_q(field)}) FROM {_from(found.name)}',
                 alias=f"{found.family.value} / {found.name}")


_AUDIT_SUBQUERY = (
    f'(SELECT {_last(AUDIT.OK)} FROM {_from(S.PRIVACY_AUDIT)}'
    ' WHERE $timeFilter GROUP BY "check")'
)
_BUDGET = f'{_from(S.PRIVACY_BUDGET)} WHERE $timeFilter'

PRIVACY = Dashboard(
    uid="softplace-privacy",
    title="SoftPlace · Privacy",
    description="Retention policies against what is actually stored, audit results and"
                " the differential-privacy budget spent per recipient.",
    variables=_room_variables(S.ROOM_COUNT),
    time_from="now-30d",
    panels=(
        Panel(
            "retention-policies", "Retention policies", "table",
            (Query("SHOW RETENTION POLICIES", format="table", columns=frozen({
                "name": "string", "duration": "string", "shardGroupDuration": "string",
                "default": "bool"})),),
            description="What the database enforces: raw short, derived longer,"
                        " aggregates longest (0s = forever).",
        ),
        Panel(
            "oldest-per-series", "Oldest point per family and series", "table",
            tuple(_oldest_query(found) for found in SERIES.values()),
            description="Compare with the policy on the left: the oldest point of a family"
                        " should never be older than its retention.",
            overrides=(_unit("Oldest point", "dateTimeFromNow"),),
            transformations=(
                Transform("seriesToRows"),
                Transform("organize", frozen({
                    "excludeByName": {"Value": True},
                    "renameByName": {"Time": "Oldest point", "Metric": "Family / series"}})),
            ),
        ),
        Panel(
            "audit-failing", "Audit checks failing", "stat",
            (Query(f'SELECT count({_q(AUDIT.OK)}) - sum({_q(AUDIT.OK)}) FROM {_AUDIT_SUBQUERY}'),),
            description="Checks whose last run in the range did not pass.",
            width=6, decimals=0, thresholds=((None, "green"), (1, "red")),
        ),
        Panel(
            "audit-status", "Audit status", "table",
            (Query(f'SELECT {_last(AUDIT.OK)}, {_last(AUDIT.BREACHES)},'
                   f' {_last(AUDIT.DETAIL)} FROM {_from(S.PRIVACY_AUDIT)}'
                   ' WHERE $timeFilter GROUP BY "check"',
                   format="table", columns=_text("check", AUDIT.DETAIL)),),
            description="The last result of each retention and minimisation check.",
            width=18,
            overrides=(_pass_fail(AUDIT.OK, "pass", "fail"),),
            transformations=(_hide_time(),),
        ),
        Panel(
            "budget-used", "Privacy budget used per recipient", "bargauge",
            (Query(f'SELECT last({_q(BUDGET.EPSILON_SPENT)}) / last({_q(BUDGET.EPSILON_LIMIT)})'
                   f' FROM {_BUDGET}'
                   ' GROUP BY "recipient"', alias="$tag_recipient"),),
            description="Share of each recipient's ε limit already spent on releases.",
            unit="percentunit", min=0, max=1,
            thresholds=((None, "green"), (0.7, "orange"), (0.9, "red")),
        ),
        Panel(
            "budget", "Privacy budget", "table",
            (Query(f'SELECT {_last(BUDGET.EPSILON_SPENT)}, {_last(BUDGET.EPSILON_LIMIT)},'
                   f' {_last(BUDGET.RELEASES)} FROM {_BUDGET} GROUP BY "recipient"',
                   format="table", columns=_text("recipient")),),
            description="ε spent, ε limit and number of releases per recipient.",
            transformations=(_hide_time(),),
        ),
        Panel(
            "budget-over-time", "ε spent over time", "timeseries",
            (Query(f'SELECT max({_q(BUDGET.EPSILON_SPENT)}) FROM {_BUDGET}'
                   ' GROUP BY time($__interval), "recipient" fill(previous)',
                   alias="$tag_recipient"),),
            width=24, min=0, min_interval="1h",
        ),
    ),
)

_AGGREGATE = f'{_from(S.REGULATOR_AGGREGATE)} WHERE {_RECIPIENT} AND $timeFilter'


def _level_table(level: str, title: str) -> Panel:
    return Panel(
        f"{level}-table", title, "table",
        (Query(
            f'SELECT {_sum(AGG.AVAILABLE_M2H)}, {_sum(AGG.IDLE_M2H)},'
            f' mean({_q(AGG.UTILISATION_RATE)}) AS "utilisation", {_sum(AGG.BREACHES)},'
            f' {_max(AGG.ROOMS)}, sum({_q(AGG.SUPPRESSED)}) AS "suppressed_cells"'
            f""" FROM {_AGGREGATE} AND "level" = '{level}'"""
            ' GROUP BY "area"',
            format="table", columns=_text("area")),),
        description=f"Released figures per {level} over the range; noisy by design, cells"
                    " of fewer than k rooms suppressed.",
        width=24, height=7,
        overrides=(_unit(AGG.AVAILABLE_M2H, M2H), _unit(AGG.IDLE_M2H, M2H),
                   _unit("utilisation", "percentunit")),
        transformations=(_hide_time(), _sort(AGG.IDLE_M2H, desc=True)),
    )


def _level_series(key: str, title: str, select: str, level: str, unit: str) -> Panel:
    return Panel(
        key, title, "timeseries",
        (Query(f"""SELECT {select} FROM {_AGGREGATE} AND "level" = '{level}'"""
               ' GROUP BY time($__interval), "area" fill(none)', alias="$tag_area"),),
        unit=unit, min=0, min_interval="1d",
    )


REGULATOR = Dashboard(
    uid="softplace-regulator",
    title="SoftPlace · Regulator",
    description="Anonymised aggregates per building and district as released to the"
                " regulator (zero excess capacity rule).",
    variables=(
        *_room_variables(S.ROOM_COUNT),
        Variable("recipient", "Recipient",
                 f'SHOW TAG VALUES FROM {_from(S.REGULATOR_AGGREGATE)} WITH KEY = "recipient"'),
    ),
    time_from="now-90d",
    panels=(
        _level_table("building", "Per building"),
        _level_table("district", "Per district"),
        _level_series("district-utilisation", "Utilisation per district",
                      f"mean({_q(AGG.UTILISATION_RATE)})", "district", "percentunit"),
        _level_series("district-idle", "Idle m²·h per district", f"sum({_q(AGG.IDLE_M2H)})",
                      "district", M2H),
        _level_series("building-breaches", "Rule breaches per building",
                      f"sum({_q(AGG.BREACHES)})", "building", "short"),
        Panel(
            "release-privacy", "Release privacy", "stat",
            (Query(f'SELECT sum({_q(AGG.SUPPRESSED)}) FROM {_AGGREGATE}',
                   alias="suppressed cells"),
             Query(f'SELECT max({_q(AGG.EPSILON)}) FROM {_AGGREGATE}', alias="max ε per release"),
             Query(f'SELECT min({_q(AGG.K)}) FROM {_AGGREGATE}',
                   alias="k (min rooms per cell)")),
            description="How the releases were protected: suppressed cells, the largest ε"
                        " spent by one release and the smallest k applied.",
            decimals=2,
        ),
    ),
)

DASHBOARDS: tuple[Dashboard, ...] = (FACILITIES, BRANCH, PRIVACY, REGULATOR)
