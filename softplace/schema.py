"""What SoftPlace stores: every series, its family (and so its retention), tags and fields.

This table is the single source for the storage backends, the retention policies, the
privacy data inventory and the dashboards: adding a series is adding a row here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from softplace.errors import UnknownSeriesError

FieldType = Literal["int", "float", "str", "bool"]


class Family(StrEnum):
    """A family of series shares one retention policy."""

    RAW = "raw"  # room counts and sensor health: short
    DERIVED = "derived"  # intervals, daily measures, breaches: longer
    AGGREGATES = "aggregates"  # anonymised regulator releases: longest


class SeriesName(StrEnum):
    """Every series SoftPlace stores; the table ``SERIES`` below describes each one."""

    ROOM_COUNT = "room_count"
    ROOM_COUNT_SEGMENT = "room_count_segment"
    SENSOR_HEALTH = "sensor_health"
    DEADLETTER = "deadletter"
    GATEWAY_STATUS = "gateway_status"
    DETECTOR_STATUS = "detector_status"
    ROOM_INTERVAL = "room_interval"
    ROOM_MEASURE = "room_measure"
    SPACE_MEASURE = "space_measure"
    BREACH = "breach"
    BOOKING = "booking"
    REGULATOR_AGGREGATE = "regulator_aggregate"
    PRIVACY_BUDGET = "privacy_budget"
    PRIVACY_AUDIT = "privacy_audit"


class RoomCountField(StrEnum):
    COUNT = "count"
    SOURCES = "sources"


class SegmentField(StrEnum):
    DATA = "data"
    POINTS = "points"
    PARTS = "parts"
    DIRTY = "dirty"


class SensorHealthField(StrEnum):
    ONLINE = "online"
    LAST_SEEN = "last_seen"
    BATTERY_PCT = "battery_pct"
    RSSI_DBM = "rssi_dbm"


class DeadletterField(StrEnum):
    N = "n"
    TOPIC = "topic"


class GatewayStatusField(StrEnum):
    BACKLOG_S = "backlog_s"
    UPSTREAM = "upstream"


class DetectorStatusField(StrEnum):
    LAG_S = "lag_s"
    CHECKPOINT_AGE_S = "checkpoint_age_s"
    LATE_READINGS = "late_readings"


class RoomIntervalField(StrEnum):
    END_MS = "end_ms"
    DURATION_S = "duration_s"
    PEAK_COUNT = "peak_count"
    MEAN_COUNT = "mean_count"


class MeasureField(StrEnum):
    """The SMG measure fields, shared by ``room_measure`` and ``space_measure``."""

    AVAILABLE_H = "available_h"
    USED_H = "used_h"
    UNKNOWN_H = "unknown_h"
    FREQUENCY_RATE = "frequency_rate"
    OCCUPANCY_RATE = "occupancy_rate"
    UTILISATION_RATE = "utilisation_rate"
    PEAK_COUNT = "peak_count"
    IDLE_M2H = "idle_m2h"
    AREA_M2 = "area_m2"
    CAPACITY = "capacity"
    # the utilisation rate's numerator and denominator, so a range's rate over days, rooms or
    # floors is a ratio of sums (Grafana panels), never a mean of daily rates
    OCCUPIED_SEAT_H = "occupied_seat_h"  # count (capped at capacity) x hours in use
    OBSERVED_SEAT_H = "observed_seat_h"  # capacity x (opening hours - unknown hours)


class SpaceMeasureField(StrEnum):
    """``space_measure``'s own field, next to the ``MeasureField`` ones."""

    ROOMS = "rooms"


class BreachField(StrEnum):
    DURATION_S = "duration_s"
    LIMIT_S = "limit_s"
    END_MS = "end_ms"
    GHOST_BOOKED = "ghost_booked"  # 1: a ghost booking overlaps it (the booked-time rule)


class BookingField(StrEnum):
    """An accepted booking as the bookings stage publishes it (never who asked)."""

    END_MS = "end_ms"
    BOOKED_H = "booked_h"
    USED_H = "used_h"  # booked-and-used hours: the booking's hours if the sensors saw it used
    CHECKED = "checked"  # 1 once compared with the sensors (the booking has ended)
    GHOST = "ghost"  # 1: a ghost booking (booked, the room stayed empty)
    UNKNOWN = "unknown"  # 1: checked, but no reading covered it


class AggregateField(StrEnum):
    AVAILABLE_M2H = "available_m2h"
    IDLE_M2H = "idle_m2h"
    UTILISATION_RATE = "utilisation_rate"
    BREACHES = "breaches"
    GHOST_BOOKINGS = "ghost_bookings"
    BOOKED_USED_H = "booked_used_h"
    ROOMS = "rooms"
    EPSILON = "epsilon"
    K = "k"
    SUPPRESSED = "suppressed"


