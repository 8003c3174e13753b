"""Discrete Laplace noise on integer vectors through OpenDP (the only OpenDP import).

Why discrete: adding floating-point Laplace noise leaks the true value through the
pattern of representable doubles (Mironov 2012). OpenDP's ``make_laplace`` on an integer
domain samples the discrete Laplace (two-sided geometric) distribution exactly, from
random bytes only (Canonne-Kamath-Steinke 2020), so the privacy proof holds for the
implementation, not just for the maths.

Randomness: OpenDP draws every bit through its ``fill_bytes``; the PyPI wheels are built
with the ``use-openssl`` feature, which routes it to OpenSSL's ``RAND_bytes`` (a DRBG
seeded from the operating system's entropy source). There is no seed to set, and no
seed is ever set here; ``rng_source()`` reports what the installed library links.
"""

from __future__ import annotations

import math
import mmap
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from softplace.errors import PrivacyError

MECHANISM = "discrete Laplace (OpenDP make_laplace on i64 vectors, L1 sensitivity)"


@cache
def _dp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


@dataclass(frozen=True, slots=True)
class NoisePlan:
    """A calibrated mechanism for one integer vector query."""

    sensitivity: int  # L1 distance between neighbouring inputs' query vectors
    epsilon: float  # what OpenDP's privacy map says the mechanism spends at that distance
    scale: float  # discrete Laplace scale b: P(z) proportional to exp(-|z| / b)
    alpha: float

    @property
    def std(self) -> float:
        """Exact standard deviation of the discrete Laplace with this scale."""
        return discrete_laplace_std(self.scale)

    @property
    def bound(self) -> float:
        """|noise| <= bound with probability 1 - alpha, per cell (OpenDP's accuracy)."""
        return accuracy(self.scale, self.alpha)


def accuracy(scale: float, alpha: float) -> float:
    """|noise| <= this with probability 1 - alpha, for discrete Laplace noise of ``scale``."""
    if scale == 0:
        return 0.0
    value: float = _dp().discrete_laplacian_scale_to_accuracy(scale, alpha)
    return value


def discrete_laplace_std(scale: float) -> float:
    if scale == 0:
        return 0.0
    p = math.exp(-1 / scale)
    return math.sqrt(2 * p) / (1 - p)


def discrete_laplace_pmf(z: int, scale: float) -> float:
    p = math.exp(-1 / scale)
    return (1 - p) / (1 + p) * p ** abs(z)


def _measurement(scale: float) -> Any:
    dp = _dp()
    space = dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64")
    return dp.m.make_laplace(*space, scale=scale)


@cache  # a deterministic binary search through OpenDP's map, about 0.1 s a call
def plan(sensitivity: int, epsilon: float, alpha: float = 0.05) -> NoisePlan:
    """The smallest scale whose OpenDP privacy map stays within ``epsilon`` at
    ``sensitivity``; the stated epsilon is the map's own answer."""
    if epsilon <= 0:
        raise PrivacyError(f"epsilon must be > 0, got {epsilon}")
    if sensitivity < 0:
        raise PrivacyError(f"sensitivity must be >= 0, got {sensitivity}")
    if sensitivity == 0:  # the query does not depend on the data: no noise needed
        return NoisePlan(0, 0.0, 0.0, alpha)
    dp = _dp()
    scale = float(dp.binary_search_param(_measurement, d_in=sensitivity, d_out=epsilon))
    spent = float(_measurement(scale).map(sensitivity))
    if spent > epsilon:  # pragma: no cover - binary_search_param guarantees this
        raise PrivacyError(f"OpenDP map gives {spent} > {epsilon} at scale {scale}")
    return NoisePlan(sensitivity, spent, scale, alpha)


def release(values: list[int], noise: NoisePlan) -> list[int]:
    """Add independent discrete Laplace noise to each value (one OpenDP call)."""
    if noise.scale == 0 or not values:
        return list(values)
    try:
        noisy: list[int] = _measurement(noise.scale)(values)
    except Exception as err:  # OpenDPException: translate at the boundary
        raise PrivacyError(f"OpenDP could not release: {err}") from err
    return noisy


def rng_source() -> str:
    """Which secure random source the installed OpenDP library links (for the report)."""
    import opendp

    lib = next(iter(sorted((Path(opendp.__file__).parent / "lib").glob("*opendp*"))), None)
    if lib is None:
        return "unknown (OpenDP library not found)"
    with lib.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data.find(b"RAND_bytes") >= 0:
            return "OpenSSL RAND_bytes (DRBG seeded from the OS entropy source)"
        if data.find(b"LocalCtrDrbg") >= 0 or data.find(b"getrandom") >= 0:
            return "CTR-DRBG seeded from the OS entropy source (getrandom)"
    return "unknown: check OpenDP's build features"
