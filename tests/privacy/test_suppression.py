from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from privacy.aggregate import areas_in_scope
from privacy.ledger import Ledger
from privacy.release import Release, build_release
from privacy.settings import PrivacySettings
from privacy.suppression import Suppression, recoverable, suppress
from softplace.registry import Registry
from tests.privacy.helpers import booking, make_registry, week_of_data

ATTACK_REGISTRY = make_registry({"d1": [6, 5, 2]})  # A, B and C (2 rooms: below k)
ATTACK_DAY = dt.date(2025, 3, 3)


def _status(district_sizes: dict[str, list[int]], k: int = 5) -> dict[str, Suppression]:
    registry = make_registry(district_sizes)
    decisions = suppress(areas_in_scope(registry), k)
    return {area_id: d.status for area_id, d in decisions.items()}


def test_suppression_primary_below_k() -> None:
    status = _status({"d1": [6, 2, 7]})
    assert status["d1-s1/b1"] is Suppression.PRIMARY  # 2 rooms < 5
    assert status["d1-s2/b2"] is Suppression.RELEASED


def test_suppression_housing_and_unwatched_rooms_do_not_count() -> None:
    # each building also holds a housing flat; 4 offices + flat must still be < k=5
    assert _status({"d1": [4, 9]})["d1-s0/b0"] is Suppression.PRIMARY


def test_suppression_secondary_hides_smallest_sibling() -> None:
    status = _status({"d1": [6, 2, 5]})
    assert status["d1-s1/b1"] is Suppression.PRIMARY
    assert status["d1-s2/b2"] is Suppression.SECONDARY  # 5 rooms: the smallest released one
    assert status["d1-s0/b0"] is Suppression.RELEASED
    assert status["d1"] is Suppression.RELEASED


def test_suppression_no_secondary_when_two_already_hidden() -> None:
    status = _status({"d1": [6, 2, 3]})
    assert status["d1-s0/b0"] is Suppression.RELEASED
    assert status["d1"] is Suppression.RELEASED


def test_suppression_small_district_hides_everything() -> None:
    status = _status({"d2": [3]})
    assert status["d2"] is Suppression.PRIMARY
    assert status["d2-s0/b0"] is Suppression.PRIMARY


def test_suppression_pattern_uses_registry_only() -> None:
    # same registry -> same pattern, whatever the data (no data is passed at all)
    assert _status({"d1": [6, 2, 5]}) == _status({"d1": [6, 2, 5]})


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["d1", "d2", "d3"]),
        st.lists(st.integers(min_value=0, max_value=9), min_size=1, max_size=5),
        min_size=1,
    ),
    st.integers(min_value=2, max_value=7),
)
def test_suppression_no_hidden_cell_recoverable_by_differencing(
    sizes: dict[str, list[int]], k: int
) -> None:
    registry = make_registry(sizes)
    areas = areas_in_scope(registry)
    decisions = suppress(areas, k)
    assert recoverable(areas, decisions) == []
    for area in areas:
        if decisions[area.id].status is Suppression.RELEASED:
            assert len(area.rooms) >= k
        # a district's figure never equals a single hidden building's
        if area.level == "district" and decisions[area.id].status is Suppression.RELEASED:
            children = [a for a in areas if a.level == "building" and a.rooms <= area.rooms]
            hidden = [c for c in children if decisions[c.id].status is not Suppression.RELEASED]
            assert len(hidden) != 1


# -- across releases: the district - A - B attack of issue 13 --------------------------------
def _attack_release(
    ledger_path: Path, *, sites: Sequence[str] = (), districts: Sequence[str] = (),
    registry: Registry = ATTACK_REGISTRY,
) -> Release:
    settings = PrivacySettings(epsilon_per_release=10.0, epsilon_bookings=10.0, period="month",
                               budgets={"regulator": 100.0})
    measures, breaches = week_of_data(registry, ATTACK_DAY, days=28)
    bookings = [booking(p.site.id, p.room.id, ATTACK_DAY + dt.timedelta(days=d), 9,
                        building=p.building.id)  # every offered room ghost-booked daily
                for p in registry.placed_rooms() if p.room.offer is not None for d in range(28)]
    with Ledger(ledger_path, settings.budgets) as ledger:
        release = build_release(
            registry, settings, ledger, recipient="regulator", start=ATTACK_DAY,
            end=ATTACK_DAY + dt.timedelta(days=28), measures=measures, breaches=breaches,
            bookings=bookings, sites=sites, districts=districts, now_ms=0,
            today=dt.date(2026, 1, 1),
        )
        ledger.charge("regulator", release.epsilon, start=release.start, end=release.end,
                      hidden=release.hidden_areas(), published=release.published_areas())
    return release


