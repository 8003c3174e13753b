"""The ``bookings:`` section of the settings file (pydantic only, import-light)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import Field

from softplace.settings import LocalHolding, StageSection, beside_config
from softplace.timeutil import MS_PER_DAY, ms_to_datetime

BOOKINGS_FILE = "bookings.sqlite"
HOLDING = "booking requesters"
AUDIT_GRACE_DAYS = 1  # `softplace bookings purge` runs daily


class BookingsSettings(StageSection):
    path: Path | None = Field(
        default=None,
        description="SQLite file of booking requests; None = bookings.sqlite next to the"
        " settings file (or in .softplace/ without one)",
    )
    personal_data_days: int = Field(
        default=30, ge=1, le=3650,
        description="requesters' names, contacts and purposes are deleted this many days"
        " after the booking ends",
    )
    horizon_days: int = Field(
        default=14, ge=1, le=90, description="how far ahead concrete free windows are offered"
    )
    min_minutes: int = Field(default=30, ge=5, le=1440, description="shortest booking")
    max_minutes: int = Field(default=480, ge=5, le=1440, description="longest booking")
    requests_per_window: int = Field(
        default=5, ge=1, le=10_000,
        description="booking requests allowed per client address in request_window_s",
    )
    request_window_s: float = Field(
        default=3600, gt=0, le=86_400, description="the booking requests' rate-limit window"
    )
    free_quiet_minutes: int = Field(
        default=30, ge=15, le=240,
        description="'free now' only after this long without anyone",
    )
    free_step_minutes: int = Field(
        default=15, ge=5, le=60, description="'free now' refers to the last whole step"
    )
    ghost_first_minutes: int = Field(
        default=15, ge=1, le=120,
        description="a ghost booking has nobody in its first minutes...",
    )
    ghost_max_share: float = Field(
        default=0.2, ge=0, le=1, description="...and presence under this share of the slot"
    )

    def file(self, config: Path | None) -> Path:
        return beside_config(self.path, config, BOOKINGS_FILE)

    def holding_findings(self, now_ms: int, config: Path | None) -> list[tuple[str, str]]:
        from bookings.store import BookingStore

        path = self.file(config)
        if not path.exists():
            return []
        with BookingStore(path) as store:
            oldest = store.oldest_personal_end_ms()
        limit = now_ms - (self.personal_data_days + AUDIT_GRACE_DAYS) * MS_PER_DAY
        if oldest is None or oldest >= limit:
            return []
        over = (now_ms - self.personal_data_days * MS_PER_DAY - oldest) / MS_PER_DAY
        return [(HOLDING, f"a requester is kept {over:.1f} days past the"
                          f" {self.personal_data_days}-day limit (run `softplace bookings purge`)")]

    def holding_deletions(self, config: Path | None) -> list[tuple[str, int, str]]:
        from bookings.store import BookingStore

        path = self.file(config)
        if not path.exists():
            return []
        with BookingStore(path) as store:
            purges = store.purges()
        return [(HOLDING, p.purged_ms, f"{p.requesters} requester record(s) of bookings ended"
                 f" before {ms_to_datetime(p.ended_before_ms, dt.UTC):%Y-%m-%d %H:%M} UTC")
                for p in purges]

    def local_holdings(self) -> list[LocalHolding]:
        return [LocalHolding(
            what=HOLDING,
            description="Who asked for an offered room: name, organisation, e-mail and"
            " purpose, next to the booking (room, start, end, attendance, status).",
            keys=["booking"], fields=["name: str", "organisation: str", "email: str",
                                      "purpose: str"],
            where=f"SQLite {self.path or BOOKINGS_FILE + ' next to the settings file'}",
            retention=f"{self.personal_data_days} days after the booking ends; the booking"
            " itself (room, times, status, attendance) is kept without them",
            recipients=["operator: facilities"],
            personal_data="Requesters' identity and contact: personal data, never in"
            " releases (regulators get ghost and booked-hour counts only).",
        )]
