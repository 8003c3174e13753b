"""The site registry: sites, buildings, floors, rooms and the devices that watch them.

Loaded from YAML (see ``softplace/samples/registry.yaml``); errors name file, line and
field. Names follow Brick Schema / RealEstateCore where they have one (Site, Building,
Floor, Room, area, capacity); a room's public space sheet (``offer:``) borrows schema.org
``Place`` names (amenityFeature, maximumAttendeeCapacity, telephone, email).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from softplace.errors import UnknownNameError
from softplace.messages import DeviceId, Identifier
from softplace.yamlconfig import Loc, LocatedValueError, load_model, parse_model

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class RoomKind(StrEnum):
    OFFICE = "office"
    MEETING = "meeting"
    HALL = "hall"
    COUNTER = "counter"
    COWORKING = "coworking"
    CLASSROOM = "classroom"
    STORAGE = "storage"
    HOUSING = "housing"
    OTHER = "other"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


@dataclass(frozen=True, slots=True)
class TimeRange:
    start: dt.time
    end: dt.time  # exclusive; 00:00 as an end means midnight at the end of the day

    @property
    def start_minute(self) -> int:
        return self.start.hour * 60 + self.start.minute

    @property
    def end_minute(self) -> int:
        minute = self.end.hour * 60 + self.end.minute
        return 24 * 60 if minute == 0 else minute


def parse_time_range(text: str) -> TimeRange:
    """``"08:30-12:00"`` -> TimeRange; ``"00:00-24:00"`` covers the whole day."""
    try:
        start_text, end_text = (part.strip() for part in text.split("-"))
        start = dt.time.fromisoformat(start_text)
        end = dt.time(0, 0) if end_text == "24:00" else dt.time.fromisoformat(end_text)
    except ValueError as err:
        raise ValueError(f"time range {text!r} must look like '08:30-17:00'") from err
    time_range = TimeRange(start, end)
    if time_range.end_minute <= time_range.start_minute:
        raise ValueError(f"time range {text!r} ends before it starts")
    return time_range


class OpeningHours(_Frozen):
    """Open periods per weekday; a weekday left out is closed all day."""

    mon: list[str] = Field(default_factory=list)
    tue: list[str] = Field(default_factory=list)
    wed: list[str] = Field(default_factory=list)
    thu: list[str] = Field(default_factory=list)
    fri: list[str] = Field(default_factory=list)
    sat: list[str] = Field(default_factory=list)
    sun: list[str] = Field(default_factory=list)

    @field_validator("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    @classmethod
    def _check_ranges(cls, value: list[str]) -> list[str]:
        ranges = sorted((parse_time_range(v) for v in value), key=lambda r: r.start_minute)
        for before, after in itertools.pairwise(ranges):
            if after.start_minute < before.end_minute:
                raise ValueError(f"opening periods overlap: {value}")
        return value

    def ranges(self, weekday: int) -> list[TimeRange]:
        """Open periods of a weekday (0 = Monday), sorted."""
        texts: list[str] = getattr(self, WEEKDAYS[weekday])
        return sorted((parse_time_range(t) for t in texts), key=lambda r: r.start_minute)

    @classmethod
    def always(cls) -> OpeningHours:
        day = ["00:00-24:00"]
        return cls(mon=day, tue=day, wed=day, thu=day, fri=day, sat=day, sun=day)


MAX_HEARTBEAT_S = 7 * 24 * 3600


class SensorKind(_Frozen):
    """A kind of sensor a site uses, with how long one of its readings stays valid."""

    heartbeat_s: float = Field(
        gt=0, le=MAX_HEARTBEAT_S,
        description="a reading holds this long; silence past it is 'unknown' (a 30-s radar"
        " and an hourly-scraped source cannot share one)",
    )
    description: str = ""


class Amenity(StrEnum):
    """schema.org ``amenityFeature`` values (LocationFeatureSpecification names)."""

    STEP_FREE_ACCESS = "step_free_access"  # wheelchair: no step on the way in
    ACCESSIBLE_TOILET = "accessible_toilet"
    TABLES = "tables"
    SCREEN = "screen"
    PROJECTOR = "projector"
    WIFI = "wifi"
    KITCHEN = "kitchen"
    WHITEBOARD = "whiteboard"
    SOUND_SYSTEM = "sound_system"
    DAYLIGHT = "daylight"


class PublicCategory(_Frozen):
    """The public-establishment class where the law sets one (France: ERP type and category)."""

    scheme: Literal["fr-erp"] = "fr-erp"
    type: str = Field(pattern=r"^[A-Z]{1,2}$", description="ERP type letter, e.g. W (offices)")
    category: int = Field(ge=1, le=5, description="ERP category 1 (largest) to 5")


class Offer(_Frozen):
    """A room's public space sheet: present only when the room is offered (opt-in).

    Names: ``name``, ``description``, ``amenity_feature`` (``amenityFeature``),
    ``maximum_attendee_capacity`` (``maximumAttendeeCapacity``) and ``telephone``/``email``
    from schema.org ``Place``; ``capacity`` and ``area_m2`` stay the Brick/RealEstateCore
    ones of the room.
    """

    name: str = Field(min_length=1, max_length=120, description="public name")
    description: str = Field(default="", max_length=2000)
    amenity_feature: list[Amenity] = Field(default_factory=list)
    seats: int | None = Field(default=None, ge=0, le=10_000)
    maximum_attendee_capacity: int | None = Field(
        default=None, ge=1, le=10_000, description="at most the room's capacity"
    )
    public_category: PublicCategory | None = None
    house_rules: str = Field(default="", max_length=2000)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", description="the operator's contact")
    telephone: str = Field(default="", max_length=40)


class Room(_Frozen):
    id: Identifier
    name: str = ""
    kind: RoomKind
    area_m2: float = Field(gt=0, le=100_000)
    capacity: int = Field(ge=1, le=10_000, description="seating capacity")
    opening_hours: OpeningHours | None = Field(
        default=None, description="overrides the site's opening hours"
    )
    devices: list[DeviceId] = Field(default_factory=list)
    combine: Literal["max", "sum"] = Field(
        default="max",
        description="max: sensors watch the same space; sum: sensors watch disjoint zones",
    )
    vacancy_rules: bool | None = Field(
        default=None, description="subject to vacancy rules; housing defaults to false"
    )
    sensor_kind: Identifier | None = Field(
        default=None, description="one of the site's sensor_kinds: its heartbeat applies"
    )
    heartbeat_s: float | None = Field(
        default=None, gt=0, le=MAX_HEARTBEAT_S,
        description="this room's heartbeat; overrides its sensor kind's and the detector's",
    )
    offer: Offer | None = Field(
        default=None, description="the public space sheet; absent = not offered"
    )

    @model_validator(mode="after")
    def _offer_fits(self) -> Room:
        if self.offer is not None and (self.offer.maximum_attendee_capacity or 0) > self.capacity:
            raise LocatedValueError(
                f"offer capacity {self.offer.maximum_attendee_capacity} exceeds the room's"
                f" capacity {self.capacity}", ("offer", "maximum_attendee_capacity"),
            )
        return self

    @property
    def attendance_limit(self) -> int:
        if self.offer is not None and self.offer.maximum_attendee_capacity is not None:
            return self.offer.maximum_attendee_capacity
        return self.capacity

    @property
    def subject_to_vacancy_rules(self) -> bool:
        if self.vacancy_rules is not None:
            return self.vacancy_rules
        return self.kind is not RoomKind.HOUSING


class Floor(_Frozen):
    id: Identifier
    name: str = ""
    level: int = 0
    rooms: list[Room] = Field(default_factory=list)


class Building(_Frozen):
    id: Identifier
    name: str = ""
    floors: list[Floor] = Field(default_factory=list)


class Site(_Frozen):
    id: Identifier
    name: str = ""
    district: Identifier = Field(description="the regulator's district this site reports to")
    timezone: str = "UTC"
    opening_hours: OpeningHours = Field(default_factory=OpeningHours)
    sensor_kinds: dict[Identifier, SensorKind] = Field(
        default_factory=dict, description="sensor kinds, each with its default heartbeat"
    )
    buildings: list[Building] = Field(default_factory=list)
    home_assistant: bool = Field(
        default=False,
        description="publish Home Assistant MQTT discovery configs for this site's rooms"
        " (room level only: docs/privacy.md)",
    )

    @model_validator(mode="after")
    def _known_sensor_kinds(self) -> Site:
        for b, building in enumerate(self.buildings):
            for f, floor in enumerate(building.floors):
                for r, room in enumerate(floor.rooms):
                    if room.sensor_kind is not None and room.sensor_kind not in self.sensor_kinds:
                        known = ", ".join(sorted(self.sensor_kinds)) or "none declared"
                        raise LocatedValueError(
                            f"sensor kind {room.sensor_kind!r} is not in the site's "
                            f"sensor_kinds ({known})",
                            ("buildings", b, "floors", f, "rooms", r, "sensor_kind"),
                        )
        return self

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {value!r}") from err
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def placed_rooms(self) -> Iterator[PlacedRoom]:
        for building in self.buildings:
            for floor in building.floors:
                for room in floor.rooms:
                    yield PlacedRoom(self, building, floor, room)

    def room(self, room_id: str) -> PlacedRoom:
        for placed in self.placed_rooms():
            if placed.room.id == room_id:
                return placed
        raise UnknownNameError(f"site {self.id!r} has no room {room_id!r}")

    def device_rooms(self) -> dict[str, PlacedRoom]:
        return {device: placed for placed in self.placed_rooms() for device in placed.room.devices}


@dataclass(frozen=True, slots=True)
class PlacedRoom:
    """A room with where it is: what the detector and the tags in storage need."""

    site: Site
    building: Building
    floor: Floor
    room: Room

    @property
    def opening_hours(self) -> OpeningHours:
        return self.room.opening_hours if self.room.opening_hours is not None else (
            self.site.opening_hours
        )

    @property
    def heartbeat_s(self) -> float | None:
        """The room's own heartbeat, else its sensor kind's; None: the detector's default."""
        if self.room.heartbeat_s is not None:
            return self.room.heartbeat_s
        if self.room.sensor_kind is not None:
            return self.site.sensor_kinds[self.room.sensor_kind].heartbeat_s
        return None

    @property
    def tags(self) -> dict[str, str]:
        return {
            "site": self.site.id,
            "building": self.building.id,
            "floor": self.floor.id,
            "room": self.room.id,
            "kind": self.room.kind.value,
        }


