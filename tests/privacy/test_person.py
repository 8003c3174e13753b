"""The person-level figures docs/privacy.md states are the code's, at the defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from privacy.aggregate import areas_in_scope
from privacy.person import person_month_costs
from privacy.settings import PeriodKind, PrivacySettings
from privacy.suppression import Suppression, suppress
from softplace.registry import load_registry

DOC = Path(__file__).parents[2] / "docs" / "privacy.md"


def _costs(kind: PeriodKind, **overrides: object) -> dict[str, float]:
    registry = load_registry()
    settings = PrivacySettings(**overrides)  # type: ignore[arg-type]
    areas = areas_in_scope(registry)
    decisions = suppress(areas, settings.k)
    released = [a for a in areas if decisions[a.id].status is Suppression.RELEASED]
    return {c.room[1]: c.epsilon for c in person_month_costs(registry, released, kind, settings)}


def test_person_month_costs_are_the_ones_documented() -> None:
    text = " ".join(DOC.read_text(encoding="utf-8").split())
    monthly = _costs("month")
    budget = PrivacySettings().budgets["regulator"] / PrivacySettings().epsilon_per_release
    for room in ("office-1", "hall"):
        assert f"| {monthly[room]:.2f} | {monthly[room] * budget:.3g} |" in text, room
    assert f"{_costs('day')['office-1']:.2f} a month" in text
    assert max(monthly, key=monthly.__getitem__) == "hall"
    assert f"(`meeting-a`) | {monthly['meeting-a']:.2f} |" in text  # offered: bookings cost
    without = _costs("month", epsilon_bookings=1e-12)["meeting-a"]
    assert f"1.40 of their {monthly['meeting-a']:.2f}" in text
    assert f"{monthly['meeting-a'] - without:.2f}" == "1.40"


def test_person_month_cost_scales_with_epsilon_and_falls_with_the_cell_clamp() -> None:
    base = _costs("month")["office-1"]
    assert _costs("month", epsilon_per_release=1.0)["office-1"] == pytest.approx(2 * base)
    # without the per-cell clamp a month's breaches count once per open day
    assert _costs("month", max_breaches_per_room_cell=62)["office-1"] > 4 * base
