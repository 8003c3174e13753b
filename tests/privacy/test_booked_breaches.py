"""The regulator release counts the stored breaches, so it counts them under the booked-time
rule: a vacancy a used booking cuts under the limit is no breach there, a ghost-booked one
still is. Store-level: the detector writes the store, the release's aggregation reads it
the way `softplace export` queries it."""

from __future__ import annotations

import datetime as dt

from detector.batch import run_batch
from privacy.aggregate import BREACHES, aggregate, areas_in_scope
from privacy.settings import PrivacySettings
from softplace.schema import SeriesName
from softplace.storage.base import Store
from tests.detector.helpers import at, busy_weekdays, registry
from tests.detector.test_booked_stored import BOOKINGS, MEET_BUSY, MON

DAYS = 4


def _district_breaches(store: Store) -> list[int]:
    """The district's breaches per day, as the release aggregates the stored series."""
    lo, hi = at(MON), at(MON + dt.timedelta(days=DAYS))
    totals = aggregate(
        registry(), areas_in_scope(registry()), store.query(SeriesName.ROOM_MEASURE, lo, hi),
        store.query(SeriesName.BREACH, lo, hi), start=MON,
        end=MON + dt.timedelta(days=DAYS), kind="day", settings=PrivacySettings(),
        bookings=store.query(SeriesName.BOOKING, lo, hi),
    )
    return [totals.values[BREACHES][i] for i, (area, _) in enumerate(totals.cells)
            if area.level == "district"]


def test_booked_release_counts_breaches_under_the_booked_time_rule(sqlite_store: Store) -> None:
    busy_weekdays(sqlite_store, MON, MEET_BUSY, days=DAYS)
    run_batch(sqlite_store, registry(), "s1", MON, MON + dt.timedelta(days=DAYS))
    assert _district_breaches(sqlite_store) == [1, 1, 1, 1]  # meet vacant 10:00-17:00 daily
    sqlite_store.write(BOOKINGS)  # used mon (split), ghost tue, used wed (cut), ahead thu
    run_batch(sqlite_store, registry(), "s1", MON, MON + dt.timedelta(days=DAYS))
    assert _district_breaches(sqlite_store) == [1, 1, 0, 1]
