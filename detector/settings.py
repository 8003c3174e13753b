"""Detector settings: the ``detector:`` section of the SoftPlace settings file.

Import-light on purpose (pydantic only): the application assembles the settings model from
every stage's section.
Every option is documented here; ``detector/README.md`` shows the same table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from softplace.settings import StageSection


def _parse_clock_range(text: str) -> tuple[int, int]:
    """``"08:00-13:00"`` -> (480, 780) minutes; ``24:00`` is allowed as an end."""
    try:
        start_text, end_text = (part.strip() for part in text.split("-"))
        start_h, start_m = (int(p) for p in start_text.split(":"))
        end_h, end_m = (int(p) for p in end_text.split(":"))
    except ValueError as err:
        raise ValueError(f"band {text!r} must look like '08:00-13:00'") from err
    start, end = start_h * 60 + start_m, end_h * 60 + end_m
    if not (0 <= start < end <= 24 * 60) or not (0 <= start_m < 60 and 0 <= end_m < 60):
        raise ValueError(f"band {text!r} must lie within 00:00-24:00 and end after it starts")
    return start, end


class Band(BaseModel):
    """A time band of the day that measures are computed for (a row in ``bands``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")
    hours: str = Field(default="00:00-24:00", description="local clock range, e.g. 08:00-13:00")
    within_opening_hours: bool = Field(
        default=True, description="available hours = this band intersected with opening hours"
    )

    @field_validator("hours")
    @classmethod
    def _check_hours(cls, value: str) -> str:
        _parse_clock_range(value)
        return value

    @property
    def minutes(self) -> tuple[int, int]:
        return _parse_clock_range(self.hours)


DEFAULT_BANDS = (
    Band(name="opening", hours="00:00-24:00"),
    Band(name="morning", hours="00:00-13:00"),
    Band(name="afternoon", hours="13:00-24:00"),
)


class DetectorSettings(StageSection):
    """How room readings become intervals, measures, breaches and idle slots."""

    hold_s: float = Field(
        default=300, ge=0, le=6 * 3600,
        description="a zero count must last this long before an occupied room turns vacant"
        " (a person sitting still is not a vacancy)",
    )
    heartbeat_s: float = Field(
        default=900, gt=0, le=7 * 24 * 3600,
        description="a reading stays valid this long; silence past it is 'unknown'",
    )
    reorder_window_s: float = Field(
        default=120, ge=0, le=24 * 3600,
        description="late or out-of-order readings up to this old are folded in; older dropped",
    )
    bands: tuple[Band, ...] = Field(
        default=DEFAULT_BANDS, min_length=1, description="time bands measured per day"
    )
    breach_limit_h: Literal["half_day"] | float = Field(
        default="half_day",
        description="a vacancy inside opening hours longer than this is a breach: 'half_day'"
        " (half of the room's opening hours that day) or hours, e.g. 2",
    )
    under_use_threshold: float = Field(
        default=0.3, ge=0, le=1, description="utilisation under this over the period: under-used"
    )
    include_housing: bool = Field(
        default=False, description="apply vacancy rules (breaches, under-use, slots) to housing"
    )
    idle_slot_minutes: int = Field(default=30, ge=5, le=240, description="slot granularity")
    idle_slot_min_share: float = Field(
        default=0.9, gt=0, le=1,
        description="a slot is offered when vacant in at least this share of the weeks",
    )
    idle_slot_min_minutes: int = Field(
        default=60, ge=5, description="shortest window worth offering"
    )
    idle_slot_weeks: int = Field(default=8, ge=1, le=104, description="weeks looked back")
    poll_interval_s: float = Field(default=10, gt=0, le=3600, description="service store polling")
    batch_chunk_h: float = Field(
        default=6, gt=0, le=24 * 31, description="batch reads the store this many hours at a time"
    )
    checkpoint_path: Path = Field(
        default=Path(".softplace/detector/checkpoint.json"),
        description="service state, written atomically after each step",
    )
    start_lookback_h: float = Field(
        default=24, ge=0, description="a service with no checkpoint starts this far back"
    )

    @field_validator("breach_limit_h")
    @classmethod
    def _positive_limit(cls, value: str | float) -> str | float:
        if not isinstance(value, str) and value <= 0:
            raise ValueError("breach_limit_h must be 'half_day' or a positive number of hours")
        return value

    @model_validator(mode="after")
    def _unique_bands(self) -> DetectorSettings:
        names = [band.name for band in self.bands]
        if len(set(names)) != len(names):
            raise ValueError(f"bands: names must be unique, got {names}")
        if "opening" not in names:
            raise ValueError("bands: an 'opening' band is required (reports and rules use it)")
        return self
