"""Empirical epsilon audit: the release on two neighbouring inputs (one room-day changed)
stays within the declared epsilon, and the audit would catch a mechanism that does not."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter

import pytest

from privacy import noise
from privacy.aggregate import aggregate, areas_in_scope
from privacy.settings import PrivacySettings
from tests.privacy.helpers import make_registry, measure, week_of_data

MONDAY = dt.date(2025, 3, 3)
REGISTRY = make_registry({"d1": [5]})  # one building = its district: 2 released cells
AREAS = areas_in_scope(REGISTRY)
SETTINGS = PrivacySettings(epsilon_per_release=4.0)  # 1.0 per quantity: a visible ratio
EPSILON = SETTINGS.epsilon_per_release / 4
DRAWS = 150_000

pytestmark = pytest.mark.slow  # Monte Carlo: DRAWS releases per case


def _neighbours() -> tuple[list[int], list[int], int]:
    """idle m²·h vectors for D (room idle all day) and D' (room busy all day)."""
    base, _ = week_of_data(REGISTRY, MONDAY)
    room = [s for s in base if s.tags["room"] == "d1-b0-0" and s.time_ms == base[0].time_ms]
    others = [s for s in base if s not in room]
    full = [measure("d1-s0", "d1-b0-0", MONDAY, b, idle_m2h=80) for b in ("morning", "afternoon")]
    empty = [measure("d1-s0", "d1-b0-0", MONDAY, b, idle_m2h=0) for b in ("morning", "afternoon")]
    totals = []
    for rows in (others + full, others + empty):
        totals.append(aggregate(REGISTRY, AREAS, rows, [], start=MONDAY,
                                end=MONDAY + dt.timedelta(days=1), kind="day",
                                settings=SETTINGS))
    return totals[0].values["idle_m2h"], totals[1].values["idle_m2h"], \
        totals[0].sensitivity["idle_m2h"]


def _summed_draws(vector: list[int], scale: float) -> list[int]:
    """Release the vector DRAWS times; keep the sum of its cells (post-processing)."""
    flat = noise.release(vector * DRAWS, noise.NoisePlan(1, 1.0, scale, 0.05))
    width = len(vector)
    return [sum(flat[i:i + width]) for i in range(0, len(flat), width)]


def _max_log_ratio(
    a: list[int], b: list[int], bin_width: int, min_count: int = 2000, sds: float = 5.0
) -> float:
    """Largest |log(P_a(bin) / P_b(bin))| over bins well populated on both sides, minus
    ``sds`` standard errors (so sampling noise alone cannot push it over)."""
    ha = Counter(x // bin_width for x in a)
    hb = Counter(x // bin_width for x in b)
    worst = 0.0
    for key in set(ha) & set(hb):
        ca, cb = ha[key], hb[key]
        if ca >= min_count and cb >= min_count:
            margin = sds * math.sqrt(1 / ca + 1 / cb)
            worst = max(worst, abs(math.log(ca / cb)) - margin)
    return worst


def test_dp_audit_neighbouring_room_day_within_declared_epsilon() -> None:
    d, d_prime, sensitivity = _neighbours()
    assert sum(abs(x - y) for x, y in zip(d, d_prime, strict=True)) == sensitivity == 320
    plan = noise.plan(sensitivity, EPSILON)
    a = _summed_draws(d, plan.scale)
    b = _summed_draws(d_prime, plan.scale)
    assert _max_log_ratio(a, b, bin_width=int(plan.scale // 4)) <= plan.epsilon
    # the audit looks where the privacy loss is: the raw ratio gets near the bound
    assert _max_log_ratio(a, b, bin_width=int(plan.scale // 4), sds=0) >= 0.5 * plan.epsilon


def test_dp_audit_catches_under_calibrated_noise() -> None:
    """Negative control: noise at a third of the declared scale breaks the declared bound."""
    d, d_prime, sensitivity = _neighbours()
    plan = noise.plan(sensitivity, EPSILON)
    a = _summed_draws(d, plan.scale / 3)
    b = _summed_draws(d_prime, plan.scale / 3)
    assert _max_log_ratio(a, b, bin_width=int(plan.scale // 12)) > plan.epsilon