class BudgetField(StrEnum):
    EPSILON_SPENT = "epsilon_spent"
    EPSILON_LIMIT = "epsilon_limit"
    RELEASES = "releases"


class AuditField(StrEnum):
    OK = "ok"
    BREACHES = "breaches"
    DETAIL = "detail"


MEASURE_FIELDS: dict[str, FieldType] = {
    MeasureField.AVAILABLE_H: "float", MeasureField.USED_H: "float",
    MeasureField.UNKNOWN_H: "float", MeasureField.FREQUENCY_RATE: "float",
    MeasureField.OCCUPANCY_RATE: "float", MeasureField.UTILISATION_RATE: "float",
    MeasureField.PEAK_COUNT: "int", MeasureField.IDLE_M2H: "float",
    MeasureField.AREA_M2: "float", MeasureField.CAPACITY: "int",
    MeasureField.OCCUPIED_SEAT_H: "float", MeasureField.OBSERVED_SEAT_H: "float",
}


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    family: Family
    tags: tuple[str, ...]
    fields: dict[str, FieldType]
    description: str
    recipients: tuple[str, ...]
    personal_data: str  # why this is or is not personal data; goes into the inventory

    def __post_init__(self) -> None:
        # plain strings, so reprs and messages read "count", never <RoomCountField.COUNT: ...>
        object.__setattr__(self, "name", str(self.name))
        object.__setattr__(self, "tags", tuple(str(t) for t in self.tags))
        object.__setattr__(self, "fields", {str(k): v for k, v in self.fields.items()})


ROOM_TAGS = ("site", "building", "floor", "room", "kind")

