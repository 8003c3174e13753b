"""The marketplace's rules on plain values: offered windows, booking validation, the coarse
"free now" state and the ghost-booking test. No I/O: the store and the web app call these."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

MS_PER_MIN = 60_000
WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Status(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"


class BookingRefusedError(ValueError):
    """A request the rules refuse; the message is shown to the requester."""


@dataclass(frozen=True, slots=True, order=True)
class Window:
    start_ms: int
    end_ms: int  # exclusive

    def overlaps(self, other: Window) -> bool:
        return self.start_ms < other.end_ms and other.start_ms < self.end_ms

    def contains(self, other: Window) -> bool:
        return self.start_ms <= other.start_ms and other.end_ms <= self.end_ms

    @property
    def minutes(self) -> float:
        return (self.end_ms - self.start_ms) / MS_PER_MIN


@dataclass(frozen=True, slots=True)
class WeeklySlot:
    """A recurring idle slot as the detector reports it: weekday name, local HH:MM range."""

    weekday: str
    start: str
    end: str


class Requester(BaseModel):
    """Who asks, as typed in the form: personal data, kept only as long as the settings say."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=120)
    organisation: str = Field(default="", max_length=200)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)
    purpose: str = Field(min_length=1, max_length=1000)


class BookingRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    site: str = Field(max_length=64)
    room: str = Field(max_length=64)
    start: dt.datetime
    end: dt.datetime
    attendance: int = Field(ge=1, le=10_000)
    requester: Requester

    @model_validator(mode="after")
    def _ordered(self) -> BookingRequest:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a time zone")
        if self.end <= self.start:
            raise ValueError("a booking ends after it starts")
        return self

    @property
    def window(self) -> Window:
        return Window(round(self.start.timestamp() * 1000), round(self.end.timestamp() * 1000))


def _at(day: dt.date, hhmm: str, tz: ZoneInfo, *, end: bool = False) -> dt.datetime:
    if end and hhmm in ("24:00", "00:00"):  # an end at midnight is the next day's
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tz)
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm), tz)


def concrete_windows(
    slots: Iterable[WeeklySlot], tz: ZoneInfo, now_ms: int, days: int
) -> list[Window]:
    """The recurring slots laid on the next ``days`` local days, from now on (a slot under
    way is cut at now), sorted and merged where they touch."""
    today = dt.datetime.fromtimestamp(now_ms / 1000, tz).date()
    found: list[Window] = []
    for offset in range(days + 1):
        day = today + dt.timedelta(days=offset)
        for slot in slots:
            if WEEKDAY_NAMES[day.weekday()] != slot.weekday:
                continue
            start = round(_at(day, slot.start, tz).timestamp() * 1000)
            end = round(_at(day, slot.end, tz, end=True).timestamp() * 1000)
            if end > now_ms:
                found.append(Window(max(start, now_ms), end))
    return merge(found)


def merge(windows: Iterable[Window]) -> list[Window]:
    merged: list[Window] = []
    for w in sorted(windows):
        if merged and w.start_ms <= merged[-1].end_ms:
            last = merged.pop()
            merged.append(Window(last.start_ms, max(last.end_ms, w.end_ms)))
        else:
            merged.append(w)
    return merged


def subtract(windows: Iterable[Window], busy: Iterable[Window]) -> list[Window]:
    """The windows with the busy periods cut out."""
    free = list(windows)
    for b in sorted(busy):
        out: list[Window] = []
        for w in free:
            if not w.overlaps(b):
                out.append(w)
                continue
            if w.start_ms < b.start_ms:
                out.append(Window(w.start_ms, b.start_ms))
            if b.end_ms < w.end_ms:
                out.append(Window(b.end_ms, w.end_ms))
        free = out
    return free


