"""The site report: under-use ranking, breaches and idle slots over a period of days.

``build_report`` gathers the figures (from the stored results, or recomputed from the
stored room counts) into a pydantic ``Report``; ``render_report`` prints it with rich,
and ``Report.model_dump_json`` is the ``--format json`` output.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from detector.batch import run_site_batch
from detector.booked import BOOKED_TIME_RULE, BookedSpan, BookedUse, apply_to_breaches
from detector.booked_store import SiteOpening, stored_booked
from detector.breaches import Breach
from detector.idle_slots import IdleSlot, find_idle_slots
from detector.intervals import Interval, State
from detector.measures import RoomMeasure, RoomRef, SpaceMeasure, Tally, rollup_period, room_period
from detector.records import (
    breach_from_sample,
    day_bounds_ms,
    interval_from_sample,
    measure_from_sample,
)
from detector.settings import DetectorSettings
from softplace.cli import wide
from softplace.errors import InvalidRangeError
from softplace.registry import WEEKDAYS, Registry, Site
from softplace.schema import MeasureField, SeriesName
from softplace.storage.base import Store
from softplace.timeutil import MS_PER_H, ms_to_datetime

Source = Literal["auto", "stored", "recompute"]


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RoomUse(_Row):
    room: str
    name: str
    building: str
    floor: str
    kind: str
    area_m2: float
    capacity: int
    available_h: float
    used_h: float
    unknown_h: float
    frequency_rate: float
    occupancy_rate: float
    utilisation_rate: float
    peak_count: int
    idle_m2h: float
    rules: bool


class SpaceUse(_Row):
    level: str
    space: str
    rooms: int
    area_m2: float
    available_h: float
    used_h: float
    unknown_h: float
    frequency_rate: float
    occupancy_rate: float
    utilisation_rate: float
    idle_m2h: float


class BreachRow(_Row):
    room: str
    name: str
    date: dt.date
    start: dt.datetime
    end: dt.datetime
    vacant_h: float
    limit_h: float
    ghost_booked: bool = False  # a ghost booking overlaps it (the booked-time rule)


class SlotRow(_Row):
    room: str
    name: str
    weekday: str
    start: str
    end: str
    share_vacant: float
    weeks: int
    area_m2: float
    ghost_weeks: int = 0  # days a ghost booking overlapped the window


class BookedRow(_Row):
    """Accepted bookings that started in the period, as the ``booking`` series says."""

    booked: int = 0  # over and compared with the sensors
    used: int = 0
    ghost: int = 0
    unknown: int = 0  # no reading covered it
    ahead: int = 0  # not over, or not compared yet (`softplace bookings reconcile`)
    booked_h: float = 0.0
    used_h: float = 0.0  # booked-and-used hours
    rule: str = BOOKED_TIME_RULE


class Report(_Row):
    site: str
    site_name: str
    timezone: str
    start: dt.date
    end: dt.date  # inclusive
    source: Literal["stored", "recomputed"]
    stale_stored: bool = False  # stored figures differed from the counts: recomputed instead
    under_use_threshold: float
    breach_limit: str
    rollups: list[SpaceUse]
    rooms: list[RoomUse]  # every room, most idle m²·h first
    under_used: list[RoomUse]  # rooms under the threshold, most idle m²·h first
    breaches: list[BreachRow]
    idle_slots: list[SlotRow]
    bookings: BookedRow = BookedRow()

    @property
    def total_idle_m2h(self) -> float:
        return sum(r.idle_m2h for r in self.rooms if r.rules)


def _room_use(ref: RoomRef, name: str, tally: Tally) -> RoomUse:
    fields = tally.fields()
    return RoomUse(
        room=ref.room, name=name, building=ref.building, floor=ref.floor, kind=ref.kind,
        area_m2=ref.area_m2, capacity=ref.capacity,
        available_h=float(fields[MeasureField.AVAILABLE_H]),
        used_h=float(fields[MeasureField.USED_H]), unknown_h=float(fields[MeasureField.UNKNOWN_H]),
        frequency_rate=tally.frequency_rate, occupancy_rate=tally.occupancy_rate,
        utilisation_rate=tally.utilisation_rate, peak_count=tally.peak_count,
        idle_m2h=tally.idle_m2h, rules=ref.rules,
    )


def _space_use(measure: SpaceMeasure) -> SpaceUse:
    tally = measure.tally
    return SpaceUse(
        level=measure.level, space=measure.label, rooms=tally.rooms, area_m2=tally.area_m2,
        available_h=tally.available_ms / MS_PER_H, used_h=tally.used_ms / MS_PER_H,
        unknown_h=tally.unknown_ms / MS_PER_H, frequency_rate=tally.frequency_rate,
        occupancy_rate=tally.occupancy_rate, utilisation_rate=tally.utilisation_rate,
        idle_m2h=tally.idle_m2h,
    )


def assemble_report(
    site: Site, start: dt.date, end: dt.date, *, settings: DetectorSettings,
    measures: Sequence[RoomMeasure], breaches: Sequence[Breach], intervals: Sequence[Interval],
    source: Literal["stored", "recomputed"], booked: Sequence[BookedSpan] = (),
) -> Report:
    """Pure: the report from already computed measures, breaches and intervals, with the
    accepted bookings under the booked-time rule."""
    names = {p.room.id: p.room.name or p.room.id for p in site.placed_rooms()}
    refs = {p.room.id: RoomRef.of(p, settings.include_housing) for p in site.placed_rooms()}
    tz = site.tz
    # the detector wrote its breaches under the rule already; applying it again changes
    # nothing there (it is idempotent) and brings breaches stored before a booking was
    # compared, or before the rule, up to date
    opening = SiteOpening(site, settings)
    breaches = [
        *apply_to_breaches((b for b in breaches if b.room.room in opening), opening.of, booked),
        *(b for b in breaches if b.room.room not in opening),
    ]
    per_room = room_period(measures, "opening")
    rooms = sorted(
        (_room_use(ref, names[room], tally) for room, (ref, tally) in per_room.items()),
        key=lambda r: (-r.idle_m2h, r.room),
    )
    under = [
        r for r in rooms
        if r.rules and r.available_h - r.unknown_h > 0
        and r.utilisation_rate < settings.under_use_threshold
    ]
    breach_rows = [
        BreachRow(
            room=b.room.room, name=names.get(b.room.room, b.room.room), date=b.date,
            start=ms_to_datetime(b.start_ms, tz),
            end=ms_to_datetime(b.end_ms, tz),
            vacant_h=b.vacant_ms / MS_PER_H, limit_h=b.limit_ms / MS_PER_H,
            ghost_booked=b.ghost_booked,
        )
        for b in sorted(breaches, key=lambda b: (b.start_ms, b.room.room))
    ]
    slot_end = end + dt.timedelta(days=1)
    slot_start = max(start, slot_end - dt.timedelta(weeks=settings.idle_slot_weeks))
    by_room: dict[str, list[Interval]] = {}
    for interval in intervals:
        by_room.setdefault(interval.room, []).append(interval)
    slots: list[IdleSlot] = []
    for placed in site.placed_rooms():
        ref = refs[placed.room.id]
        if not ref.rules:
            continue
        slots.extend(find_idle_slots(
            ref, by_room.get(ref.room, []), name=names[ref.room], hours=placed.opening_hours,
            tz=tz, start=slot_start, end=slot_end, settings=settings, booked=booked,
        ))
    slot_rows = [
        SlotRow(
            room=s.room.room, name=s.room_name, weekday=WEEKDAYS[s.weekday],
            start=s.start_text, end=s.end_text, share_vacant=s.share, weeks=s.weeks,
            area_m2=s.room.area_m2, ghost_weeks=s.ghost_weeks,
        )
        for s in slots
    ]
    limit = settings.breach_limit_h
    return Report(
        site=site.id, site_name=site.name or site.id, timezone=site.timezone, start=start,
        end=end, source=source, under_use_threshold=settings.under_use_threshold,
        breach_limit="half a working day" if isinstance(limit, str) else f"{limit:g} h",
        rollups=[_space_use(m) for m in rollup_period(measures, "opening")],
        rooms=rooms, under_used=under, breaches=breach_rows, idle_slots=slot_rows,
        bookings=booked_row(booked, *_period_ms(site, start, end)),
    )


def _period_ms(site: Site, start: dt.date, end: dt.date) -> tuple[int, int]:
    """UTC ms from the first local midnight of ``start`` to the one after ``end``."""
    return day_bounds_ms(start, site.timezone)[0], day_bounds_ms(end, site.timezone)[1]


def booked_row(booked: Sequence[BookedSpan], lo_ms: int, hi_ms: int) -> BookedRow:
    """The bookings that started in ``[lo, hi)``, counted by what the sensors saw."""
    inside = [b for b in booked if lo_ms <= b.start_ms < hi_ms]
    over = [b for b in inside if b.use is not BookedUse.AHEAD]
    used = [b for b in over if b.use is BookedUse.USED]
    return BookedRow(
        booked=len(over), used=len(used), ghost=sum(b.use is BookedUse.GHOST for b in over),
        unknown=sum(b.use is BookedUse.UNKNOWN for b in over), ahead=len(inside) - len(over),
        booked_h=round(sum(b.end_ms - b.start_ms for b in over) / MS_PER_H, 2),
        used_h=round(sum(b.end_ms - b.start_ms for b in used) / MS_PER_H, 2),
    )


def build_report(
    store: Store, registry: Registry, site_id: str, start: dt.date, end: dt.date, *,
    settings: DetectorSettings | None = None, source: Source = "auto",
) -> Report:
    """The report for the local days ``start`` .. ``end`` (inclusive).

    ``stored`` reads ``room_measure``, ``breach`` and ``room_interval`` as the detector
    wrote them; ``recompute`` runs the batch over ``room_count`` in memory (writes
    nothing); ``auto`` uses the stored results when there are any for the period and they
    agree with a recompute, and otherwise the recompute, marked ``stale_stored``.
    """
    settings = settings or DetectorSettings()
    site = registry.site(site_id)
    if end < start:
        raise InvalidRangeError(f"the report ends ({end}) before it starts ({start})")
    start_ms, _ = day_bounds_ms(start, site.timezone)
    _, end_ms = day_bounds_ms(end, site.timezone)
    tags = {"site": site.id}
    booked = stored_booked(store, site, start_ms, end_ms)
    stored = [] if source == "recompute" else store.query(
        SeriesName.ROOM_MEASURE, start_ms, end_ms, tags
    )
    stored_report = None
    if source == "stored" or (source == "auto" and stored):
        refs = {p.room.id: RoomRef.of(p, settings.include_housing) for p in site.placed_rooms()}
        measures = [
            m for m in (measure_from_sample(s, refs, site.timezone) for s in stored)
            if m is not None
        ]
        breaches = [
            b for b in (breach_from_sample(s, refs, site.timezone)
                        for s in store.query(SeriesName.BREACH, start_ms, end_ms, tags))
            if b is not None and b.room.rules
        ]
        intervals = [
            interval_from_sample(s)
            for s in store.query(
                SeriesName.ROOM_INTERVAL, start_ms, end_ms, {**tags, "state": State.VACANT}
            )
        ]
        stored_report = assemble_report(
            site, start, end, settings=settings, measures=measures, breaches=breaches,
            intervals=intervals, source="stored", booked=booked,
        )
        if source == "stored":
            return stored_report
    result = run_site_batch(
        store, site, start, end + dt.timedelta(days=1), settings=settings, write=False
    )
    recomputed = assemble_report(
        site, start, end, settings=settings, measures=result.results.measures,
        breaches=result.results.breaches, intervals=result.results.intervals,
        source="recomputed", booked=booked,
    )
    if stored_report is None:
        return recomputed
    # Stored results carry no trace of the counts they came from, so freshness is checked
    # against the counts themselves: the recompute reads what the stored figures should say.
    if _figures(stored_report) == _figures(recomputed):
        return stored_report
    return recomputed.model_copy(update={"stale_stored": True})


FIGURE_DIGITS = 3  # hours: a millisecond-exact store rounds back to the same figure


def _figures(report: Report) -> tuple[object, ...]:
    """What must agree for stored figures to be current: hours per room, breaches."""
    rooms = sorted(
        (r.room, round(r.available_h, FIGURE_DIGITS), round(r.used_h, FIGURE_DIGITS),
         round(r.unknown_h, FIGURE_DIGITS)) for r in report.rooms
    )
    breaches = sorted((b.room, b.start, b.end) for b in report.breaches)
    return (tuple(rooms), tuple(breaches))


# -- rendering ----------------------------------------------------------------------------


def _pct(rate: float) -> str:
    return f"{rate * 100:.0f} %"


RowT = TypeVar("RowT")
LOW_COVERAGE = 0.25  # share of opening hours unknown above which the report warns


def render_report(report: Report, console: Console, *, limit: int = 20) -> None:
    """Print the report as rich tables (at most ``limit`` rows per long table)."""
    title = f"[bold]{escape(report.site_name)}[/] — {report.start} to {report.end}"
    if wide(console):  # redirected: a rule would be thousands of characters wide
        console.print(title)
    else:
        console.rule(title)
    if report.stale_stored:
        console.print(
            "[bold yellow]note:[/] the stored figures for this period are older than the room "
            "counts they came from (counts imported or settings changed since); showing "
            f"figures recomputed now. Store them with: softplace detect --site "
            f"{escape(report.site)} --from {report.start} --to {report.end}", soft_wrap=True,
        )
    console.print(
        f"Site [bold]{escape(report.site)}[/] ({report.timezone}); figures {report.source}; "
        f"under-use threshold {_pct(report.under_use_threshold)} utilisation; "
        f"breach: vacant inside opening hours longer than {report.breach_limit}."
    )
    if report.rollups:
        table = Table(title="Utilisation inside opening hours (SMG, seat-weighted)")
        for column in ("space", "rooms", "open h", "unknown h", "frequency", "occupancy",
                       "utilisation", "idle m²·h"):
            table.add_column(column, justify="left" if column == "space" else "right")
        for row in report.rollups:
            table.add_row(
                escape(f"{row.level}: {row.space}"), str(row.rooms), f"{row.available_h:.0f}",
                f"{row.unknown_h:.0f}", _pct(row.frequency_rate), _pct(row.occupancy_rate),
                _pct(row.utilisation_rate), f"{row.idle_m2h:,.0f}",
            )
        console.print(table)
        site_row = next((r for r in report.rollups if r.level == "site"), report.rollups[0])
        if site_row.available_h and site_row.unknown_h / site_row.available_h > LOW_COVERAGE:
            console.print(
                f"[bold yellow]warning:[/] sensors were offline or silent for "
                f"{_pct(site_row.unknown_h / site_row.available_h)} of opening hours: an "
                "empty list below means little, not that all is well."
            )
    _print_capped(
        console, f"Under-used rooms ({len(report.under_used)}), most idle m²·h first",
        ("room", "kind", "m²", "seats", "open h", "in use", "occupancy", "utilisation", "peak",
         "idle m²·h"),
        report.under_used, _under_used_row, limit=limit,
        empty="No room under the threshold.", left={"room", "kind"},
    )
    _print_capped(
        console, f"Breaches ({len(report.breaches)})",
        ("room", "date", "vacant from", "to", "vacant h", "limit h"),
        report.breaches, _breach_row, limit=limit, empty="No breach.",
        left={"room", "date", "vacant from", "to"},
    )
    _print_capped(
        console, "Idle slots that can be offered for shared use (weekly)",
        ("room", "day", "from", "to", "vacant weeks", "m²"),
        report.idle_slots, _slot_row, limit=limit, empty="No reliably idle slot.",
        left={"room", "day", "from", "to", "vacant weeks", "m²"},
    )
    console.print(
        f"Idle inside opening hours: [bold]{report.total_idle_m2h:,.0f} m²·h[/] "
        "(rooms subject to vacancy rules)."
    )
    b = report.bookings
    if b.booked or b.ahead:
        console.print(
            f"Bookings: {b.booked} over ({b.booked_h:.1f} h): {b.used} used"
            f" ({b.used_h:.1f} h booked and used), {b.ghost} ghost, {b.unknown} without"
            f" readings; {b.ahead} not compared yet. Rule: {b.rule}."
        )


def _print_capped(
    console: Console, title: str, columns: Sequence[str], items: Sequence[RowT],
    row: Callable[[RowT], tuple[str, ...]], *, limit: int, empty: str, left: set[str],
) -> None:
    """A table of at most ``limit`` rows, saying how many more there are, or ``empty``."""
    if not items:
        console.print(empty)
        return
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column in left else "right")
    for item in items[:limit]:
        table.add_row(*(escape(cell) for cell in row(item)))
    console.print(table)
    if len(items) > limit:
        console.print(f"… and {len(items) - limit} more (use --format json)")


def _under_used_row(room: RoomUse) -> tuple[str, ...]:
    return (f"{room.name} ({room.room})", room.kind, f"{room.area_m2:g}", str(room.capacity),
            f"{room.available_h:.0f}", _pct(room.frequency_rate), _pct(room.occupancy_rate),
            _pct(room.utilisation_rate), str(room.peak_count), f"{room.idle_m2h:,.0f}")


def explain_hours(value_h: float, limit_h: float, *, most: int = 3) -> tuple[str, str]:
    """Both durations with the fewest decimals (1 to ``most``) that keep them apart the
    way they compare: 3.82 h against a 3.75 h limit, never "3.8, limit 3.8"."""
    for digits in range(1, most + 1):
        shown = f"{value_h:.{digits}f}", f"{limit_h:.{digits}f}"
        if (float(shown[0]) > float(shown[1])) == (value_h > limit_h) and (
            shown[0] != shown[1] or value_h == limit_h
        ):
            return shown
    return f"{value_h:.{most}f}", f"{limit_h:.{most}f}"


GHOST_MARK = " · ghost-booked"


def _breach_row(breach: BreachRow) -> tuple[str, ...]:
    mark = GHOST_MARK if breach.ghost_booked else ""
    return (f"{breach.name} ({breach.room}){mark}", breach.date.isoformat(),
            breach.start.strftime("%H:%M"), breach.end.strftime("%H:%M"),
            *explain_hours(breach.vacant_h, breach.limit_h))


def _slot_row(slot: SlotRow) -> tuple[str, ...]:
    mark = GHOST_MARK if slot.ghost_weeks else ""
    return (f"{slot.name} ({slot.room}){mark}", slot.weekday, slot.start, slot.end,
            f"{_pct(slot.share_vacant)} of {slot.weeks}", f"{slot.area_m2:g}")
