"""Detector results <-> stored samples (``room_interval``, ``room_measure``,
``space_measure``, ``breach``), and stored room counts / sensor health -> events.

Tables, not branches: each result type has one function each way. Point keys are
chosen so a rewrite replaces: an interval is keyed by (room, state, start), a measure by
(room, band, local midnight), a breach by (room, start).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

from detector.breaches import Breach
from detector.core import Results, SiteDetector
from detector.intervals import Interval, State
from detector.measures import RoomMeasure, RoomRef, SpaceMeasure, Tally
from softplace.schema import (
    BreachField,
    MeasureField,
    RoomCountField,
    RoomIntervalField,
    SensorHealthField,
    SeriesName,
    SpaceMeasureField,
)
from softplace.storage.base import Sample
from softplace.timeutil import MS_PER_H, local_date, local_ms, s_to_ms


def interval_sample(interval: Interval, ref: RoomRef) -> Sample:
    return Sample(
        SeriesName.ROOM_INTERVAL, {**ref.tags, "state": interval.state.value},
        {
            RoomIntervalField.END_MS: interval.end_ms,
            RoomIntervalField.DURATION_S: interval.duration_s,
            RoomIntervalField.PEAK_COUNT: interval.peak_count,
            RoomIntervalField.MEAN_COUNT: interval.mean_count,
        },
        interval.start_ms,
    )


def measure_sample(measure: RoomMeasure) -> Sample:
    return Sample(
        SeriesName.ROOM_MEASURE, {**measure.room.tags, "band": measure.band},
        measure.tally.fields(), measure.day_start_ms,
    )


def space_sample(measure: SpaceMeasure) -> Sample:
    if measure.day_start_ms is None:
        raise ValueError("only daily rollups are stored")
    return Sample(
        SeriesName.SPACE_MEASURE, measure.tags,
        {**measure.tally.fields(), SpaceMeasureField.ROOMS: measure.tally.rooms},
        measure.day_start_ms,
    )


def breach_sample(breach: Breach) -> Sample:
    return Sample(
        SeriesName.BREACH, breach.room.tags,
        {
            BreachField.DURATION_S: breach.duration_s, BreachField.LIMIT_S: breach.limit_s,
            BreachField.END_MS: breach.end_ms, BreachField.GHOST_BOOKED: int(breach.ghost_booked),
        },
        breach.start_ms,
    )


def result_samples(
    results: Results, refs: Mapping[str, RoomRef], rollups: Iterable[SpaceMeasure] = ()
) -> list[Sample]:
    samples = [interval_sample(i, refs[i.room]) for i in results.intervals]
    samples.extend(measure_sample(m) for m in results.measures)
    samples.extend(breach_sample(b) for b in results.breaches)
    samples.extend(space_sample(r) for r in rollups)
    return samples


def feed_samples(
    detector: SiteDetector, counts: Sequence[Sample], health: Sequence[Sample]
) -> int:
    """Push stored room counts and sensor health into the detector; returns events fed."""
    push_reading, push_status = detector.push_reading, detector.push_status
    for sample in health:
        room = sample.tags.get("room")
        if room:
            online = bool(sample.fields[SensorHealthField.ONLINE])
            push_status(room, sample.tags["device"], sample.time_ms, online)
    for sample in counts:
        push_reading(sample.tags["room"], sample.time_ms, int(sample.fields[RoomCountField.COUNT]))
    return len(counts) + len(health)


# -- reading results back (reports over stored results) ----------------------------------


def _f(fields: Mapping[str, object], name: str) -> float:
    value = fields.get(name, 0)
    return float(value) if isinstance(value, int | float) else 0.0


def measure_from_sample(sample: Sample, refs: Mapping[str, RoomRef], tz_name: str) -> (
    RoomMeasure | None
):
    """Rebuild a room measure (ms totals from the stored hours; exact to the float)."""
    ref = refs.get(sample.tags.get("room", ""))
    if ref is None:
        return None
    fields = sample.fields
    available = round(_f(fields, MeasureField.AVAILABLE_H) * MS_PER_H)
    used = round(_f(fields, MeasureField.USED_H) * MS_PER_H)
    unknown = round(_f(fields, MeasureField.UNKNOWN_H) * MS_PER_H)
    observed = available - unknown
    occupancy = _f(fields, MeasureField.OCCUPANCY_RATE)
    idle_m2ms = _f(fields, MeasureField.IDLE_M2H) * MS_PER_H
    tally = Tally(
        available_ms=available, used_ms=used, vacant_ms=max(observed - used, 0),
        unknown_ms=unknown, person_ms=round(occupancy * ref.capacity * used),
        seat_observed_ms=ref.capacity * observed, seat_used_ms=ref.capacity * used,
        idle_m2ms=idle_m2ms, peak_count=int(_f(fields, MeasureField.PEAK_COUNT)), rooms=1,
        area_m2=ref.area_m2, capacity=ref.capacity,
    )
    day = local_date(sample.time_ms, ZoneInfo(tz_name))
    return RoomMeasure(ref, day, sample.time_ms, sample.tags.get("band", "opening"), tally)


def breach_from_sample(
    sample: Sample, refs: Mapping[str, RoomRef], tz_name: str
) -> Breach | None:
    ref = refs.get(sample.tags.get("room", ""))
    if ref is None:
        return None
    fields = sample.fields
    return Breach(
        ref, local_date(sample.time_ms, ZoneInfo(tz_name)), sample.time_ms,
        int(_f(fields, BreachField.END_MS)), s_to_ms(_f(fields, BreachField.DURATION_S)),
        s_to_ms(_f(fields, BreachField.LIMIT_S)), bool(_f(fields, BreachField.GHOST_BOOKED)),
    )


def interval_from_sample(sample: Sample) -> Interval:
    fields = sample.fields
    start, end = sample.time_ms, int(_f(fields, RoomIntervalField.END_MS))
    return Interval(
        sample.tags["room"], start, end, State(sample.tags["state"]),
        int(_f(fields, RoomIntervalField.PEAK_COUNT)),
        round(_f(fields, RoomIntervalField.MEAN_COUNT) * (end - start)),
    )


def day_bounds_ms(day: dt.date, tz_name: str) -> tuple[int, int]:
    tz = ZoneInfo(tz_name)
    return local_ms(day, 0, tz), local_ms(day, 24 * 60, tz)
