from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.aggregate import (
    QUANTITIES,
    CellTotals,
    aggregate,
    align,
    areas_in_scope,
    periods_between,
    sensitivities,
)
from privacy.release import choose_period
from privacy.settings import PeriodKind, PrivacySettings
from privacy.suppression import Suppression, suppress
from softplace.registry import Registry
from softplace.storage.base import Sample
from tests.privacy.helpers import booking, breach, make_registry, measure, week_of_data

MONDAY = dt.date(2025, 3, 3)
REGISTRY = make_registry({"d1": [6, 2, 5, 7], "d2": [3]})
AREAS = areas_in_scope(REGISTRY)
DECISIONS = suppress(AREAS, 5)
RELEASED = [a for a in AREAS if DECISIONS[a.id].status is Suppression.RELEASED]
SETTINGS = PrivacySettings()


def _totals(measures: list[Sample], breaches: list[Sample], kind: PeriodKind) -> CellTotals:
    return aggregate(REGISTRY, RELEASED, measures, breaches, start=MONDAY,
                     end=MONDAY + dt.timedelta(days=7), kind=kind, settings=SETTINGS)


def test_aggregate_cells_exist_without_data() -> None:
    totals = _totals([], [], "half_day")
    assert len(totals.cells) == len(RELEASED) * 14
    assert all(v == 0 for values in totals.values.values() for v in values)


def test_aggregate_district_is_sum_of_its_buildings() -> None:
    measures, breaches = week_of_data(REGISTRY, MONDAY)
    totals = aggregate(REGISTRY, AREAS, measures, breaches, start=MONDAY,
                       end=MONDAY + dt.timedelta(days=7), kind="day", settings=SETTINGS)
    by_cell = {(a.id, p): i for i, (a, p) in enumerate(totals.cells)}
    day = MONDAY.isoformat()
    for name in QUANTITIES:
        district = totals.values[name][by_cell[("d1", day)]]
        buildings = sum(
            totals.values[name][by_cell[(a.id, day)]] for a in AREAS
            if a.level == "building" and a.id.startswith("d1-")
        )
        assert district == buildings
    assert totals.values["idle_m2h"][by_cell[("d1", day)]] == 20 * 2 * 40  # 20 offices


def test_aggregate_breaches_clamped_per_room_day() -> None:
    site, room = "d1-s3", "d1-b3-0"
    many = [breach(site, room, MONDAY, h) for h in (8, 9, 10, 14, 15)]
    totals = _totals([], many, "day")
    by_cell = {(a.id, p): i for i, (a, p) in enumerate(totals.cells)}
    assert totals.values["breaches"][by_cell[("d1-s3/b3", MONDAY.isoformat())]] == 2
    assert totals.rows_dropped["breach over the per-room-day clamp"] == 3


def test_aggregate_housing_never_counted() -> None:
    flat = measure("d1-s3", "d1-b3-flat", MONDAY, "morning", idle_m2h=100)
    totals = _totals([flat], [], "day")
    assert sum(totals.values["idle_m2h"]) == 0


def test_aggregate_align_widens_to_whole_periods() -> None:
    assert align(dt.date(2025, 3, 5), dt.date(2025, 3, 12), "week") == (
        dt.date(2025, 3, 3), dt.date(2025, 3, 17))
    assert align(dt.date(2025, 3, 5), dt.date(2025, 4, 2), "month") == (
        dt.date(2025, 3, 1), dt.date(2025, 5, 1))
    assert periods_between(MONDAY, MONDAY + dt.timedelta(days=1), "half_day") == [
        "2025-03-03/am", "2025-03-03/pm"]


_room_day = st.tuples(
    st.sampled_from([p for p in REGISTRY.placed_rooms() if p.room.kind.value != "housing"]),
    st.integers(min_value=0, max_value=6),
)
_values = st.fixed_dictionaries({
    "available_h": st.floats(min_value=-5, max_value=30),
    "idle_m2h": st.floats(min_value=-50, max_value=5000),
    "utilisation": st.floats(min_value=-1, max_value=3),
})


@settings(max_examples=80, deadline=None)
@given(
    room_day=_room_day,
    before=st.lists(_values, min_size=2, max_size=2),
    after=st.lists(_values, min_size=2, max_size=2),
    breaches_before=st.integers(min_value=0, max_value=4),
    breaches_after=st.integers(min_value=0, max_value=4),
    kind=st.sampled_from(["half_day", "day", "week"]),
)
def test_aggregate_sensitivity_bounds_one_room_day_change(  # type: ignore[no-untyped-def]
    *, room_day, before, after, breaches_before, breaches_after, kind,
) -> None:
    """Neighbouring inputs (one room-day changed arbitrarily, even to out-of-range values)
    never move any quantity's vector by more than its declared L1 sensitivity."""
    placed, offset = room_day
    day = MONDAY + dt.timedelta(days=offset)
    base, _ = week_of_data(REGISTRY, MONDAY)
    others = [s for s in base if not (s.tags["room"] == placed.room.id
                                      and s.tags["site"] == placed.site.id
                                      and s.time_ms == measure("x", "y", day, "morning").time_ms)]

    def dataset(values: list[dict[str, float]],
                n_breaches: int) -> tuple[list[Sample], list[Sample]]:
        rows = [measure(placed.site.id, placed.room.id, day, band, area=placed.room.area_m2,
                        available_h=v["available_h"], idle_m2h=v["idle_m2h"],
                        utilisation=v["utilisation"])
                for band, v in zip(("morning", "afternoon"), values, strict=True)]
        return others + rows, [breach(placed.site.id, placed.room.id, day, 9 + 3 * i)
                               for i in range(n_breaches)]

    a = _totals(*dataset(before, breaches_before), kind)
    b = _totals(*dataset(after, breaches_after), kind)
    for name in QUANTITIES:
        distance = sum(abs(x - y) for x, y in zip(a.values[name], b.values[name], strict=True))
        assert distance <= a.sensitivity[name], (name, distance, a.sensitivity[name])