def _difference(releases: Sequence[Release], district: str, others: Sequence[str],
                figure: str = "idle_m2h") -> float | None:
    """What a recipient holding every release gets for the hidden building: the district's
    published ``figure`` minus the other buildings' (from any release), or None."""
    published: dict[str, float] = {}
    for release in releases:
        for cell in release.cells:
            value = getattr(cell, figure)
            if cell.status is Suppression.RELEASED and value is not None:
                published[cell.area] = value
    if district not in published or any(o not in published for o in others):
        return None
    return published[district] - sum(published[o] for o in others)


A, B, C = "d1-s0/b0", "d1-s1/b1", "d1-s2/b2"


def test_suppression_across_releases_district_then_sites(tmp_path: Path) -> None:
    first = _attack_release(tmp_path / "ledger.sqlite", districts=["d1"])
    assert {A: "released", B: "secondary", C: "primary"}.items() <= {
        c.area: str(c.status) for c in first.cells}.items()
    second = _attack_release(tmp_path / "ledger.sqlite", sites=["d1-s0", "d1-s1"])
    assert B in second.hidden_areas()
    assert _difference([first, second], "d1", [A, B]) is None


def test_suppression_across_releases_sites_then_district(tmp_path: Path) -> None:
    first = _attack_release(tmp_path / "ledger.sqlite", sites=["d1-s0", "d1-s1"])
    assert {A, B} <= first.published_areas()
    second = _attack_release(tmp_path / "ledger.sqlite", districts=["d1"])
    assert "d1" in second.hidden_areas()  # no unpublished sibling left to hide with C
    assert _difference([first, second], "d1", [A, B]) is None


def test_suppression_attack_succeeds_without_the_memory(tmp_path: Path) -> None:
    """Negative control: with a fresh ledger per release (the old behaviour) the same two
    releases give C back, within the noise."""
    first = _attack_release(tmp_path / "one.sqlite", districts=["d1"])
    second = _attack_release(tmp_path / "two.sqlite", sites=["d1-s0", "d1-s1"])
    recovered = _difference([first, second], "d1", [A, B])
    assert recovered is not None
    truth = 2 * 28 * 2 * 40  # 2 rooms x 28 days x 2 bands x 40 idle m²·h
    bound = next(q.bound for q in first.noise if q.quantity == "idle_m2h")
    assert abs(recovered - truth) <= 3 * bound


OFFERED_ATTACK = make_registry({"d1": [6, 5, 2]}, offered=True)


def test_suppression_hides_ghost_bookings_across_releases(tmp_path: Path) -> None:
    """The same attack on the ghost-booking counts: with the ledger's memory the hidden
    building's count never comes back; without it (the negative control) it does."""
    ledger = tmp_path / "ledger.sqlite"
    first = _attack_release(ledger, districts=["d1"], registry=OFFERED_ATTACK)
    second = _attack_release(ledger, sites=["d1-s0", "d1-s1"], registry=OFFERED_ATTACK)
    assert _difference([first, second], "d1", [A, B], "ghost_bookings") is None
    one = _attack_release(tmp_path / "one.sqlite", districts=["d1"], registry=OFFERED_ATTACK)
    two = _attack_release(tmp_path / "two.sqlite", sites=["d1-s0", "d1-s1"],
                          registry=OFFERED_ATTACK)
    recovered = _difference([one, two], "d1", [A, B], "ghost_bookings")
    assert recovered is not None
    bound = next(q.bound for q in one.noise if q.quantity == "ghost_bookings")
    assert abs(recovered - 2 * 28) <= 3 * bound  # C: 2 rooms ghost-booked 28 days
