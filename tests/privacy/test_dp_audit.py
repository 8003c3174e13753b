"""Empirical epsilon audit of the release path: neighbouring inputs (one room-day changed),
an event chosen where the privacy loss is largest, and Clopper-Pearson bounds on its
probability under each input. The lower bound on epsilon they give must stay under the
declared epsilon; a deliberately under-noised mechanism (negative control) must exceed it.

The noise scale is the one ``build_release`` states and draws with; the true vectors come
from ``aggregate``, the function ``build_release`` calls; the draws go through
``noise.release``, the one OpenDP call of the release path. Bounded: 30,000 draws per
input and case (about 10 s in all on an idle machine).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import pytest

from privacy import noise
from privacy.aggregate import IDLE_M2H, aggregate, areas_in_scope
from privacy.ledger import Ledger
from privacy.release import build_release
from privacy.settings import PrivacySettings
from softplace.storage.base import Sample
from tests.privacy.helpers import make_registry, measure, week_of_data

MONDAY = dt.date(2025, 3, 3)
REGISTRY = make_registry({"d1": [5]})  # one building = its district: 2 released cells
AREAS = areas_in_scope(REGISTRY)
# 1.0 per quantity (5 of them): a visible ratio; a huge error target keeps days
SETTINGS = PrivacySettings(epsilon_per_release=5.0, period="day", max_relative_error=1e9,
                           budgets={"regulator": 5.0})
DRAWS = 30_000
CONFIDENCE_TAIL = 1e-6  # each Clopper-Pearson bound fails with at most this probability

pytestmark = pytest.mark.slow  # Monte Carlo


def _inputs() -> tuple[list[Sample], list[Sample]]:
    """D (room d1-b0-0 idle all day) and D' (the same room busy all day): neighbours."""
    base, _ = week_of_data(REGISTRY, MONDAY, days=1)
    others = [s for s in base if s.tags["room"] != "d1-b0-0"]
    full = [measure("d1-s0", "d1-b0-0", MONDAY, b, idle_m2h=80) for b in ("morning", "afternoon")]
    empty = [measure("d1-s0", "d1-b0-0", MONDAY, b, idle_m2h=0) for b in ("morning", "afternoon")]
    return others + full, others + empty


def _declared(tmp_path: Path, rows: list[Sample]) -> tuple[float, float]:
    """The idle m²·h scale and epsilon that the real release states (and draws with)."""
    with Ledger(tmp_path / "ledger.sqlite", SETTINGS.budgets) as ledger:
        release = build_release(
            REGISTRY, SETTINGS, ledger, recipient="regulator", start=MONDAY,
            end=MONDAY + dt.timedelta(days=1), measures=rows, breaches=[], now_ms=0,
            today=dt.date(2030, 1, 1),
        )
    assert release.period == "day"
    (idle,) = [q for q in release.noise if q.quantity == IDLE_M2H]
    return idle.scale, idle.epsilon


def _vector(rows: list[Sample]) -> list[int]:
    totals = aggregate(REGISTRY, AREAS, rows, [], start=MONDAY,
                       end=MONDAY + dt.timedelta(days=1), kind="day", settings=SETTINGS)
    return totals.values[IDLE_M2H]


def _binom_tail(k: int, n: int, p: float, upper: bool) -> float:
    """P(X >= k) (upper) or P(X <= k) for X ~ Binomial(n, p), summed in log space."""
    if p <= 0:
        return float(upper is False or k <= 0)
    if p >= 1:
        return float(upper or k >= n)
    log_p, log_q = math.log(p), math.log1p(-p)
    span = range(k, n + 1) if upper else range(k, -1, -1)
    total, peak = 0.0, -math.inf
    for i in span:
        term = (math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                + i * log_p + (n - i) * log_q)
        peak = max(peak, term)
        if term < peak - 50:
            break
        total += math.exp(term)
    return min(total, 1.0)


def clopper_pearson(successes: int, n: int, tail: float) -> tuple[float, float]:
    """Exact one-sided bounds: each fails to cover with probability at most ``tail``."""
    def solve(target: float, upper: bool, k: int) -> float:
        low, high = 0.0, 1.0
        for _ in range(60):
            mid = (low + high) / 2
            value = _binom_tail(k, n, mid, upper)
            if (value < target) == upper:
                low = mid
            else:
                high = mid
        return (low + high) / 2

    lower = 0.0 if successes == 0 else solve(tail, True, successes)
    upper = 1.0 if successes == n else solve(tail, False, successes)
    return lower, upper


def _epsilon_lower_bound(d: list[int], d_prime: list[int], scale: float) -> float:
    """The event: every cell at or above its value under D (where D' is lower). For
    independent discrete Laplace cells its probability ratio is exp(L1 / scale), the
    mechanism's worst case."""
    plan = noise.NoisePlan(1, 1.0, scale, 0.05)
    width = len(d)
    hits = []
    for vector in (d, d_prime):
        flat = noise.release(vector * DRAWS, plan)
        hits.append(sum(
            all(flat[i + j] >= d[j] for j in range(width))
            for i in range(0, len(flat), width)
        ))
    p_low, _ = clopper_pearson(hits[0], DRAWS, CONFIDENCE_TAIL)
    _, q_high = clopper_pearson(hits[1], DRAWS, CONFIDENCE_TAIL)
    return math.log(p_low / q_high)


def test_dp_audit_clopper_pearson_bounds_are_exact() -> None:
    low, high = clopper_pearson(30, 100, 0.025)
    assert low == pytest.approx(0.2124, abs=1e-3) and high == pytest.approx(0.3998, abs=1e-3)
    assert clopper_pearson(0, 50, 0.025)[0] == 0.0 and clopper_pearson(50, 50, 0.025)[1] == 1.0


def test_dp_audit_release_path_within_declared_epsilon(tmp_path: Path) -> None:
    rows, rows_prime = _inputs()
    scale, declared = _declared(tmp_path, rows)
    d, d_prime = _vector(rows), _vector(rows_prime)
    assert sum(abs(x - y) for x, y in zip(d, d_prime, strict=True)) == 320
    lower = _epsilon_lower_bound(d, d_prime, scale)
    assert lower <= declared
    # and the audit looks where the loss is: its bound comes close to the declared value
    assert lower >= 0.75 * declared


def test_dp_audit_catches_under_calibrated_noise(tmp_path: Path) -> None:
    """Negative control: noise at a third of the declared scale breaks the declared bound."""
    rows, rows_prime = _inputs()
    scale, declared = _declared(tmp_path, rows)
    assert _epsilon_lower_bound(_vector(rows), _vector(rows_prime), scale / 3) > declared