def test_aggregate_sensitivity_half_day_twice_day() -> None:
    half = sensitivities(REGISTRY, RELEASED, "half_day", SETTINGS)
    day = sensitivities(REGISTRY, RELEASED, "day", SETTINGS)
    assert half["idle_m2h"] == 2 * day["idle_m2h"]
    # 20 m² x 8 h longest day, in a building and its district
    assert day["idle_m2h"] == 20 * 8 * 2
    assert day["breaches"] == 2 * 2


def test_aggregate_coarsening_rule_picks_finest_period_meeting_target() -> None:
    kind, reason = choose_period(REGISTRY, RELEASED, SETTINGS)
    assert kind in {"week", "month"} and "idle" in reason
    generous = SETTINGS.model_copy(update={"epsilon_per_release": 10.0, "max_relative_error": 5})
    assert choose_period(REGISTRY, RELEASED, generous)[0] in {"half_day", "day"}
    strict = SETTINGS.model_copy(update={"max_relative_error": 1e-6})
    kind, reason = choose_period(REGISTRY, RELEASED, strict)
    assert kind == "month" and "not met" in reason


# -- bookings: ghost counts and booked-and-used hours ----------------------------------------
OFFERED = make_registry({"d1": [6, 5]}, offered=True)
OFFERED_AREAS = areas_in_scope(OFFERED)


def _booking_totals(bookings: list[Sample], kind: PeriodKind = "day",
                    registry: Registry = OFFERED) -> CellTotals:
    areas = areas_in_scope(registry)
    return aggregate(registry, areas, [], [], start=MONDAY, end=MONDAY + dt.timedelta(days=7),
                     kind=kind, settings=SETTINGS, bookings=bookings)


def test_aggregate_bookings_counted_per_cell_and_clamped() -> None:
    site, room = "d1-s0", "d1-b0-0"
    five = [booking(site, room, MONDAY, h, hours=1.0, ghost=h % 2 == 0)
            for h in (8, 9, 10, 11, 12)]  # ghosts at 8, 10, 12; the fifth is over the clamp
    totals = _booking_totals([*five, booking(site, room, MONDAY, 14, checked=False)])
    cell = {(a.id, p): i for i, (a, p) in enumerate(totals.cells)}[(f"{site}/b0",
                                                                    MONDAY.isoformat())]
    assert totals.values["ghost_bookings"][cell] == 2  # 8 and 10: the clamp keeps four
    assert totals.values["booked_used_h"][cell] == 2 * 4  # two used hours, in quarter hours
    assert totals.rows_dropped["booking over the per-room-day clamp"] == 1
    assert totals.rows_dropped["booking not compared with the sensors yet"] == 1


def test_aggregate_bookings_of_rooms_never_offered_are_ignored_and_cost_nothing() -> None:
    totals = _booking_totals([booking("d1-s3", "d1-b3-0", MONDAY, 9)], registry=REGISTRY)
    assert not any(totals.values["ghost_bookings"])
    assert totals.sensitivity["ghost_bookings"] == totals.sensitivity["booked_used_h"] == 0
    assert _booking_totals([]).sensitivity["ghost_bookings"] > 0


@settings(max_examples=40, deadline=None)
@given(
    offset=st.integers(min_value=0, max_value=6),
    schedule=st.lists(st.tuples(st.integers(0, 23), st.floats(0, 30), st.booleans(),
                                st.booleans()), max_size=7),
    kind=st.sampled_from(["half_day", "day", "week"]),
)
def test_aggregate_booking_sensitivity_bounds_two_room_days_changing(
    offset: int, schedule: list[tuple[int, float, bool, bool]], kind: PeriodKind,
) -> None:
    """One room-day's presence decides whether the bookings of that day and of the day
    before were used or ghosts (their times are the operator's, unchanged): flipping every
    one of those outcomes stays within the declared sensitivity."""
    site, room = "d1-s1", "d1-b1-0"
    day = MONDAY + dt.timedelta(days=offset)
    others = [booking("d1-s0", "d1-b0-1", MONDAY + dt.timedelta(days=d), 10) for d in range(7)]

    def dataset(side: int) -> list[Sample]:
        return others + [booking(site, room, day - dt.timedelta(days=i % 2), hour,
                                 hours=hours, ghost=(ghost_before, ghost_after)[side])
                         for i, (hour, hours, ghost_before, ghost_after) in enumerate(schedule)]

    a, b = _booking_totals(dataset(0), kind), _booking_totals(dataset(1), kind)
    for name in ("ghost_bookings", "booked_used_h"):
        distance = sum(abs(x - y) for x, y in zip(a.values[name], b.values[name], strict=True))
        assert distance <= a.sensitivity[name], (name, distance, a.sensitivity[name])
