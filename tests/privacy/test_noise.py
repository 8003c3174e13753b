from __future__ import annotations

import math
import statistics

import pytest

from privacy import noise
from softplace.errors import PrivacyError
from tests.privacy.stats import chi2_quantile, chi2_statistic

N = 20_000
SCALE = 3.0


def _draws(scale: float, n: int = N) -> list[int]:
    return noise.release([0] * n, noise.NoisePlan(1, 1.0, scale, 0.05))


def test_noise_follows_discrete_laplace_pmf() -> None:
    chi2, df = chi2_statistic(_draws(SCALE), lambda z: noise.discrete_laplace_pmf(z, SCALE))
    assert chi2 < chi2_quantile(0.9999, df), (chi2, df)


def test_noise_chi2_test_detects_a_wrong_scale() -> None:
    """The same test rejects noise 25 % narrower than declared: it has power."""
    chi2, df = chi2_statistic(_draws(SCALE / 1.25), lambda z: noise.discrete_laplace_pmf(z, SCALE))
    assert chi2 > chi2_quantile(0.9999, df)


def test_noise_variance_matches_declared_std() -> None:
    draws = _draws(SCALE)
    declared = noise.discrete_laplace_std(SCALE) ** 2
    # sd of a sample variance of Laplace-like noise is about sqrt(5 / n) of the variance
    tolerance = 5 * math.sqrt(5 / N)
    assert abs(statistics.pvariance(draws) / declared - 1) < tolerance
    assert abs(statistics.fmean(draws)) < 5 * math.sqrt(declared / N)


@pytest.mark.slow  # Monte Carlo
def test_noise_bound_holds_with_declared_probability() -> None:
    plan = noise.NoisePlan(1, 1.0, SCALE, 0.05)
    outside = sum(abs(d) > plan.bound for d in _draws(SCALE)) / N
    assert outside <= 0.05 + 5 * math.sqrt(0.05 * 0.95 / N)


def test_noise_plan_epsilon_is_opendp_map() -> None:
    plan = noise.plan(sensitivity=320, epsilon=0.25)
    assert plan.epsilon <= 0.25
    assert plan.scale == pytest.approx(320 / 0.25, rel=1e-6)
    assert noise.plan(0, 0.25).epsilon == 0.0  # data-independent query costs nothing


def test_noise_plan_refuses_non_positive_epsilon() -> None:
    with pytest.raises(PrivacyError):
        noise.plan(10, 0.0)


def test_noise_unseeded_draws_differ() -> None:
    assert _draws(50.0, 64) != _draws(50.0, 64)


def test_noise_rng_source_is_os_seeded_csprng() -> None:
    assert "OS entropy" in noise.rng_source()
