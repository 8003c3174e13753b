"""What SoftPlace stores: every series, its family (and so its retention), tags and fields.

This table is the single source for the storage backends, the retention policies, the
privacy data inventory and the dashboards: adding a series is adding a row here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

FieldType = Literal["int", "float", "str", "bool"]


class Family(StrEnum):
    """A family of series shares one retention policy."""

    RAW = "raw"  # room counts and sensor health: short
    DERIVED = "derived"  # intervals, daily measures, breaches: longer
    AGGREGATES = "aggregates"  # anonymised regulator releases: longest


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    family: Family
    tags: tuple[str, ...]
    fields: dict[str, FieldType]
    description: str
    recipients: tuple[str, ...]
    personal_data: str  # why this is or is not personal data; goes into the inventory


ROOM_TAGS = ("site", "building", "floor", "room", "kind")

SERIES: dict[str, Series] = {
    s.name: s
    for s in (
        Series(
            "room_count", Family.RAW, ROOM_TAGS, {"count": "int", "sources": "int"},
            "People counted in a room, one point per room reading (no device identity).",
            ("operator: facilities", "operator: branch manager"),
            "Room-level counts; a single-person room's 0/1 can reveal one person's presence,"
            " so it stays with the operator under short retention.",
        ),
        Series(
            "sensor_health", Family.RAW, ("site", "device", "room"),
            {"online": "int", "last_seen": "float", "battery_pct": "float", "rssi_dbm": "int"},
            "Sensor online state, last seen time, battery and radio signal. Never a count.",
            ("operator: facilities",),
            "Device identifiers and radio health; no count, so nothing about people.",
        ),
        Series(
            "deadletter", Family.RAW, ("site", "reason"), {"n": "int", "topic": "str"},
            "Rejected input, one point per rejected message, with the reason.",
            ("operator: facilities",),
            "Operational; the rejected payload itself stays on the site broker.",
        ),
        Series(
            "room_interval", Family.DERIVED, (*ROOM_TAGS, "state"),
            {"end_ms": "int", "duration_s": "float", "peak_count": "int", "mean_count": "float"},
            "Occupied, vacant and unknown intervals per room (time = interval start).",
            ("operator: branch manager",),
            "Room-level occupancy history; operator only.",
        ),
        Series(
            "room_measure", Family.DERIVED, (*ROOM_TAGS, "band"),
            {
                "available_h": "float", "used_h": "float", "unknown_h": "float",
                "frequency_rate": "float", "occupancy_rate": "float",
                "utilisation_rate": "float", "peak_count": "int", "idle_m2h": "float",
                "area_m2": "float", "capacity": "int",
            },
            "Per room, day and time band: SMG frequency, occupancy and utilisation rates,"
            " peak count, idle square-metre-hours (time = local midnight of the day).",
            ("operator: branch manager",),
            "Room-level daily figures; operator only.",
        ),
        Series(
            "space_measure", Family.DERIVED, ("site", "building", "floor", "level", "band"),
            {
                "available_h": "float", "used_h": "float", "unknown_h": "float",
                "frequency_rate": "float", "occupancy_rate": "float",
                "utilisation_rate": "float", "peak_count": "int", "idle_m2h": "float",
                "area_m2": "float", "capacity": "int", "rooms": "int",
            },
            "room_measure rolled up per floor, building and site (level tag), seat-weighted,"
            " rooms subject to vacancy rules only (time = local midnight of the day).",
            ("operator: branch manager",),
            "Aggregated over rooms, but a floor may hold one room; operator only.",
        ),
        Series(
            "breach", Family.DERIVED, ROOM_TAGS,
            {"duration_s": "float", "limit_s": "float", "end_ms": "int"},
            "Vacancies inside opening hours longer than the rule's limit (time = start).",
            ("operator: branch manager",),
            "Room-level; only their anonymised counts leave the operator.",
        ),
        Series(
            "regulator_aggregate", Family.AGGREGATES, ("recipient", "level", "area", "period"),
            {
                "available_m2h": "float", "idle_m2h": "float", "utilisation_rate": "float",
                "breaches": "float", "rooms": "int", "epsilon": "float", "k": "int",
                "suppressed": "int",
            },
            "Anonymised figures per building or district and half-day or coarser, as released.",
            ("regulator",),
            "Anonymous: cells of fewer than k rooms suppressed, counts under discrete DP noise.",
        ),
        Series(
            "privacy_budget", Family.AGGREGATES, ("recipient",),
            {"epsilon_spent": "float", "epsilon_limit": "float", "releases": "int"},
            "Differential-privacy budget spent per recipient, after each release.",
            ("operator: privacy officer",),
            "Bookkeeping; no data about people.",
        ),
        Series(
            "privacy_audit", Family.DERIVED, ("check",),
            {"ok": "int", "breaches": "int", "detail": "str"},
            "Result of each retention and minimisation audit run.",
            ("operator: privacy officer",),
            "Bookkeeping; no data about people.",
        ),
    )
}


def series(name: str) -> Series:
    try:
        return SERIES[name]
    except KeyError as err:
        raise KeyError(f"unknown series {name!r}; known: {', '.join(SERIES)}") from err
