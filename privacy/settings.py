"""The ``privacy:`` section of the settings file (see ``docs/privacy.md``).

Import-light on purpose (pydantic only): the application assembles the settings model from
every stage's section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from softplace.settings import LocalHolding, StageSection

PeriodKind = Literal["half_day", "day", "week", "month"]
PERIODS: tuple[PeriodKind, ...] = ("half_day", "day", "week", "month")


class PrivacySettings(StageSection):
    k: int = Field(default=5, ge=2, description="cells covering fewer rooms are suppressed")
    epsilon_per_release: float = Field(
        default=0.5, gt=0, le=10, description="differential-privacy epsilon spent by one release"
    )
    epsilon_bookings: float = Field(
        default=0.1, gt=0, le=10,
        description="epsilon spent by one release on ghost bookings and booked-and-used hours,"
        " on top of epsilon_per_release; only when a released area holds an offered room",
    )
    budgets: dict[str, float] = Field(
        default_factory=lambda: {"regulator": 1.0},
        description="epsilon each recipient may receive on any one room-day, over all releases"
        " (disjoint periods compose in parallel); a recipient not listed gets none",
    )
    ledger_path: Path = Field(
        default=Path(".softplace/privacy-ledger.sqlite"),
        description="SQLite ledger of epsilon spent per recipient, hash-chained; a relative"
        " path is resolved against the settings file's directory (keep it with backups)",
    )
    period: PeriodKind = Field(
        default="half_day", description="finest period released; coarsened by the error rule"
    )
    max_relative_error: float = Field(
        default=0.5, gt=0,
        description="coarsen the period until the 95 % error of idle m²·h is at most this share"
        " of the smallest released cell's opening capacity (registry figures only)",
    )
    half_day_bands: tuple[str, str] = Field(
        default=("morning", "afternoon"),
        description="the detector's room_measure bands read as morning and afternoon",
    )
    day_split_hour: int = Field(
        default=13, ge=1, le=23,
        description="a breach starting before this local hour is morning (the detector's "
        "morning band ends at 13:00)",
    )
    max_breaches_per_room_day: int = Field(
        default=2, ge=1, description="breaches counted per room and day (clamp; bounds sensitivity)"
    )
    max_breaches_per_room_cell: int = Field(
        default=2, ge=1,
        description="breaches counted per room and released cell (clamp; bounds what one"
        " person's month costs)",
    )
    max_bookings_per_room_day: int = Field(
        default=4, ge=1,
        description="bookings counted per room and day of their start (clamp; bounds the"
        " sensitivity of ghost bookings and booked-and-used hours)",
    )
    m2h_quantum: float = Field(
        default=1.0, gt=0, description="m²·h per integer unit before discrete noise"
    )
    alpha: float = Field(
        default=0.05, gt=0, lt=1, description="stated error bounds hold with probability 1-alpha"
    )
    retention_grace_hours: float | None = Field(
        default=None, ge=0,
        description="tolerance past a retention limit before the audit fails; None = InfluxDB's"
        " default shard-group duration for that policy plus one hour",
    )

    @model_validator(mode="after")
    def _check_budgets(self) -> PrivacySettings:
        for recipient, limit in self.budgets.items():
            if limit < 0:
                raise ValueError(f"budgets.{recipient}: must be >= 0, got {limit}")
        if self.half_day_bands[0] == self.half_day_bands[1]:
            raise ValueError("half_day_bands: morning and afternoon bands must differ")
        return self

    def ledger_file(self, config: Path | None) -> Path:
        """The ledger's location: relative paths hang off the settings file's directory,
        never the working directory (a second ledger would start a fresh budget). Without
        a settings file, the working directory is all there is; ``export`` then still
        refuses a ledger that knows less than the store recorded."""
        if self.ledger_path.is_absolute() or config is None:
            return self.ledger_path
        return config.parent / self.ledger_path

    def local_holdings(self) -> list[LocalHolding]:
        return [LocalHolding(
            what="privacy ledger",
            description="Epsilon charged per recipient, release and days; areas a release hid"
            " or published first; append-only, each entry hash-chained to the one before.",
            keys=["recipient", "release_id"],
            fields=["epsilon: float", "first_day: date", "end_day: date", "area: str",
                    "created_ms: int", "hash: str"],
            where=f"SQLite {self.ledger_path} (relative to the settings file)",
            retention="indefinitely (it is the proof)",
            recipients=["operator: privacy officer"],
            personal_data="Bookkeeping; no data about people.",
        )]
