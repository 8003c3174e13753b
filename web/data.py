"""What the pages and the API show, as pydantic models, from the stages' public functions.

The report itself is ``detector.report.build_report`` (the numbers ``softplace report``
prints); this module adds what only the web app shows: the hour-of-week heatmap, idle m²·h
per week (one ``build_report`` per week), live room state and the releases on disk.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from detector.batch import run_site_batch
from detector.booked import BookedSpan
from detector.idle_slots import IdleSlot, to_ical
from detector.intervals import Interval, State
from detector.measures import RoomRef
from detector.records import day_bounds_ms, interval_from_sample
from detector.report import Report, build_report
from detector.settings import DetectorSettings
from privacy.audit import run_audit
from privacy.inventory import Inventory, build_inventory
from privacy.ledger import Ledger
from privacy.settings import PrivacySettings
from softplace.registry import WEEKDAYS, Registry, Site
from softplace.schema import SERIES, RoomCountField, SensorHealthField, SeriesName
from softplace.settings import KernelSettings
from softplace.storage.base import Store
from softplace.timeutil import MS_PER_H, ms_to_datetime, s_to_ms

log = logging.getLogger(__name__)

HOURS_PER_WEEK = 7 * 24
LIVE_LOOKBACK_MS = 24 * MS_PER_H
DATAPACKAGE = "datapackage.json"
RoomState = Literal["occupied", "vacant", "unknown"]
_SEEN_AT = "_time_ms"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RoomInfo(_Model):
    site: str
    building: str
    floor: str
    room: str
    name: str
    kind: str
    area_m2: float
    capacity: int
    devices: list[str]
    vacancy_rules: bool


class SiteInfo(_Model):
    id: str
    name: str
    district: str
    timezone: str
    rooms: int


class HeatCell(_Model):
    weekday: int  # 0 = Monday
    hour: int
    occupied_share: float | None  # of the known time in that hour of the week; None: unknown


class RoomHeatmap(_Model):
    room: str
    name: str
    cells: list[HeatCell]  # 168, Monday 00h first


class WeekIdle(_Model):
    week: str  # ISO week, e.g. 2024-W10
    start: dt.date
    end: dt.date  # inclusive, clipped to the period
    idle_m2h: float


class BranchReport(_Model):
    report: Report  # exactly what `softplace report --format json` prints
    weeks: list[WeekIdle]
    heatmaps: list[RoomHeatmap]


class IntervalRow(_Model):
    room: str
    state: str
    start: dt.datetime
    end: dt.datetime
    peak_count: int


class SensorLive(_Model):
    device: str
    online: bool | None
    battery_pct: float | None
    last_seen: dt.datetime | None


class RoomLive(_Model):
    room: str
    name: str
    state: RoomState
    since: dt.datetime | None  # time of the reading the state rests on
    sensors: list[SensorLive]


class SiteLive(_Model):
    site: str
    at: dt.datetime
    rooms: list[RoomLive]

    @property
    def sensors_online(self) -> int:
        return sum(1 for r in self.rooms for s in r.sensors if s.online)


class ReleaseInfo(_Model):
    id: str  # the release folder's name
    release: str  # the release id (the ledger's)
    recipient: str
    title: str
    start: dt.date
    end: dt.date  # exclusive, as in the release
    period: str
    epsilon: float
    k: int
    cells: int
    released: int
    coverage: float  # released cells / all cells
    error: dict[str, float]  # quantity -> bound of |noise| per cell at 1 - alpha
    alpha: float
    files: list[str]


# -- registry ------------------------------------------------------------------------------


def sites(registry: Registry) -> list[SiteInfo]:
    return [
        SiteInfo(id=s.id, name=s.name or s.id, district=s.district, timezone=s.timezone,
                 rooms=sum(1 for _ in s.placed_rooms()))
        for s in registry.sites
    ]


def rooms(site: Site) -> list[RoomInfo]:
    return [
        RoomInfo(
            site=site.id, building=p.building.id, floor=p.floor.id, room=p.room.id,
            name=p.room.name or p.room.id, kind=p.room.kind.value, area_m2=p.room.area_m2,
            capacity=p.room.capacity, devices=list(p.room.devices),
            vacancy_rules=p.room.subject_to_vacancy_rules,
        )
        for p in site.placed_rooms()
    ]


# -- report --------------------------------------------------------------------------------


def period_intervals(
    store: Store, site: Site, start: dt.date, end: dt.date, report: Report,
    settings: DetectorSettings,
) -> list[Interval]:
    """Every interval of the period, from where the report took its figures."""
    if report.source == "stored":
        start_ms, _ = day_bounds_ms(start, site.timezone)
        _, end_ms = day_bounds_ms(end, site.timezone)
        samples = store.query(SeriesName.ROOM_INTERVAL, start_ms, end_ms, {"site": site.id})
        return [interval_from_sample(s) for s in samples]
    result = run_site_batch(store, site, start, end + dt.timedelta(days=1), settings=settings,
                            write=False)
    return result.intervals


def heatmap(intervals: Iterable[Interval], tz: dt.tzinfo) -> dict[str, list[HeatCell]]:
    """Per room, the share of known time occupied in each local hour of the week."""
    occupied: dict[str, list[int]] = {}
    known: dict[str, list[int]] = {}
    for interval in intervals:
        if interval.state is State.UNKNOWN:
            continue
        occ = occupied.setdefault(interval.room, [0] * HOURS_PER_WEEK)
        kno = known.setdefault(interval.room, [0] * HOURS_PER_WEEK)
        cursor = interval.start_ms
        while cursor < interval.end_ms:
            local = ms_to_datetime(cursor, tz)
            hour_start = local.replace(minute=0, second=0, microsecond=0)
            next_ms = min(interval.end_ms, round((hour_start.timestamp() + 3600) * 1000))
            slot = local.weekday() * 24 + local.hour
            kno[slot] += next_ms - cursor
            if interval.state is State.OCCUPIED:
                occ[slot] += next_ms - cursor
            cursor = next_ms
    return {
        room: [
            HeatCell(weekday=i // 24, hour=i % 24,
                     occupied_share=(occupied[room][i] / k) if (k := known[room][i]) else None)
            for i in range(HOURS_PER_WEEK)
        ]
        for room in known
    }


def weeks_of(start: dt.date, end: dt.date) -> list[tuple[str, dt.date, dt.date]]:
    """ISO weeks touching ``start .. end`` (inclusive), clipped to it."""
    out = []
    day = start
    while day <= end:
        week_end = min(end, day + dt.timedelta(days=6 - day.weekday()))
        year, week, _ = day.isocalendar()
        out.append((f"{year}-W{week:02d}", day, week_end))
        day = week_end + dt.timedelta(days=1)
    return out


def branch_report(
    store: Store, registry: Registry, site_id: str, start: dt.date, end: dt.date,
    settings: DetectorSettings,
) -> BranchReport:
    report = build_report(store, registry, site_id, start, end, settings=settings)
    site = registry.site(site_id)
    source: Literal["stored", "recompute"] = (
        "stored" if report.source == "stored" else "recompute"
    )
    weeks = [
        WeekIdle(week=label, start=a, end=b, idle_m2h=build_report(
            store, registry, site_id, a, b, settings=settings, source=source
        ).total_idle_m2h)
        for label, a, b in weeks_of(start, end)
    ]
    cells = heatmap(period_intervals(store, site, start, end, report, settings), site.tz)
    blank = [HeatCell(weekday=i // 24, hour=i % 24, occupied_share=None)
             for i in range(HOURS_PER_WEEK)]
    maps = [  # every room, in the registry's order; a room never seen is all unknown
        RoomHeatmap(room=p.room.id, name=p.room.name or p.room.id,
                    cells=cells.get(p.room.id, blank))
        for p in site.placed_rooms()
    ]
    return BranchReport(report=report, weeks=weeks, heatmaps=maps)


def intervals_rows(intervals: Sequence[Interval], tz: dt.tzinfo) -> list[IntervalRow]:
    return [
        IntervalRow(room=i.room, state=i.state.value, start=ms_to_datetime(i.start_ms, tz),
                    end=ms_to_datetime(i.end_ms, tz), peak_count=i.peak_count)
        for i in sorted(intervals, key=lambda i: (i.start_ms, i.room))
    ]


CSV_COLUMNS = (
    "section", "room", "name", "building", "floor", "kind", "area_m2", "capacity",
    "available_h", "used_h", "unknown_h", "frequency_rate", "occupancy_rate",
    "utilisation_rate", "peak_count", "idle_m2h", "under_used", "date", "start", "end",
    "vacant_h", "limit_h", "weekday", "share_vacant", "weeks",
)


def report_csv(report: Report) -> str:
    """One CSV for the whole report: a ``section`` column says which table a row is from."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n", restval="")
    writer.writeheader()
    under = {r.room for r in report.under_used}
    for row in report.rollups:
        writer.writerow({
            "section": f"{row.level}", "room": row.space, "area_m2": row.area_m2,
            "available_h": row.available_h, "used_h": row.used_h, "unknown_h": row.unknown_h,
            "frequency_rate": row.frequency_rate, "occupancy_rate": row.occupancy_rate,
            "utilisation_rate": row.utilisation_rate, "idle_m2h": row.idle_m2h,
        })
    for room in report.rooms:
        writer.writerow({
            "section": "room", **room.model_dump(exclude={"rules"}),
            "under_used": int(room.room in under),
        })
    for breach in report.breaches:
        writer.writerow({
            "section": "breach", "room": breach.room, "name": breach.name,
            "date": breach.date.isoformat(), "start": breach.start.isoformat(),
            "end": breach.end.isoformat(), "vacant_h": breach.vacant_h,
            "limit_h": breach.limit_h,
        })
    for slot in report.idle_slots:
        writer.writerow({
            "section": "idle_slot", "room": slot.room, "name": slot.name,
            "weekday": slot.weekday, "start": slot.start, "end": slot.end,
            "share_vacant": slot.share_vacant, "weeks": slot.weeks, "area_m2": slot.area_m2,
        })
    return out.getvalue()


