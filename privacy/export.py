"""Regulator export: the release as CSV plus a Frictionless Data Package descriptor.

The descriptor (``datapackage.json``, Data Package v1 with a Tabular Data Resource and a
Table Schema) is a pydantic model written here, so it needs no extra dependency; the
release's guarantees (epsilon, budget, k, mechanism, expected error, clipping) travel in it
under ``softplace:privacy``, and each field's unit as ``unit``, which Frictionless allows
as custom properties. Files are staged and fsynced before the charge and moved into place
after it (``stage_release``, ``publish_staged``).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from privacy.release import HIGH, LOW, Cell, Release
from softplace.schema import AggregateField, SeriesName
from softplace.timeutil import ms_to_datetime

CSV_NAME = f"{SeriesName.REGULATOR_AGGREGATE}.csv"
PACKAGE_NAME = "datapackage.json"
PARTIAL_PREFIX = ".partial-"
FieldKind = Literal["string", "number", "integer", "date"]
LICENCE = {"name": "CC-BY-4.0", "title": "Creative Commons Attribution 4.0",
           "path": "https://creativecommons.org/licenses/by/4.0/"}
SOURCES = [
    {"title": "SoftPlace occupancy sensors (people counts per room, no images, no"
              " identifiers), through the detector's daily room measures and breaches"},
    {"title": "The operator's site registry (areas, rooms, opening hours)"},
    {"title": "Accepted bookings of offered rooms (room and times only, never who booked),"
              " compared with the sensors"},
]
_INTERVAL = "bound of the 95 % interval (1 - alpha), from the unclipped noisy value"

# column -> (Table Schema type, unit, description): the CSV and its schema come from this.
COLUMNS: dict[str, tuple[FieldKind, str, str]] = {
    "level": ("string", "", "building or district"),
    "area": ("string", "", "site/building id, or district id, from the registry"),
    "period": ("string", "", "YYYY-MM-DD/am|pm, YYYY-MM-DD, YYYY-Www or YYYY-MM (site local"
                             " time)"),
    "status": ("string", "", "released, primary (fewer than k rooms) or secondary suppression"),
    AggregateField.ROOMS: ("integer", "rooms", "rooms covered (registry); empty when"
                                               " suppressed"),
}
for _name, _unit, _what in (
    (AggregateField.AVAILABLE_M2H, "m2.h", "open square-metre-hours, with discrete Laplace"
                                           " noise, clipped at 0"),
    (AggregateField.IDLE_M2H, "m2.h", "open but vacant square-metre-hours, with noise"),
    (AggregateField.UTILISATION_RATE, "1", "utilised / available m²·h, from the noisy figures"),
    (AggregateField.BREACHES, "breaches", "vacancies longer than the rule's limit, with noise"),
    ("observed_h", "h", "coverage: room-hours the sensors observed, with noise"),
    (AggregateField.GHOST_BOOKINGS, "bookings", "accepted bookings the sensors saw unused"
                                                " (ghost bookings), with noise"),
    (AggregateField.BOOKED_USED_H, "h", "hours of accepted bookings the sensors saw used,"
                                        " with noise"),
):
    COLUMNS[_name] = ("number", _unit, _what)
    COLUMNS[_name + LOW] = ("number", _unit, f"lower {_INTERVAL}")
    COLUMNS[_name + HIGH] = ("number", _unit, f"upper {_INTERVAL}")


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class TableField(_Model):
    name: str
    type: FieldKind
    description: str
    unit: str | None = None  # a custom field property (Frictionless allows them)
    constraints: dict[str, Any] = Field(default_factory=dict)


class TableSchema(_Model):
    fields: list[TableField]
    primaryKey: list[str]  # noqa: N815 - Frictionless spelling
    missingValues: list[str] = Field(default_factory=lambda: [""])  # noqa: N815


class Resource(_Model):
    name: str
    path: str
    profile: Literal["tabular-data-resource"] = "tabular-data-resource"
    format: Literal["csv"] = "csv"
    mediatype: Literal["text/csv"] = "text/csv"
    encoding: Literal["utf-8"] = "utf-8"
    hash: str
    bytes: int
    schema_: TableSchema = Field(alias="schema")


class DataPackage(_Model):
    profile: Literal["tabular-data-package"] = "tabular-data-package"
    name: str = Field(pattern=r"^[a-z0-9._-]+$")
    id: str
    title: str
    description: str
    version: str
    created: str
    licenses: list[dict[str, str]]
    sources: list[dict[str, str]]
    resources: list[Resource]
    privacy: dict[str, Any] = Field(alias="softplace:privacy")


def _row(cell: Cell) -> list[str]:
    values = cell.model_dump()
    out = []
    for name in COLUMNS:
        value = values[name]
        out.append("" if value is None else str(getattr(value, "value", value)))
    return out


def table_schema() -> TableSchema:
    constraints: dict[str, dict[str, Any]] = {
        "level": {"required": True, "enum": ["building", "district"]},
        "status": {"required": True, "enum": ["released", "primary", "secondary"]},
        **{AggregateField.UTILISATION_RATE + suffix: {"minimum": 0, "maximum": 1}
           for suffix in ("", LOW, HIGH)},
    }
    return TableSchema(
        fields=[
            TableField(name=n, type=t, description=d, unit=u or None,
                       constraints=constraints.get(n, {}))
            for n, (t, u, d) in COLUMNS.items()
        ],
        primaryKey=["level", "area", "period"],
    )


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def release_files(release: Release) -> dict[str, bytes]:
    """The CSV and its descriptor, as bytes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(_row(c) for c in release.cells)
    data = buffer.getvalue().encode("utf-8")
    budget = release.budget
    package = DataPackage(
        name=f"softplace-{release.recipient}-{release.start}-{release.end}".lower(),
        id=release.id,
        title=f"SoftPlace anonymised space use, {release.start} to {budget.window_last_day}",
        description=(
            "Available and idle square-metre-hours, utilisation, vacancy-rule breaches,"
            " ghost bookings, booked-and-used hours and observed hours (coverage) per"
            " building and district and"
            f" {release.period.replace('_', '-')}, each with its 95 % interval. Cells covering"
            f" fewer than {release.k} rooms are suppressed (with secondary suppression, kept"
            f" across releases); figures carry discrete Laplace noise at epsilon"
            f" {release.epsilon:g} for this release; the recipient has spent"
            f" {budget.spent_in_window:g} of {budget.limit:g} on the worst day of"
            f" {release.start}..{budget.window_last_day}. {release.clipping}"
            f" Requested days: {release.widening}."
        ),
        version=f"{budget.releases_to_recipient}.0.0",
        created=ms_to_datetime(release.created_ms, dt.UTC).isoformat(),
        licenses=[LICENCE], sources=SOURCES,
        resources=[Resource(
            name=SeriesName.REGULATOR_AGGREGATE, path=CSV_NAME,
            hash=f"sha256:{hashlib.sha256(data).hexdigest()}", bytes=len(data),
            schema_=table_schema(),
        )],
        privacy=release.model_dump(mode="json", exclude={"cells"}),
    )
    text = package.model_dump_json(by_alias=True, indent=2, exclude_none=True) + "\n"
    return {CSV_NAME: data, PACKAGE_NAME: text.encode("utf-8")}


