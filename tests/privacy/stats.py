"""Small statistics for the noise tests (no scipy needed)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from statistics import NormalDist


def chi2_quantile(p: float, df: int) -> float:
    """Wilson-Hilferty approximation of the chi-square quantile (good for df >= 3)."""
    z = NormalDist().inv_cdf(p)
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def chi2_statistic(draws: Sequence[int], pmf: Callable[[int], float]) -> tuple[float, int]:
    """Chi-square of integer draws against a symmetric pmf; bins |z| <= K plus two tails,
    K the largest value whose expected count is >= 20."""
    n = len(draws)
    k = 0
    while n * pmf(k + 1) >= 20:
        k += 1
    counts = Counter(max(min(d, k + 1), -k - 1) for d in draws)
    inner = sum(pmf(z) for z in range(-k, k + 1))
    tail = (1 - inner) / 2
    chi2 = 0.0
    for z in range(-k - 1, k + 2):
        expected = n * (tail if abs(z) == k + 1 else pmf(z))
        chi2 += (counts.get(z, 0) - expected) ** 2 / expected
    return chi2, 2 * k + 2  # bins - 1 degrees of freedom
