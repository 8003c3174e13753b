"""The data inventory, generated from the code's own configuration: what is stored, where,
for how long and who receives it. Nothing here is written by hand: a new series in
``softplace.schema.SERIES`` or a changed retention setting shows up on the next run."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from privacy.settings import PrivacySettings
from softplace.schema import SERIES, Family
from softplace.settings import KernelSettings

FILE_KIND = "file"  # a stage's local file, next to the store's series


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InventoryRow(_Frozen):
    what: str
    kind: str  # "series" or "file"
    family: str
    description: str
    keys: list[str]  # tags (what a point is about)
    fields: list[str]  # fields with their types
    where: str
    retention: str
    recipients: list[str]
    leaves_operator: bool
    personal_data: str


class Inventory(_Frozen):
    backend: str
    rows: list[InventoryRow]
    k: int
    epsilon_per_release: float
    budgets: dict[str, float]


def retention_text(days: int) -> str:
    return "kept indefinitely" if days == 0 else f"{days} days"


def _leaves_operator(recipients: Sequence[str]) -> bool:
    return any(not r.startswith("operator") for r in recipients)


def build_inventory(settings: KernelSettings) -> Inventory:
    days = {p.family: p.days for p in settings.retention.policies()}
    backend = settings.storage.backend

    def where(family: Family) -> str:
        if backend == "influxdb":
            return f"InfluxDB database {settings.influxdb.database}, retention policy {family}"
        return f"SQLite {settings.storage.sqlite_path} (deleted past the {family} policy)"

    rows = [
        InventoryRow(
            what=s.name, kind="series", family=str(s.family), description=s.description,
            keys=list(s.tags), fields=[f"{k}: {t}" for k, t in s.fields.items()],
            where=where(s.family), retention=retention_text(days[s.family]),
            recipients=list(s.recipients), leaves_operator=_leaves_operator(s.recipients),
            personal_data=s.personal_data,
        )
        for s in SERIES.values()
    ]
    rows.extend(
        InventoryRow(
            **holding.model_dump(), kind=FILE_KIND, family="-",
            leaves_operator=_leaves_operator(holding.recipients),
        )
        for section in settings.stage_sections()
        for holding in section.local_holdings()
    )
    privacy = settings.section(PrivacySettings)
    return Inventory(
        backend=backend, rows=rows, k=privacy.k,
        epsilon_per_release=privacy.epsilon_per_release, budgets=dict(privacy.budgets),
    )


def inventory_markdown(inventory: Inventory) -> str:
    lines = [
        "| what | stored where | kept | receives | leaves the operator | personal data? |",
        "|---|---|---|---|---|---|",
    ]
    for row in inventory.rows:
        lines.append(
            f"| `{row.what}` ({', '.join(row.fields)}) | {row.where} | {row.retention} |"
            f" {', '.join(row.recipients)} | {'yes' if row.leaves_operator else 'no'} |"
            f" {row.personal_data} |"
        )
    return "\n".join(lines)
