"""A regulator release: the model that states its own guarantees, and how one is built.

The ``Release`` model is what leaves the operator. It can only hold building- or
district-level cells, every released cell covers at least ``k`` rooms, and it states its
epsilon, k, mechanism, sensitivity and expected error per quantity. ``build_release``
is pure apart from the ledger charge, which happens before any noise is drawn.
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
    BREACHES,
    IDLE_M2H,
    QUANTITIES,
    USED_M2H,
    Area,
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


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Cell(_Frozen):
    """One released (or suppressed) figure set: a building or district over a period."""

    level: Literal["building", "district"]
    area: str = Field(min_length=1)
    period: str
    status: Suppression
    rooms: int | None = Field(default=None, ge=0, description="rooms covered; absent if hidden")
    available_m2h: float | None = None
    idle_m2h: float | None = None
    utilisation_rate: float | None = Field(default=None, ge=0, le=1)
    breaches: float | None = None

    @model_validator(mode="after")
    def _hidden_means_empty(self) -> Cell:
        figures = (self.rooms, self.available_m2h, self.idle_m2h, self.breaches)
        if self.status is Suppression.RELEASED:
            if any(v is None for v in figures):
                raise ValueError(f"released cell {self.area} {self.period} lacks a figure")
        elif any(v is not None for v in (*figures, self.utilisation_rate)):
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


class Release(_Frozen):
    id: str
    recipient: str
    created_ms: int
    start: dt.date
    end: dt.date  # exclusive
    period: PeriodKind
    requested_period: PeriodKind
    coarsening: str
    k: int = Field(ge=2)
    epsilon: float = Field(ge=0, description="total epsilon charged to the recipient")
    neighbouring: str = NEIGHBOURING
    mechanism: str = noise.MECHANISM
    rng: str
    alpha: float
    noise: list[QuantityNoise]
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


def choose_period(
    registry: Registry, released: Sequence[Area], settings: PrivacySettings
) -> tuple[PeriodKind, str]:
    """The finest period, from the configured one, at which the 95 % error of idle m²·h is
    within ``max_relative_error`` of the smallest released cell's opening capacity."""
    if not released:
        return settings.period, "nothing released"
    share = settings.epsilon_per_release / len(QUANTITIES)
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
    sites: Sequence[str] = (),
    districts: Sequence[str] = (),
    period: PeriodKind | None = None,
    now_ms: int,
) -> Release:
    """Charge the ledger, then aggregate, suppress and add noise. Raises PrivacyError (and
    charges nothing) if the recipient has no budget left."""
    if end <= start:
        raise PrivacyError(f"empty period: {start} .. {end}")
    if period is not None:
        settings = settings.model_copy(update={"period": period})
    areas = areas_in_scope(registry, sites, districts)
    decisions = suppress(areas, settings.k)
    released = [a for a in areas if decisions[a.id].status is Suppression.RELEASED]
    kind, reason = choose_period(registry, released, settings)
    start, end = align(start, end, kind)
    share = settings.epsilon_per_release / len(QUANTITIES)
    sens = sensitivities(registry, released, kind, settings)
    plans = {
        name: noise.plan(sens[name], share, settings.alpha) if released else noise.plan(0, share)
        for name in QUANTITIES
    }
    epsilon = sum(p.epsilon for p in plans.values())
    release_id = uuid.uuid4().hex
    ledger.charge(recipient, epsilon, release_id=release_id, now_ms=now_ms,
                  note=f"{kind} {start}..{end} k={settings.k}")
    totals = aggregate(registry, released, measures, breaches, start=start, end=end, kind=kind,
                       settings=settings)
    if totals.sensitivity != sens:  # pragma: no cover - same function, same inputs
        raise PrivacyError("sensitivity changed between planning and aggregation")
    noisy = {name: noise.release(totals.values[name], plans[name]) for name in QUANTITIES}
    q = settings.m2h_quantum
    cells: list[Cell] = []
    for i, (area, label) in enumerate(totals.cells):
        available = max(noisy[AVAILABLE_M2H][i], 0) * q
        used = max(noisy[USED_M2H][i], 0) * q
        cells.append(Cell(
            level=area.level, area=area.id, period=label, status=Suppression.RELEASED,
            rooms=len(area.rooms), available_m2h=available,
            idle_m2h=min(max(noisy[IDLE_M2H][i], 0) * q, available) if available else 0.0,
            utilisation_rate=min(used / available, 1.0) if available > 0 else None,
            breaches=float(max(noisy[BREACHES][i], 0)),
        ))
    periods = sorted({label for _, label in totals.cells}) or _labels(start, end, kind)
    for area in areas:
        if decisions[area.id].status is not Suppression.RELEASED:
            cells.extend(
                Cell(level=area.level, area=area.id, period=label,
                     status=decisions[area.id].status)
                for label in periods
            )
    units: dict[str, str] = {BREACHES: "breaches"}
    return Release(
        id=release_id, recipient=recipient, created_ms=now_ms, start=start, end=end,
        period=kind, requested_period=settings.period, coarsening=reason, k=settings.k,
        epsilon=epsilon, rng=noise.rng_source(), alpha=settings.alpha,
        noise=[
            QuantityNoise(
                quantity=name, unit=units.get(name, "m²·h"),
                sensitivity=p.sensitivity * (1 if name == BREACHES else q),
                epsilon=p.epsilon, scale=p.scale * (1 if name == BREACHES else q),
                std=p.std * (1 if name == BREACHES else q),
                bound=p.bound * (1 if name == BREACHES else q),
            )
            for name, p in plans.items()
        ],
        suppression={a.id: f"{decisions[a.id].status}: {decisions[a.id].reason}" for a in areas},
        cells=sorted(cells, key=lambda c: (c.period, c.level, c.area)),
    )


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
    state = ledger.state(recipient)
    return Sample(
        SeriesName.PRIVACY_BUDGET, {"recipient": recipient},
        {
            BudgetField.EPSILON_SPENT: state.spent, BudgetField.EPSILON_LIMIT: state.limit,
            BudgetField.RELEASES: state.releases,
        },
        now_ms,
    )
