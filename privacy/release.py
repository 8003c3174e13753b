"""A regulator release: the model that states its own guarantees, and how one is built.

The ``Release`` model is what leaves the operator. It can only hold building- or
district-level cells, every released cell covers at least ``k`` rooms, and it states its
epsilon, k, mechanism, sensitivity and expected error per quantity. ``build_release``
reads the ledger (budget left, areas hidden or published before) but charges nothing:
``softplace export`` charges only once the files are written and fsynced.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from privacy import noise
from privacy.aggregate import (
    AVAILABLE_M2H,
    BOOKED_H_QUANTUM,
    BOOKED_USED_H,
    BOOKING_QUANTITIES,
    BREACHES,
    GHOST_BOOKINGS,
    IDLE_M2H,
    MEASURE_QUANTITIES,
    OBSERVED_H,
    QUANTITIES,
    USED_M2H,
    Area,
    CellTotals,
    aggregate,
    align,
    areas_in_scope,
    opening_capacity_m2h,
    period_start,
    periods_between,
    sensitivities,
)
from privacy.ledger import Ledger
from privacy.settings import PERIODS, PeriodKind, PrivacySettings
from privacy.suppression import Suppression, suppress
from softplace.errors import PrivacyError
from softplace.registry import Registry
from softplace.schema import AggregateField, BudgetField, SeriesName
from softplace.storage.base import Sample
from softplace.timeutil import MS_PER_H, datetime_to_ms

NEIGHBOURING = "one room-day's measures changed arbitrarily (room and its area public)"
CLIPPING = (
    "Figures are clipped after the noise: sums at 0 (and idle at available), the rate to"
    " [0, 1]. Clipping is post-processing (no privacy cost) but it biases cells whose true"
    " value is within a few noise scales of 0 upwards on average, and often publishes a"
    " small true value as 0; the _low/_high interval, built from the unclipped noisy value,"
    " is the honest statement of what the cell can be."
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


LOW, HIGH = "_low", "_high"
# released quantity -> the noised sum it comes from (the rate comes from two of them)
INTERVALS = (AVAILABLE_M2H, IDLE_M2H, AggregateField.UTILISATION_RATE, BREACHES, OBSERVED_H,
             GHOST_BOOKINGS, BOOKED_USED_H)
BOOKINGS_NOTE = (
    "Ghost bookings and booked-and-used hours count the accepted bookings that started in"
    " the cell and were compared with the sensors; a ghost booking had nobody in its first"
    " minutes and presence under a share of its slot. Whether a booking was used derives"
    " from presence, so both are noised and charged like the other figures. Nothing about"
    " who booked is read or released."
)


class Cell(_Frozen):
    """One released (or suppressed) figure set: a building or district over a period.

    Each figure is clipped to its possible range after the noise (post-processing); its
    ``_low``/``_high`` interval is built from the unclipped noisy value and holds with
    probability ``1 - alpha`` (for the rate: both of its sums' bounds at ``alpha / 2``)."""

    level: Literal["building", "district"]
    area: str = Field(min_length=1)
    period: str
    status: Suppression
    rooms: int | None = Field(default=None, ge=0, description="rooms covered; absent if hidden")
    available_m2h: float | None = None
    available_m2h_low: float | None = None
    available_m2h_high: float | None = None
    idle_m2h: float | None = None
    idle_m2h_low: float | None = None
    idle_m2h_high: float | None = None
    utilisation_rate: float | None = Field(default=None, ge=0, le=1)
    utilisation_rate_low: float | None = Field(default=None, ge=0, le=1)
    utilisation_rate_high: float | None = Field(default=None, ge=0, le=1)
    breaches: float | None = None
    breaches_low: float | None = None
    breaches_high: float | None = None
    observed_h: float | None = Field(default=None, description="coverage: room-hours observed")
    observed_h_low: float | None = None
    observed_h_high: float | None = None
    ghost_bookings: float | None = Field(default=None, description="ghost bookings, noised")
    ghost_bookings_low: float | None = None
    ghost_bookings_high: float | None = None
    booked_used_h: float | None = Field(default=None,
                                        description="hours booked and used, noised")
    booked_used_h_low: float | None = None
    booked_used_h_high: float | None = None

    @model_validator(mode="after")
    def _hidden_means_empty(self) -> Cell:
        figures = (self.rooms, self.available_m2h, self.idle_m2h, self.breaches, self.observed_h,
                   self.ghost_bookings, self.booked_used_h)
        if self.status is Suppression.RELEASED:
            if any(v is None for v in figures):
                raise ValueError(f"released cell {self.area} {self.period} lacks a figure")
        elif any(v is not None for k, v in self if k not in {"level", "area", "period",
                                                             "status"}):
            raise ValueError(f"suppressed cell {self.area} {self.period} carries a figure")
        return self


class QuantityNoise(_Frozen):
    quantity: str
    unit: str
    sensitivity: float = Field(description="L1 sensitivity in the unit, over all cells")
    epsilon: float
    scale: float = Field(description="discrete Laplace scale b in the unit")
    std: float = Field(description="standard deviation of the noise per cell")
    bound: float = Field(description="|noise| <= bound per cell with probability 1 - alpha")


class BudgetStatement(_Frozen):
    """What this release costs the recipient, under parallel composition over room-days:
    the window is the days this release reads; ``spent_in_window`` is, after this release,
    the largest total epsilon any room-day of the window has received from all releases."""

    epsilon_this_release: float
    window_first_day: dt.date
    window_last_day: dt.date
    spent_in_window: float
    limit: float
    left_in_window: float
    releases_to_recipient: int


class Release(_Frozen):
    id: str
    recipient: str
    created_ms: int
    start: dt.date
    end: dt.date  # exclusive
    requested_first_day: dt.date
    requested_last_day: dt.date
    widening: str = Field(description="how and why the requested days were widened, or none")
    period: PeriodKind
    requested_period: PeriodKind
    coarsening: str
    k: int = Field(ge=2)
    epsilon: float = Field(ge=0, description="total epsilon charged to the recipient")
    budget: BudgetStatement
    neighbouring: str = NEIGHBOURING
    mechanism: str = noise.MECHANISM
    rng: str
    alpha: float
    noise: list[QuantityNoise]
    clipping: str = CLIPPING
    bookings: str = BOOKINGS_NOTE
    suppression: dict[str, str] = Field(description="area -> why it is hidden or released")
    cells: list[Cell]

    @model_validator(mode="after")
    def _no_small_cells(self) -> Release:
        for cell in self.cells:
            if cell.status is Suppression.RELEASED and (cell.rooms or 0) < self.k:
                raise ValueError(f"cell {cell.area} covers {cell.rooms} rooms < k={self.k}")
        declared = sum(q.epsilon for q in self.noise)
        if not math.isclose(declared, self.epsilon, rel_tol=1e-9, abs_tol=1e-12):
            raise ValueError(f"epsilon {self.epsilon} differs from the per-quantity sum {declared}")
        return self

    def hidden_areas(self) -> set[str]:
        return {c.area for c in self.cells if c.status is not Suppression.RELEASED}

    def published_areas(self) -> set[str]:
        return {c.area for c in self.cells if c.status is Suppression.RELEASED}


def choose_period(
    registry: Registry, released: Sequence[Area], settings: PrivacySettings
) -> tuple[PeriodKind, str]:
    """The finest period, from the configured one, at which the 95 % error of idle m²·h is
    within ``max_relative_error`` of the smallest released cell's opening capacity."""
    if not released:
        return settings.period, "nothing released"
    share = settings.epsilon_per_release / len(MEASURE_QUANTITIES)
    candidates = PERIODS[PERIODS.index(settings.period):]
    for kind in candidates:
        plan = noise.plan(sensitivities(registry, released, kind, settings)[IDLE_M2H], share,
                          settings.alpha)
        capacity = min(opening_capacity_m2h(registry, a, kind) for a in released)
        error = plan.bound * settings.m2h_quantum
        if error <= settings.max_relative_error * capacity:
            return kind, (
                f"{kind}: idle m²·h error ±{error:.0f} <= {settings.max_relative_error:g} x"
                f" smallest cell capacity {capacity:.0f}"
            )
    return candidates[-1], (
        f"{candidates[-1]}: error target not met even at the coarsest period (±{error:.0f}"
        f" vs capacity {capacity:.0f}); raise epsilon_per_release or release fewer levels"
    )


def _interval(value: int, scale: float, alpha: float, unit: float) -> tuple[float, float]:
    bound = noise.accuracy(scale, alpha)
    return max(value - bound, 0) * unit, max(value + bound, 0) * unit


def _rate_interval(used: int, available: int, used_scale: float, available_scale: float,
                   alpha: float) -> tuple[float, float] | tuple[None, None]:
    """Utilised / available over both sums' ``alpha / 2`` bounds (union bound: 1 - alpha)."""
    bu, ba = noise.accuracy(used_scale, alpha / 2), noise.accuracy(available_scale, alpha / 2)
    if available + ba <= 0:
        return None, None
    low = max(used - bu, 0) / (available + ba)
    high = 1.0 if available - ba <= 0 else min(max(used + bu, 0) / (available - ba), 1.0)
    return min(low, 1.0), high


def build_release(
    registry: Registry,
    settings: PrivacySettings,
    ledger: Ledger,
    *,
    recipient: str,
    start: dt.date,
    end: dt.date,
    measures: Iterable[Sample],
    breaches: Iterable[Sample],
    bookings: Iterable[Sample] = (),
    sites: Sequence[str] = (),
    districts: Sequence[str] = (),
    period: PeriodKind | None = None,
    now_ms: int,
    today: dt.date,
) -> Release:
    """Aggregate, suppress and add noise for the days ``[start, end)``. Charges nothing:
    the caller charges ``release.epsilon`` once the files are on disk. Raises PrivacyError
    if the recipient's budget for these days would be exceeded, if any day is today or
    later, or if a period of the release has no observed data at all."""
    if end <= start:
        raise PrivacyError(f"empty period: {start} .. {end}")
    requested = (start, end)
    if period is not None:
        settings = settings.model_copy(update={"period": period})
    areas = areas_in_scope(registry, sites, districts)
    decisions = suppress(areas, settings.k, ledger.hidden_areas(), ledger.published_areas())
    released = [a for a in areas if decisions[a.id].status is Suppression.RELEASED]
    kind, reason = choose_period(registry, released, settings)
    start, end = align(start, end, kind)
    last = end - dt.timedelta(days=1)
    if end > today:
        raise PrivacyError(
            f"the release would cover {start}..{last}, which reaches today"
            f" ({today}) or the future: only whole past days can be released"
        )
    widening = "none" if (start, end) == requested else (
        f"widened from {requested[0]}..{requested[1] - dt.timedelta(days=1)} to"
        f" {start}..{last} so that every {kind.replace('_', '-')} cell is whole"
    )
    share = {name: settings.epsilon_per_release / len(MEASURE_QUANTITIES)
             for name in MEASURE_QUANTITIES}
    share |= {name: settings.epsilon_bookings / len(BOOKING_QUANTITIES)
              for name in BOOKING_QUANTITIES}
    sens = sensitivities(registry, released, kind, settings)
    plans = {
        name: noise.plan(sens[name] if released else 0, share[name], settings.alpha)
        for name in QUANTITIES
    }
    epsilon = sum(p.epsilon for p in plans.values())
    budget = ledger.check(recipient, epsilon, start, end)
    totals = aggregate(registry, released, measures, breaches, start=start, end=end, kind=kind,
                       settings=settings, bookings=bookings)
    if totals.sensitivity != sens:  # pragma: no cover - same function, same inputs
        raise PrivacyError("sensitivity changed between planning and aggregation")
    empty = _uncovered(totals)
    if released and empty:
        raise PrivacyError(
            f"no observed data in {', '.join(empty[:6])}"
            f"{' ...' if len(empty) > 6 else ''}; a release there would be pure noise"
        )
    noisy = {name: noise.release(totals.values[name], plans[name]) for name in QUANTITIES}
    q = settings.m2h_quantum
    # each quantity's unit per integer step of its noised sum
    step = {AVAILABLE_M2H: q, IDLE_M2H: q, USED_M2H: q, BREACHES: 1.0, OBSERVED_H: 1.0,
            GHOST_BOOKINGS: 1.0, BOOKED_USED_H: BOOKED_H_QUANTUM}
    cells: list[Cell] = []
    for i, (area, label) in enumerate(totals.cells):
        figures: dict[str, float | None] = {}
        for name in (AVAILABLE_M2H, IDLE_M2H, BREACHES, OBSERVED_H, GHOST_BOOKINGS,
                     BOOKED_USED_H):
            unit = step[name]
            figures[name] = max(noisy[name][i], 0) * unit
            figures[name + LOW], figures[name + HIGH] = _interval(
                noisy[name][i], plans[name].scale, settings.alpha, unit)
        available = figures[AVAILABLE_M2H] or 0.0
        used = max(noisy[USED_M2H][i], 0) * q
        figures[IDLE_M2H] = min(figures[IDLE_M2H] or 0.0, available) if available else 0.0
        rate = AggregateField.UTILISATION_RATE
        figures[rate] = min(used / available, 1.0) if available > 0 else None
        figures[rate + LOW], figures[rate + HIGH] = _rate_interval(
            noisy[USED_M2H][i], noisy[AVAILABLE_M2H][i], plans[USED_M2H].scale,
            plans[AVAILABLE_M2H].scale, settings.alpha)
        cells.append(Cell.model_validate({
            "level": area.level, "area": area.id, "period": label,
            "status": Suppression.RELEASED, "rooms": len(area.rooms), **figures,
        }))
    periods = sorted({label for _, label in totals.cells}) or _labels(start, end, kind)
    for area in areas:
        if decisions[area.id].status is not Suppression.RELEASED:
            cells.extend(
                Cell(level=area.level, area=area.id, period=label,
                     status=decisions[area.id].status)
                for label in periods
            )
    units: dict[str, str] = {BREACHES: "breaches", OBSERVED_H: "h",
                             GHOST_BOOKINGS: "ghost bookings", BOOKED_USED_H: "h"}
    return Release(
        id=uuid.uuid4().hex, recipient=recipient, created_ms=now_ms, start=start, end=end,
        requested_first_day=requested[0], requested_last_day=requested[1] - dt.timedelta(days=1),
        widening=widening, period=kind, requested_period=settings.period, coarsening=reason,
        k=settings.k, epsilon=epsilon,
        budget=BudgetStatement(
            epsilon_this_release=epsilon, window_first_day=start, window_last_day=last,
            spent_in_window=budget.spent, limit=budget.limit, left_in_window=budget.remaining,
            releases_to_recipient=budget.releases,
        ),
        rng=noise.rng_source(), alpha=settings.alpha,
        noise=[
            QuantityNoise(
                quantity=name, unit=units.get(name, "m²·h"),
                sensitivity=p.sensitivity * step[name],
                epsilon=p.epsilon, scale=p.scale * step[name],
                std=p.std * step[name],
                bound=p.bound * step[name],
            )
            for name, p in plans.items()
        ],
        suppression={a.id: f"{decisions[a.id].status}: {decisions[a.id].reason}" for a in areas},
        cells=sorted(cells, key=lambda c: (c.period, c.level, c.area)),
    )


def _uncovered(totals: CellTotals) -> list[str]:
    """Periods in which no released cell observed a single hour (before noise)."""
    observed: dict[str, int] = {}
    for (_, label), hours in zip(totals.cells, totals.values[OBSERVED_H], strict=True):
        observed[label] = observed.get(label, 0) + hours
    return sorted(label for label, hours in observed.items() if hours <= 0)


def _labels(start: dt.date, end: dt.date, kind: PeriodKind) -> list[str]:
    return periods_between(start, end, kind)


def to_samples(release: Release) -> list[Sample]:
    """The release as ``regulator_aggregate`` points (time = start of the period, UTC)."""
    samples: list[Sample] = []
    for cell in release.cells:
        day = period_start(cell.period)
        time_ms = datetime_to_ms(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC))
        if cell.period.endswith("/pm"):
            time_ms += 12 * MS_PER_H
        fields: dict[str, int | float] = {
            AggregateField.EPSILON: release.epsilon, AggregateField.K: release.k,
            AggregateField.SUPPRESSED: 0 if cell.status is Suppression.RELEASED else 1,
        }
        for name in (AggregateField.AVAILABLE_M2H, AggregateField.IDLE_M2H,
                     AggregateField.UTILISATION_RATE, AggregateField.BREACHES,
                     AggregateField.GHOST_BOOKINGS, AggregateField.BOOKED_USED_H,
                     AggregateField.ROOMS):
            value = getattr(cell, name)
            if value is not None:
                fields[name] = value
        samples.append(Sample(
            SeriesName.REGULATOR_AGGREGATE,
            {"recipient": release.recipient, "level": cell.level, "area": cell.area,
             "period": cell.period},
            fields, time_ms,
        ))
    return samples


def budget_sample(ledger: Ledger, recipient: str, now_ms: int) -> Sample:
    """The recipient's spending after a charge: ``epsilon_spent`` is the plain total over
    every release (it only grows, so ``export`` and ``audit`` can tell a ledger that lost
    charges), ``epsilon_limit`` the per-room-day budget."""
    state = ledger.state(recipient)
    return Sample(
        SeriesName.PRIVACY_BUDGET, {"recipient": recipient},
        {
            BudgetField.EPSILON_SPENT: state.total, BudgetField.EPSILON_LIMIT: state.limit,
            BudgetField.RELEASES: state.releases,
        },
        now_ms,
    )