def stage_release(release: Release, out_dir: Path) -> Path:
    """Write the files, fsynced, into a hidden staging directory inside ``out_dir``; raises
    OSError (nothing charged yet) when that is impossible."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / f"{PARTIAL_PREFIX}{release.id}"
    staging.mkdir()
    for name, data in release_files(release).items():
        _write_synced(staging / name, data)
    _sync_dir(staging)
    _sync_dir(out_dir)
    return staging


def publish_staged(staging: Path) -> tuple[Path, Path]:
    """Move the staged files into place (atomic renames), once the charge is recorded; a
    crash in between leaves the complete release in the staging directory, named by its
    id in the ledger."""
    out_dir = staging.parent
    for name in (CSV_NAME, PACKAGE_NAME):
        (staging / name).replace(out_dir / name)
    staging.rmdir()
    _sync_dir(out_dir)
    return out_dir / CSV_NAME, out_dir / PACKAGE_NAME


def discard_staged(staging: Path) -> None:
    for child in staging.iterdir():
        child.unlink()
    staging.rmdir()


def export_release(release: Release, out_dir: Path) -> tuple[Path, Path]:
    """Write ``regulator_aggregate.csv`` and ``datapackage.json`` into ``out_dir``."""
    return publish_staged(stage_release(release, out_dir))
