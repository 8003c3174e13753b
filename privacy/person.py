"""The person-level cost of a release (``docs/privacy.md`` §4): group privacy over the
room-days one person touches. Pure; registry facts and the noise plans only.

A release protects one room-day at its epsilon. One person present in one room every
open day of a month changes that room's idle and utilised m²·h by at most the room's
clamped opening m²·h each day, and its breaches by at most the per-room-day clamp, in
every released area holding the room; their presence changes neither the available
m²·h nor the observed hours (opening hours and sensor uptime). For discrete Laplace noise
of scale b, an L1 change of D costs D / b, so the person's cost is, per quantity,
``epsilon_q x D_q / sensitivity_q``, summed over the quantities. In an offered room their
presence also decides whether each counted booking was used or a ghost: at most the
per-room-day booking clamp (and its used-hours clamp) on each of the month's open days,
plus the day before the first one (a booking may start there and run into it).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from privacy import noise
from privacy.aggregate import (
    BOOKED_USED_H,
    BOOKING_QUANTITIES,
    BREACHES,
    GHOST_BOOKINGS,
    IDLE_M2H,
    MEASURE_QUANTITIES,
    QUANTITIES,
    USED_M2H,
    Area,
    RoomKey,
    eligible,
    hour_units,
    room_facts,
    sensitivities,
)
from privacy.settings import PeriodKind, PrivacySettings
from softplace.registry import Registry

MONTH_DAYS = 31  # the longest month: the cost is stated for it


@dataclass(frozen=True, slots=True)
class PersonCost:
    room: RoomKey
    open_days: int
    epsilon: float  # for one person present in this room every open day of a month


def person_month_costs(
    registry: Registry, released: Sequence[Area], kind: PeriodKind, settings: PrivacySettings,
) -> list[PersonCost]:
    """Per eligible room in the released areas, the epsilon one release spends on a person
    present there for a whole month (most expensive first)."""
    sens = sensitivities(registry, released, kind, settings)
    share = {name: settings.epsilon_per_release / len(MEASURE_QUANTITIES)
             for name in MEASURE_QUANTITIES}
    share |= {name: settings.epsilon_bookings / len(BOOKING_QUANTITIES)
              for name in BOOKING_QUANTITIES}
    plans = {name: noise.plan(sens[name], share[name], settings.alpha) for name in QUANTITIES}
    holders: dict[RoomKey, int] = defaultdict(int)
    for area in released:
        for room in area.rooms:
            holders[room] += 1
    costs: list[PersonCost] = []
    for placed in registry.placed_rooms():
        facts = room_facts(placed)
        if not eligible(placed) or facts.key not in holders:
            continue
        day_hours = [
            sum(r.end_minute - r.start_minute for r in placed.opening_hours.ranges(d)) / 60
            for d in range(7)
        ]
        month = [min(day_hours[d % 7], facts.max_day_hours) for d in range(MONTH_DAYS)]
        open_days = sum(h > 0 for h in month)
        n = holders[facts.key]
        change = {
            IDLE_M2H: math.ceil(facts.area_m2 * sum(month) / settings.m2h_quantum) * n,
            USED_M2H: math.ceil(facts.area_m2 * sum(month) / settings.m2h_quantum) * n,
            BREACHES: _breach_change(open_days, kind, settings) * n,
        }
        if facts.offered:
            days = open_days + 1
            change[GHOST_BOOKINGS] = settings.max_bookings_per_room_day * days * n
            change[BOOKED_USED_H] = hour_units(facts) * days * n
        epsilon = sum(plans[q].epsilon * change[q] / sens[q] for q in change if sens[q] > 0)
        costs.append(PersonCost(facts.key, open_days, epsilon))
    return sorted(costs, key=lambda c: -c.epsilon)


def _breach_change(open_days: int, kind: PeriodKind, settings: PrivacySettings) -> int:
    """Most breaches a month of one room can move, over the cells of one area: per cell,
    the cell clamp or the day clamp times its days, whichever is smaller."""
    per_day = settings.max_breaches_per_room_day
    per_cell = settings.max_breaches_per_room_cell
    if kind == "half_day":
        return min(per_day, per_cell) * 2 * open_days
    days_per_cell = {"day": 1, "week": 7, "month": MONTH_DAYS}[kind]
    cells = math.ceil(MONTH_DAYS / days_per_cell) + (kind == "week")
    full, rest = divmod(open_days, days_per_cell)
    by_cell = [days_per_cell] * full + ([rest] if rest else [])
    return sum(min(per_cell, per_day * d) for d in by_cell[:cells])
