"""Which cells may be released: k-threshold primary suppression and secondary suppression.

The hierarchy is district > building. A district's figure is the sum of its buildings', so
if exactly one building of a district were hidden, ``district - sum(other buildings)``
would give it back. Secondary suppression hides further buildings (the smallest first)
until every district either is itself suppressed or hides none or at least two of its
buildings. Room counts come from the registry, so the pattern is the same for every
period and does not depend on the measurements.

Across releases (``hidden``, ``published``: what the ledger remembers of every earlier
release, to any recipient, in any scope): an area hidden once stays hidden, and an area
published once is never chosen to hide a sibling, because the earlier figure would undo
it; a district that has no such sibling left is hidden itself.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass
from enum import StrEnum

from privacy.aggregate import Area


class Suppression(StrEnum):
    RELEASED = "released"
    PRIMARY = "primary"  # fewer than k rooms
    SECONDARY = "secondary"  # hidden so a primary one cannot be recovered by differencing


@dataclass(frozen=True, slots=True)
class Decision:
    area: Area
    status: Suppression
    reason: str


def children_of(district: Area, areas: Sequence[Area]) -> list[Area]:
    return [a for a in areas if a.level == "building" and a.rooms <= district.rooms]


def suppress(
    areas: Sequence[Area], k: int, hidden: Set[str] = frozenset(),
    published: Set[str] = frozenset(),
) -> dict[str, Decision]:
    """Decide every area's status; the result maps area id to its decision."""
    decisions: dict[str, Decision] = {}
    for area in areas:
        if len(area.rooms) < k:
            decisions[area.id] = Decision(
                area, Suppression.PRIMARY, f"covers {len(area.rooms)} rooms, fewer than k={k}"
            )
        elif area.id in hidden:
            decisions[area.id] = Decision(
                area, Suppression.SECONDARY, "hidden in an earlier release, so it stays hidden"
                " (a later figure would let that release be differenced)",
            )
        else:
            decisions[area.id] = Decision(area, Suppression.RELEASED, f"covers >= k={k} rooms")
    changed = True
    while changed:  # hiding a building can only add constraints elsewhere; iterate to a fixpoint
        changed = False
        for district in (a for a in areas if a.level == "district"):
            if decisions[district.id].status is not Suppression.RELEASED:
                continue
            children = children_of(district, areas)
            concealed = [c for c in children
                         if decisions[c.id].status is not Suppression.RELEASED]
            shown = [c for c in children if decisions[c.id].status is Suppression.RELEASED]
            if len(concealed) != 1:
                continue
            fresh = [c for c in shown if c.id not in published]
            if fresh:
                victim = min(fresh, key=lambda c: (len(c.rooms), c.id))
                decisions[victim.id] = Decision(
                    victim, Suppression.SECONDARY,
                    f"hidden with {concealed[0].id} so that {district.id} minus the other"
                    " buildings does not reveal it",
                )
            else:
                decisions[district.id] = Decision(
                    district, Suppression.SECONDARY,
                    f"hidden: {concealed[0].id} is its only hidden building and every other"
                    " one was published before, so the district total would reveal it",
                )
            changed = True
    return decisions


def recoverable(areas: Sequence[Area], decisions: dict[str, Decision]) -> list[str]:
    """Hidden buildings that one subtraction would reveal (the invariant tests check)."""
    found: list[str] = []
    for district in (a for a in areas if a.level == "district"):
        if decisions[district.id].status is not Suppression.RELEASED:
            continue
        children = children_of(district, areas)
        hidden = [c for c in children if decisions[c.id].status is not Suppression.RELEASED]
        if len(hidden) == 1:
            found.append(hidden[0].id)
    return found