class Registry(_Frozen):
    version: Annotated[int, Field(ge=1, le=1)] = 1
    sites: list[Site] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Registry:
        """Ids unique where they must be; the error points at the second occurrence."""
        _no_repeats([(s.id, ("sites", i, "id")) for i, s in enumerate(self.sites)], "site id")
        devices: list[tuple[str, Loc]] = []
        for i, site in enumerate(self.sites):
            rooms: list[tuple[str, Loc]] = []
            buildings: list[tuple[str, Loc]] = []
            for b, building in enumerate(site.buildings):
                buildings.append((building.id, ("sites", i, "buildings", b, "id")))
                for f, floor in enumerate(building.floors):
                    for r, room in enumerate(floor.rooms):
                        at: Loc = ("sites", i, "buildings", b, "floors", f, "rooms", r)
                        rooms.append((room.id, (*at, "id")))
                        devices.extend((d, (*at, "devices", n))
                                       for n, d in enumerate(room.devices))
            _no_repeats(rooms, f"room id in site {site.id!r}")
            _no_repeats(buildings, f"building id in site {site.id!r}")
        _no_repeats(devices, "device id (a device watches one room)")
        return self

    def site(self, site_id: str) -> Site:
        for site in self.sites:
            if site.id == site_id:
                return site
        known = ", ".join(s.id for s in self.sites)
        raise UnknownNameError(f"no site {site_id!r} in the registry (known: {known})")

    def placed_rooms(self) -> Iterator[PlacedRoom]:
        for site in self.sites:
            yield from site.placed_rooms()


def _no_repeats(values: list[tuple[str, Loc]], what: str) -> None:
    seen: set[str] = set()
    for value, loc in values:
        if value in seen:
            raise LocatedValueError(f"{what} {value!r} appears twice", loc)
        seen.add(value)


SAMPLE_REGISTRY = Path(__file__).with_name("samples") / "registry.yaml"


def load_registry(path: Path | None = None) -> Registry:
    """Load and validate a registry file (the bundled sample when ``path`` is None)."""
    return load_model(Registry, path or SAMPLE_REGISTRY)


def parse_registry(text: str, source: str = "<registry>") -> Registry:
    return parse_model(Registry, text, source)
