"""Regulator export: the release as CSV plus a Frictionless Data Package descriptor.

The descriptor (``datapackage.json``, Data Package v1 with a Tabular Data Resource and a
Table Schema) is a pydantic model written here, so it needs no extra dependency; the
release's guarantees (epsilon, k, mechanism, expected error) travel in it under
``softplace:privacy``, which Frictionless allows as a custom property.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from privacy.release import Cell, Release
from softplace.schema import AggregateField, SeriesName
from softplace.timeutil import ms_to_datetime

CSV_NAME = f"{SeriesName.REGULATOR_AGGREGATE}.csv"
FieldKind = Literal["string", "number", "integer", "date"]

# column -> (Table Schema type, description): the CSV and its schema come from this table.
COLUMNS: dict[str, tuple[FieldKind, str]] = {
    "level": ("string", "building or district"),
    "area": ("string", "site/building id, or district id, from the registry"),
    "period": ("string", "YYYY-MM-DD/am|pm, YYYY-MM-DD, YYYY-Www or YYYY-MM (site local time)"),
    "status": ("string", "released, primary (fewer than k rooms) or secondary suppression"),
    AggregateField.ROOMS: ("integer", "rooms covered (registry); empty when suppressed"),
    AggregateField.AVAILABLE_M2H: ("number", "open square-metre-hours, with discrete Laplace"
                                             " noise"),
    AggregateField.IDLE_M2H: ("number", "open but vacant square-metre-hours, with noise"),
    AggregateField.UTILISATION_RATE: ("number", "utilised / available m²·h, from the noisy"
                                                " figures"),
    AggregateField.BREACHES: ("number", "vacancies longer than the rule's limit, with noise"),
}


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class TableField(_Model):
    name: str
    type: FieldKind
    description: str
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
    title: str
    description: str
    created: str
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
        AggregateField.UTILISATION_RATE: {"minimum": 0, "maximum": 1},
    }
    return TableSchema(
        fields=[
            TableField(name=n, type=t, description=d, constraints=constraints.get(n, {}))
            for n, (t, d) in COLUMNS.items()
        ],
        primaryKey=["level", "area", "period"],
    )


def export_release(release: Release, out_dir: Path) -> tuple[Path, Path]:
    """Write ``regulator_aggregate.csv`` and ``datapackage.json`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / CSV_NAME
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(_row(c) for c in release.cells)
    data = csv_path.read_bytes()
    package = DataPackage(
        name=f"softplace-{release.recipient}-{release.start}-{release.end}".lower(),
        title=f"SoftPlace anonymised space use, {release.start} to {release.end}",
        description=(
            "Available and idle square-metre-hours, utilisation and vacancy-rule breaches per"
            f" building and district and {release.period.replace('_', '-')}. Cells covering"
            f" fewer than {release.k} rooms are suppressed (with secondary suppression);"
            f" figures carry discrete Laplace noise at epsilon {release.epsilon:g}."
        ),
        created=ms_to_datetime(release.created_ms, dt.UTC).isoformat(),
        resources=[Resource(
            name=SeriesName.REGULATOR_AGGREGATE, path=CSV_NAME,
            hash=f"sha256:{hashlib.sha256(data).hexdigest()}", bytes=len(data),
            schema_=table_schema(),
        )],
        privacy=release.model_dump(mode="json", exclude={"cells"}),
    )
    package_path = out_dir / "datapackage.json"
    package_path.write_text(
        package.model_dump_json(by_alias=True, indent=2) + "\n", encoding="utf-8"
    )
    return csv_path, package_path
