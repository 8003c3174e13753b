"""The stored ``breach`` series under the booked-time rule: the batch and the follow loop
write breaches cut by used bookings and flagged by ghost ones, and a booking compared after
its day's breaches were stored makes the follow loop re-derive that room-day."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from detector.batch import run_batch
from detector.booked import BookedUse
from detector.booked_store import SiteOpening
from detector.measures import RoomRef
from detector.records import breach_from_sample, day_bounds_ms
from detector.report import build_report
from detector.service import BOOKED_KEY, DetectorService
from detector.settings import DetectorSettings
from softplace.schema import BreachField, SeriesName
from softplace.storage.base import Sample, Store
from softplace.storage.sqlite import SqliteStore
from tests.detector.helpers import (
    HOUR,
    at,
    booking_sample,
    busy_weekdays,
    clock,
    registry,
    site,
)

# recent enough for the raw retention the store fixtures apply: the Monday of last week
_TODAY = dt.datetime.now(dt.UTC).date()
MON = _TODAY - dt.timedelta(days=_TODAY.weekday() + 7)
TUE, WED, THU = (MON + dt.timedelta(days=n) for n in (1, 2, 3))
MEET_BUSY = {"meet": ("09:30", "10:00")}  # then vacant 10:00-17:00: a 7 h breach (limit 4 h)
WHOLE = ("10:00", "17:00", 0)


def _breaches(store: Store, day: dt.date) -> list[tuple[str, str, int]]:
    """meet's stored breaches that day: (local start, local end, ghost_booked)."""
    lo, hi = day_bounds_ms(day, site().timezone)
    return [(clock(s.time_ms), clock(int(s.fields[BreachField.END_MS])),
             int(s.fields.get(BreachField.GHOST_BOOKED, 0)))
            for s in store.query(SeriesName.BREACH, lo, hi, {"site": "s1", "room": "meet"})]


BOOKINGS = (
    booking_sample(MON, "11:00", "12:00", BookedUse.USED),  # 10:00-11:00 left: under the limit
    booking_sample(TUE, "11:00", "12:00", BookedUse.GHOST),
    booking_sample(WED, "10:00", "14:00", BookedUse.USED),  # 3 h left: no breach
    booking_sample(THU, "11:00", "12:00", BookedUse.AHEAD),  # not compared: changes nothing
)
EXPECTED = {MON: [("12:00", "17:00", 0)], TUE: [("10:00", "17:00", 1)], WED: [],
            THU: [WHOLE]}


def _batch_stores_breaches_under_the_rule(store: Store) -> None:
    busy_weekdays(store, MON, MEET_BUSY, days=4)
    store.write(BOOKINGS)
    result = run_batch(store, registry(), "s1", MON, MON + dt.timedelta(days=4))
    assert len([b for b in result.results.breaches if b.room.room == "meet"]) == 3
    assert {day: _breaches(store, day) for day in EXPECTED} == EXPECTED
    # the report reads them back and does not cut again: stored and recomputed agree
    stored = build_report(store, registry(), "s1", MON, THU, source="stored")
    recomputed = build_report(store, registry(), "s1", MON, THU, source="recompute")
    assert stored.model_dump(exclude={"source"}) == recomputed.model_dump(exclude={"source"})
    assert [(b.date, b.ghost_booked) for b in stored.breaches if b.room == "meet"] == [
        (MON, False), (TUE, True), (THU, False)]
    auto = build_report(store, registry(), "s1", MON, THU)
    assert auto.source == "stored" and not auto.stale_stored


def test_booked_batch_stores_breaches_under_the_rule_sqlite(sqlite_store: Store) -> None:
    _batch_stores_breaches_under_the_rule(sqlite_store)


@pytest.mark.services
def test_booked_batch_stores_breaches_under_the_rule_influx(influx_store: Store) -> None:
    _batch_stores_breaches_under_the_rule(influx_store)


def test_booked_breaches_rederived_from_intervals_equal_the_detector_s(
    sqlite_store: Store,
) -> None:
    busy_weekdays(sqlite_store, MON, {"meet": ("09:30", "10:00"), "office": ("09:00", "09:30")},
                  days=2)
    run_batch(sqlite_store, registry(), "s1", MON, MON + dt.timedelta(days=2))
    opening = SiteOpening(site(), DetectorSettings())
    refs = {p.room.id: RoomRef.of(p) for p in site().placed_rooms()}
    found = 0
    for day in (MON, TUE):
        lo, hi = day_bounds_ms(day, site().timezone)
        for room in refs:  # housing and a room never open: none either way
            stored = [breach_from_sample(s, refs, site().timezone)
                      for s in sqlite_store.query(SeriesName.BREACH, lo, hi,
                                                  {"site": "s1", "room": room})]
            assert opening.rederive(sqlite_store, room, day, []) == stored, (room, day)
            found += len(stored)
    assert found == 4  # meet 10:00-17:00, office 09:30-17:00 over its lunch break, each day


def _follow(service: DetectorService, now: list[float], until_ms: int) -> int:
    """Step the service hourly (the clock injected) up to ``until_ms``; room-days
    re-derived on the way."""
    rederived = 0
    while now[0] * 1000 < until_ms:
        now[0] += 3600
        rederived += service.step().rederived
    return rederived