def check_request(
    window: Window, attendance: int, *, limit: int, offered: Sequence[Window],
    accepted: Iterable[Window], now_ms: int, min_minutes: int, max_minutes: int,
) -> None:
    """Raise BookingRefusedError unless the request fits: in the future, inside one offered
    window, clear of every accepted booking, within the room's attendance limit."""
    if window.start_ms < now_ms:
        raise BookingRefusedError("the slot has already started")
    if not min_minutes <= window.minutes <= max_minutes:
        raise BookingRefusedError(f"a booking lasts {min_minutes} to {max_minutes} minutes")
    if attendance > limit:
        raise BookingRefusedError(f"the room takes at most {limit} people")
    if not any(w.contains(window) for w in offered):
        raise BookingRefusedError("the slot is not inside a window the room is offered in")
    if any(window.overlaps(b) for b in accepted):
        raise BookingRefusedError("the slot overlaps an accepted booking")


@dataclass(frozen=True, slots=True)
class Reading:
    time_ms: int
    count: float


def _occupied_ms(readings: Sequence[Reading], lo: int, hi: int, hold_ms: int) -> int | None:
    """Milliseconds of [lo, hi) with someone present, each reading holding until the next
    (at most ``hold_ms``); None when no reading covers any of it."""
    covered = 0
    busy = 0
    for i, r in enumerate(readings):
        nxt = readings[i + 1].time_ms if i + 1 < len(readings) else r.time_ms + hold_ms
        a, b = max(lo, r.time_ms), min(hi, nxt, r.time_ms + hold_ms)
        if b <= a:
            continue
        covered += b - a
        if r.count > 0:
            busy += b - a
    return busy if covered else None


@dataclass(frozen=True, slots=True)
class Use:
    """What the sensors saw during a booking; ``ghost`` None: no reading covered it."""

    used_share: float | None
    ghost: bool | None


def booking_use(
    window: Window, readings: Sequence[Reading], *, hold_ms: int, first_minutes: int,
    min_share: float,
) -> Use:
    """A ghost booking: nobody in the first ``first_minutes`` and present under
    ``min_share`` of the slot."""
    ordered = sorted(readings, key=lambda r: r.time_ms)
    total = _occupied_ms(ordered, window.start_ms, window.end_ms, hold_ms)
    if total is None:
        return Use(None, None)
    share = total / (window.end_ms - window.start_ms)
    first_end = min(window.end_ms, window.start_ms + first_minutes * MS_PER_MIN)
    early = _occupied_ms(ordered, window.start_ms, first_end, hold_ms) or 0
    return Use(share, early == 0 and share < min_share)


class FreeNow(StrEnum):
    FREE = "free"
    NOT_REPORTED = "not reported"  # occupied, unknown or too recent to say: never told apart


@dataclass(frozen=True, slots=True)
class FreeNowState:
    state: FreeNow
    as_of_ms: int  # the step the state refers to, never the present moment


def free_now(
    readings: Sequence[Reading], now_ms: int, *, quiet_minutes: int, step_minutes: int,
    hold_ms: int,
) -> FreeNowState:
    """Free only if every reading of the ``quiet_minutes`` before the last whole
    ``step_minutes`` step was zero and they cover all of it; otherwise "not reported".

    The state changes at most once per step, refers to a moment up to a step old and is
    a yes-or-unsaid: a visitor learns neither a count nor the minute someone arrived.
    """
    step = step_minutes * MS_PER_MIN
    as_of = now_ms - now_ms % step
    lo = as_of - quiet_minutes * MS_PER_MIN
    ordered = sorted(readings, key=lambda r: r.time_ms)
    before = [r for r in ordered if r.time_ms < lo]
    inside = [r for r in ordered if lo <= r.time_ms < as_of]
    relevant = ([before[-1]] if before else []) + inside
    busy = _occupied_ms(relevant, lo, as_of, hold_ms)
    covered = _covered_ms(relevant, lo, as_of, hold_ms)
    free = busy == 0 and covered == as_of - lo
    return FreeNowState(FreeNow.FREE if free else FreeNow.NOT_REPORTED, as_of)


def _covered_ms(readings: Sequence[Reading], lo: int, hi: int, hold_ms: int) -> int:
    covered = 0
    for i, r in enumerate(readings):
        nxt = readings[i + 1].time_ms if i + 1 < len(readings) else r.time_ms + hold_ms
        a, b = max(lo, r.time_ms), min(hi, nxt, r.time_ms + hold_ms)
        covered += max(0, b - a)
    return covered
