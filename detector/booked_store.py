"""The booked-time rule's store side: the ``booking`` series read back as spans, the rule
applied to breaches before the detector writes them, and a room-day's stored breaches
re-derived when its bookings changed after they were written.

``BOOKED_TIME_RULE`` itself is pure (``detector/booked.py``); this module is the shell
around it that batch, service and report share.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from detector.booked import (
    BookedSpan,
    BookedUse,
    Span,
    apply_to_breaches,
    booked_signature,
    breaches_from_intervals,
)
from detector.breaches import Breach, limit_ms_for
from detector.days import RoomCalendar
from detector.measures import RoomRef
from detector.records import breach_sample, day_bounds_ms, interval_from_sample
from detector.settings import DetectorSettings
from softplace.registry import Site
from softplace.schema import BookingField, SeriesName
from softplace.storage.base import Sample, Store
from softplace.timeutil import MS_PER_H

BOOKED_LOOKBACK_MS = 24 * MS_PER_H  # a booking that started the day before may reach in


def booked_from_sample(sample: Sample) -> BookedSpan | None:
    """A ``booking`` point as a span; None without a room or an end."""
    room, end = sample.tags.get("room"), sample.fields.get(BookingField.END_MS)
    if not room or end is None:
        return None
    fields = sample.fields
    if not fields.get(BookingField.CHECKED):
        use = BookedUse.AHEAD
    elif fields.get(BookingField.GHOST):
        use = BookedUse.GHOST
    elif fields.get(BookingField.UNKNOWN):
        use = BookedUse.UNKNOWN
    else:
        use = BookedUse.USED
    return BookedSpan(room, sample.time_ms, int(str(end)), use)


def stored_booked(store: Store, site: Site, lo_ms: int, hi_ms: int) -> list[BookedSpan]:
    """The site's accepted bookings overlapping ``[lo, hi)`` from the ``booking`` series."""
    found = (booked_from_sample(s) for s in store.query(
        SeriesName.BOOKING, lo_ms - BOOKED_LOOKBACK_MS, hi_ms, {"site": site.id}))
    return [b for b in found if b is not None and b.overlaps(lo_ms, hi_ms)]


class SiteOpening:
    """Each room's opening windows on a day, from the registry (as the detector plans it)."""

    def __init__(self, site: Site, settings: DetectorSettings) -> None:
        self.site = site
        self.settings = settings
        self.calendars = {p.room.id: RoomCalendar(site.tz, p.opening_hours, tuple(settings.bands))
                          for p in site.placed_rooms()}

    def __contains__(self, room: object) -> bool:
        return room in self.calendars

    def of(self, breach: Breach) -> Sequence[Span]:
        return self.calendars[breach.room.room].plan(breach.date).opening

    def rederive(self, store: Store, room: str, day: dt.date,
                 booked: Sequence[BookedSpan]) -> list[Breach]:
        """The room-day's breaches under the rule, from its stored ``room_interval`` points
        (the follow loop's own conclusions; no raw counts needed)."""
        ref = RoomRef.of(self.site.room(room), self.settings.include_housing)
        if not ref.rules:  # the detector tracks no breach there
            return []
        plan = self.calendars[room].plan(day)
        lo, hi = day_bounds_ms(day, self.site.timezone)
        intervals = [interval_from_sample(s) for s in store.query(
            SeriesName.ROOM_INTERVAL, lo, hi, {"site": self.site.id, "room": room})]
        raw = breaches_from_intervals(ref, plan, limit_ms_for(plan, self.settings.breach_limit_h),
                                      intervals)
        return apply_to_breaches(raw, self.of, booked)


def day_span(breaches: Iterable[Breach], tz_name: str) -> tuple[int, int] | None:
    """UTC ms from the first local midnight of the breaches' days to the one after the last."""
    days = {b.date for b in breaches}
    if not days:
        return None
    return day_bounds_ms(min(days), tz_name)[0], day_bounds_ms(max(days), tz_name)[1]


def booked_breaches(store: Store, opening: SiteOpening, breaches: Sequence[Breach]) -> (
    tuple[list[Breach], list[BookedSpan]]
):
    """The breaches under the booked-time rule, and the bookings stored for their days
    that it applied."""
    span = day_span(breaches, opening.site.timezone)
    if span is None:
        return [], []
    booked = stored_booked(store, opening.site, *span)
    return apply_to_breaches(breaches, opening.of, booked), booked


class RoomDaySignatures:
    """``booked_signature`` of each room-day's bookings (those overlapping the local day)."""

    def __init__(self, booked: Iterable[BookedSpan], tz_name: str) -> None:
        self.tz_name = tz_name
        self.by_room: dict[str, list[BookedSpan]] = {}
        for b in booked:
            self.by_room.setdefault(b.room, []).append(b)
        self._bounds: dict[dt.date, tuple[int, int]] = {}

    def of(self, room: str, day: dt.date) -> str:
        bounds = self._bounds.get(day)
        if bounds is None:
            bounds = self._bounds[day] = day_bounds_ms(day, self.tz_name)
        lo, hi = bounds
        return booked_signature(b for b in self.by_room.get(room, ()) if b.overlaps(lo, hi))


def replace_room_day(store: Store, site: Site, room: str, day: dt.date,
                     breaches: Sequence[Breach]) -> None:
    """Make ``breaches`` the room-day's only stored breaches (one atomic replace)."""
    lo, hi = day_bounds_ms(day, site.timezone)
    store.replace_range((SeriesName.BREACH,), lo, hi, {"site": site.id, "room": room},
                        [breach_sample(b) for b in breaches])