def test_booked_service_writes_breaches_like_the_batch(sqlite_store: Store,
                                                       tmp_path: Path) -> None:
    batch_store = busy_weekdays(SqliteStore(tmp_path / "batch.sqlite"), MON, MEET_BUSY, days=4)
    busy_weekdays(sqlite_store, MON, MEET_BUSY, days=4)
    for store in (batch_store, sqlite_store):
        store.write(BOOKINGS)  # compared before the detector writes the days
    run_batch(batch_store, registry(), "s1", MON, MON + dt.timedelta(days=4))
    settings = DetectorSettings(checkpoint_path=tmp_path / "cp.json")
    now = [at(MON) / 1000]
    service = DetectorService(sqlite_store, registry(), settings, sites=["s1"],
                              clock=lambda: now[0], since_ms=at(MON))
    assert _follow(service, now, at(MON + dt.timedelta(days=4)) + HOUR) == 0
    lo, hi = at(MON), at(MON + dt.timedelta(days=4))
    assert sqlite_store.query(SeriesName.BREACH, lo, hi) == batch_store.query(
        SeriesName.BREACH, lo, hi)
    assert {day: _breaches(sqlite_store, day) for day in EXPECTED} == EXPECTED


def _service_rederives_a_day_compared_later(store: Store, tmp_path: Path) -> None:
    busy_weekdays(store, MON, MEET_BUSY, days=2)
    store.write([booking_sample(MON, "11:00", "12:00", BookedUse.AHEAD)])  # accepted
    settings = DetectorSettings(checkpoint_path=tmp_path / "cp.json")
    now = [at(MON) / 1000]

    def service() -> DetectorService:
        return DetectorService(store, registry(), settings, sites=["s1"],
                               clock=lambda: now[0], since_ms=at(MON))

    follower = service()
    assert _follow(follower, now, at(TUE, "06:00")) == 0
    assert _breaches(store, MON) == [WHOLE]  # written before the booking was compared
    saved = json.loads(settings.checkpoint_path.read_text())["sites"]["s1"][BOOKED_KEY]
    assert list(saved) == [f"{MON.isoformat()}/meet"]

    # `softplace bookings reconcile` the next morning: it was used
    store.write([booking_sample(MON, "11:00", "12:00", BookedUse.USED)])
    assert _follow(follower, now, at(TUE, "07:00")) == 1
    assert _breaches(store, MON) == [("12:00", "17:00", 0)]
    assert _follow(follower, now, at(TUE, "09:00")) == 0  # nothing changed since

    # changed again while the service was down: the checkpoint remembers what was applied
    store.write([booking_sample(MON, "11:00", "12:00", BookedUse.GHOST)])
    follower = service()
    assert _follow(follower, now, at(TUE, "10:00")) == 1
    assert _breaches(store, MON) == [("10:00", "17:00", 1)]
    # what the follow loop re-derived is what `softplace detect` over that day writes
    before = _breaches(store, MON)
    run_batch(store, registry(), "s1", MON, TUE)
    assert _breaches(store, MON) == before


def test_booked_service_rederives_a_day_compared_later_sqlite(sqlite_store: Store,
                                                              tmp_path: Path) -> None:
    _service_rederives_a_day_compared_later(sqlite_store, tmp_path)


@pytest.mark.services
def test_booked_service_rederives_a_day_compared_later_influx(influx_store: Store,
                                                              tmp_path: Path) -> None:
    _service_rederives_a_day_compared_later(influx_store, tmp_path)


def test_booked_service_mid_day_breach_then_booking_compared_same_day(
    sqlite_store: Store, tmp_path: Path,
) -> None:
    """A breach written mid-day (closed by someone coming in), then that morning's
    booking compared before the day is over: re-derived once the day is over."""
    s1 = site()
    lo = at(MON)
    counts = [(t, 2 if at(MON, "09:30") <= t < at(MON, "10:00")
               or at(MON, "15:30") <= t < at(MON, "16:00") else 0)
              for t in range(lo, lo + 48 * HOUR, 60_000)]
    sqlite_store.write([Sample("room_count", s1.room("meet").tags, {"count": c, "sources": 1},
                               t) for t, c in counts])
    settings = DetectorSettings(checkpoint_path=tmp_path / "cp.json")
    now = [at(MON) / 1000]
    follower = DetectorService(sqlite_store, registry(), settings, sites=["s1"],
                               clock=lambda: now[0], since_ms=at(MON))
    _follow(follower, now, at(MON, "17:00"))
    assert _breaches(sqlite_store, MON) == [("10:00", "15:30", 0)]  # 5.5 h, in the alert
    sqlite_store.write([booking_sample(MON, "10:00", "11:30", BookedUse.USED)])
    assert _follow(follower, now, at(MON, "20:00")) == 0  # the day is not over
    assert _follow(follower, now, at(TUE, "03:00")) == 1
    assert _breaches(sqlite_store, MON) == []  # 11:30-15:30 is 4 h: not over the limit