def _minute(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def slots_ical(report: Report, site: Site, settings: DetectorSettings, room: str | None,
               weeks: int, now: dt.datetime, booked: Sequence[BookedSpan] = ()) -> bytes:
    """The report's idle slots as iCalendar, through the detector's own ``to_ical`` (the
    weeks a booking ahead takes left out)."""
    refs = {p.room.id: RoomRef.of(p, settings.include_housing) for p in site.placed_rooms()}
    slots = [
        IdleSlot(refs[s.room], s.name, WEEKDAYS.index(s.weekday),
                 _minute(s.start), _minute(s.end), round(s.share_vacant * s.weeks), s.weeks)
        for s in report.idle_slots if room is None or s.room == room
    ]
    return to_ical(slots, site.tz, report.end + dt.timedelta(days=1), weeks, now, booked)


# -- live ----------------------------------------------------------------------------------


def live_state(store: Store, site: Site, now_ms: int, settings: DetectorSettings) -> SiteLive:
    """Each room now: its last reading within the heartbeat, unless every sensor is offline."""
    since = now_ms - LIVE_LOOKBACK_MS
    counts = store.query(SeriesName.ROOM_COUNT, since, now_ms + 1, {"site": site.id})
    health = store.query(SeriesName.SENSOR_HEALTH, since, now_ms + 1, {"site": site.id})
    last_count = {s.tags["room"]: s for s in counts}  # ordered by time: the last one wins
    # per device, the latest value of each field: a status may carry only some of them
    known: dict[str, dict[str, float]] = {}
    for sample in health:
        fields = known.setdefault(sample.tags["device"], {})
        fields.update({k: float(v) for k, v in sample.fields.items()})
        fields[_SEEN_AT] = float(sample.time_ms)
    heartbeat = s_to_ms(settings.heartbeat_s)
    tz = site.tz
    out = []
    for placed in site.placed_rooms():
        sensors = []
        for device in placed.room.devices:
            h = known.get(device, {})
            seen = h.get(SensorHealthField.LAST_SEEN)
            seen_ms = s_to_ms(seen) if seen is not None else h.get(_SEEN_AT)
            online = h.get(SensorHealthField.ONLINE)
            sensors.append(SensorLive(
                device=device, online=None if online is None else bool(online),
                battery_pct=h.get(SensorHealthField.BATTERY_PCT),
                last_seen=ms_to_datetime(int(seen_ms), tz) if seen_ms is not None else None,
            ))
        reading = last_count.get(placed.room.id)
        all_offline = bool(sensors) and all(s.online is False for s in sensors)
        state: RoomState = "unknown"
        if reading is not None and now_ms - reading.time_ms <= heartbeat and not all_offline:
            state = "occupied" if int(reading.fields[RoomCountField.COUNT]) > 0 else "vacant"
        out.append(RoomLive(
            room=placed.room.id, name=placed.room.name or placed.room.id, state=state,
            since=ms_to_datetime(reading.time_ms, tz) if reading else None, sensors=sensors,
        ))
    return SiteLive(site=site.id, at=ms_to_datetime(now_ms, tz), rooms=out)


# -- releases ------------------------------------------------------------------------------


def _release_dirs(folder: Path) -> dict[str, Path]:
    """Release id (its folder's name) -> folder, for ``folder`` and its sub-folders."""
    dirs = [folder, *sorted(p.parent for p in folder.glob(f"*/{DATAPACKAGE}"))]
    return {d.name: d for d in dirs if (d / DATAPACKAGE).is_file()}


def releases(folder: Path) -> list[ReleaseInfo]:
    """Every release written by ``softplace export --out`` under ``folder``, newest first."""
    found = []
    for name, path in _release_dirs(folder).items():
        try:
            found.append(_release_info(name, path))
        except (ValueError, KeyError, OSError) as err:
            log.warning("skipping release %s: %s", path, err)
    return sorted(found, key=lambda r: (r.start, r.id), reverse=True)


def _release_info(name: str, path: Path) -> ReleaseInfo:
    package = json.loads((path / DATAPACKAGE).read_text(encoding="utf-8"))
    privacy = package["softplace:privacy"]
    csv_name = package["resources"][0]["path"]
    with (path / csv_name).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    released = sum(1 for r in rows if r["status"] == "released")
    return ReleaseInfo(
        id=name, release=privacy["id"], recipient=privacy["recipient"],
        title=package["title"], start=privacy["start"], end=privacy["end"],
        period=privacy["period"], epsilon=privacy["epsilon"], k=privacy["k"], cells=len(rows),
        released=released, coverage=released / len(rows) if rows else 0.0,
        error={q["quantity"]: q["bound"] for q in privacy["noise"]}, alpha=privacy["alpha"],
        files=[DATAPACKAGE, csv_name],
    )


def release_file(folder: Path, release_id: str, name: str) -> Path | None:
    """A file of a listed release, or None: paths come from the listing, never the URL."""
    path = _release_dirs(folder).get(release_id)
    if path is None:
        return None
    info = _release_info(release_id, path)
    return path / name if name in info.files else None


# -- privacy -------------------------------------------------------------------------------


class RetentionRow(_Model):
    family: str
    days: int
    series: list[str]
    oldest: dt.datetime | None


class FindingRow(_Model):
    check: str
    series: str
    detail: str


class RecipientLedger(_Model):
    recipient: str
    spent: float
    limit: float
    remaining: float
    releases: int
    charges: list[tuple[str, float, dt.datetime, str]]  # release id, epsilon, when, note


class PrivacyOverview(_Model):
    audit_ok: bool
    audited_at: dt.datetime
    findings: list[FindingRow]
    inventory: Inventory
    retention: list[RetentionRow]
    ledger: list[RecipientLedger]
    deletions: list[tuple[str, dt.datetime, str]] = []  # local files: holding, when, what


def privacy_overview(store: Store, settings: KernelSettings, now_ms: int,
                     config: Path | None = None) -> PrivacyOverview:
    privacy = settings.section(PrivacySettings)
    audit = run_audit(store, settings.retention.policies(), now_ms,
                      privacy.retention_grace_hours)
    retention = []
    for policy in audit.policies:
        names = [s.name for s in SERIES.values() if s.family is policy.family]
        oldest = [ms for n, ms in audit.series_checked.items() if n in names and ms is not None]
        retention.append(RetentionRow(
            family=str(policy.family), days=policy.days, series=names,
            oldest=ms_to_datetime(min(oldest), dt.UTC) if oldest else None,
        ))
    with Ledger(privacy.ledger_path, privacy.budgets) as ledger:
        charges = ledger.charges()
        books = [
            RecipientLedger(
                recipient=b.recipient, spent=b.spent, limit=b.limit, remaining=b.remaining,
                releases=b.releases,
                charges=[(c.release_id, c.epsilon, ms_to_datetime(c.created_ms, dt.UTC), c.note)
                         for c in charges if c.recipient == b.recipient],
            )
            for b in ledger.states()
        ]
    held = [FindingRow(check="retention", series=what, detail=detail)  # e.g. booking requesters
            for section in settings.stage_sections()
            for what, detail in section.holding_findings(now_ms, config)]
    return PrivacyOverview(
        audit_ok=audit.ok and not held, audited_at=ms_to_datetime(audit.now_ms, dt.UTC),
        findings=[FindingRow(check=f.check, series=f.series, detail=f.detail)
                  for f in audit.findings] + held,
        inventory=build_inventory(settings), retention=retention, ledger=books,
        deletions=sorted(
            (what, ms_to_datetime(when, dt.UTC), detail) for section in settings.stage_sections()
            for what, when, detail in section.holding_deletions(config)),
    )