SERIES: dict[str, Series] = {
    s.name: s
    for s in (
        Series(
            SeriesName.ROOM_COUNT, Family.RAW, ROOM_TAGS,
            {RoomCountField.COUNT: "int", RoomCountField.SOURCES: "int"},
            "People counted in a room (no device identity), stored on change: a point when"
            " the count changes, at least one per heartbeat window, and the last reading"
            " before a silence; between points the count holds (softplace/thinning.py).",
            ("operator: facilities", "operator: branch manager"),
            "Room-level counts; a single-person room's 0/1 can reveal one person's presence,"
            " so it stays with the operator under short retention.",
        ),
        Series(
            SeriesName.ROOM_COUNT_SEGMENT, Family.RAW, ("site", "part"),
            {SegmentField.DATA: "str", SegmentField.POINTS: "int", SegmentField.PARTS: "int",
             SegmentField.DIRTY: "bool"},
            "A derived cache of room_count, which stays the truth: six hours of a site's"
            " points (time = the span's start, on UTC multiples of 6 h) packed into a few"
            " points (part 0 .. parts-1), each holding some rooms' times and counts"
            " compactly encoded (softplace/storage/segments.py). Written by the detector"
            " once the span is behind it, checked then against influxd's count of the"
            " span's raw points; every later room_count write through the store sets dirty"
            " on part 0 of the spans it touches, and the narrow read takes a span from here"
            " only while it is whole and not dirty (from room_count otherwise).",
            ("operator: facilities", "operator: branch manager"),
            "The same room-level counts as room_count, in another layout; kept under the"
            " same short retention.",
        ),
        Series(
            SeriesName.SENSOR_HEALTH, Family.RAW, ("site", "device", "room"),
            {
                SensorHealthField.ONLINE: "int", SensorHealthField.LAST_SEEN: "float",
                SensorHealthField.BATTERY_PCT: "float", SensorHealthField.RSSI_DBM: "int",
            },
            "Sensor online state, last seen time, battery and radio signal. Never a count.",
            ("operator: facilities",),
            "Device identifiers and radio health; no count, so nothing about people.",
        ),
        Series(
            SeriesName.DEADLETTER, Family.RAW, ("site", "reason"),
            {DeadletterField.N: "int", DeadletterField.TOPIC: "str"},
            "Rejected input, one point per rejected message, with the reason.",
            ("operator: facilities",),
            "Operational; the rejected payload itself stays on the site broker.",
        ),
        Series(
            SeriesName.GATEWAY_STATUS, Family.RAW, ("site",),
            {GatewayStatusField.BACKLOG_S: "float", GatewayStatusField.UPSTREAM: "int"},
            "The gateway's own state once a minute, on the sensor-health schedule: how long"
            " the oldest status still in its outbox has waited (whole minutes; 0 while the"
            " outbox drains) and whether the upstream broker was connected. Queued in the"
            " outbox like health.",
            ("operator: facilities",),
            "Per site, no device, room or count: the backlog is whole minutes since"
            " forwarding stopped, the same whenever readings came in (gateway/health.py).",
        ),
        Series(
            SeriesName.DETECTOR_STATUS, Family.RAW, ("site",),
            {DetectorStatusField.LAG_S: "float", DetectorStatusField.CHECKPOINT_AGE_S: "float",
             DetectorStatusField.LATE_READINGS: "int"},
            "The following detector's state each poll: how far its position trails the"
            " clock, the age of its checkpoint, and the room readings stored after their"
            " chunk was analysed (late, so left out), counted since the process started.",
            ("operator: facilities",),
            "Per site, no device or room and no count of people; operational.",
        ),
        Series(
            SeriesName.ROOM_INTERVAL, Family.DERIVED, (*ROOM_TAGS, "state"),
            {
                RoomIntervalField.END_MS: "int", RoomIntervalField.DURATION_S: "float",
                RoomIntervalField.PEAK_COUNT: "int", RoomIntervalField.MEAN_COUNT: "float",
            },
            "Occupied, vacant and unknown intervals per room (time = interval start).",
            ("operator: branch manager",),
            "Room-level occupancy history; operator only.",
        ),
        Series(
            SeriesName.ROOM_MEASURE, Family.DERIVED, (*ROOM_TAGS, "band"), dict(MEASURE_FIELDS),
            "Per room, day and time band: SMG frequency, occupancy and utilisation rates,"
            " peak count, idle square-metre-hours (time = local midnight of the day).",
            ("operator: branch manager",),
            "Room-level daily figures; operator only.",
        ),
        Series(
            SeriesName.SPACE_MEASURE, Family.DERIVED,
            ("site", "building", "floor", "level", "band"),
            {**MEASURE_FIELDS, SpaceMeasureField.ROOMS: "int"},
            "room_measure rolled up per floor, building and site (level tag), seat-weighted,"
            " rooms subject to vacancy rules only (time = local midnight of the day).",
            ("operator: branch manager",),
            "Aggregated over rooms, but a floor may hold one room; operator only.",
        ),
        Series(
            SeriesName.BREACH, Family.DERIVED, ROOM_TAGS,
            {BreachField.DURATION_S: "float", BreachField.LIMIT_S: "float",
             BreachField.END_MS: "int", BreachField.GHOST_BOOKED: "int"},
            "Vacancies inside opening hours longer than the rule's limit (time = start),"
            " under the booked-time rule: cut by accepted bookings the sensors saw used,"
            " flagged ghost_booked where a ghost booking overlaps (detector/booked.py).",
            ("operator: branch manager",),
            "Room-level; only their anonymised counts leave the operator.",
        ),
        Series(
            SeriesName.BOOKING, Family.DERIVED, ROOM_TAGS,
            {BookingField.END_MS: "int", BookingField.BOOKED_H: "float",
             BookingField.USED_H: "float", BookingField.CHECKED: "int",
             BookingField.GHOST: "int", BookingField.UNKNOWN: "int"},
            "Accepted bookings of offered rooms and, once over, whether the sensors saw them"
            " used (time = booking start); written by the bookings stage.",
            ("operator: branch manager",),
            "Room and times only (the requester stays in the bookings file); only anonymised"
            " counts leave the operator.",
        ),
        Series(
            SeriesName.REGULATOR_AGGREGATE, Family.AGGREGATES,
            ("recipient", "level", "area", "period"),
            {
                AggregateField.AVAILABLE_M2H: "float", AggregateField.IDLE_M2H: "float",
                AggregateField.UTILISATION_RATE: "float", AggregateField.BREACHES: "float",
                AggregateField.GHOST_BOOKINGS: "float", AggregateField.BOOKED_USED_H: "float",
                AggregateField.ROOMS: "int", AggregateField.EPSILON: "float",
                AggregateField.K: "int", AggregateField.SUPPRESSED: "int",
            },
            "Anonymised figures per building or district and half-day or coarser, as released.",
            ("regulator",),
            "Anonymous: cells of fewer than k rooms suppressed, counts under discrete DP noise.",
        ),
        Series(
            SeriesName.PRIVACY_BUDGET, Family.AGGREGATES, ("recipient",),
            {BudgetField.EPSILON_SPENT: "float", BudgetField.EPSILON_LIMIT: "float",
             BudgetField.RELEASES: "int"},
            "Differential-privacy budget spent per recipient, after each release.",
            ("operator: privacy officer",),
            "Bookkeeping; no data about people.",
        ),
        Series(
            SeriesName.PRIVACY_AUDIT, Family.DERIVED, ("check",),
            {AuditField.OK: "int", AuditField.BREACHES: "int", AuditField.DETAIL: "str"},
            "Result of each retention and minimisation audit run.",
            ("operator: privacy officer",),
            "Bookkeeping; no data about people.",
        ),
    )
}


def series(name: str) -> Series:
    """The row of series ``name``; UnknownSeriesError (a KeyError) for any other name."""
    try:
        return SERIES[name]
    except KeyError as err:
        raise UnknownSeriesError(f"unknown series {name!r}; known: {', '.join(SERIES)}") from err
