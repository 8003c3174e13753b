from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from privacy.inventory import build_inventory
from softplace.registry import SAMPLE_REGISTRY, load_registry
from softplace.schema import SERIES
from softplace.storage.base import Sample
from softplace.storage.sqlite import SqliteStore
from softplace_cli import cli
from softplace_cli.settings import Settings, load_settings
from tests.privacy.helpers import measure

DAY_MS = 86_400_000


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "softplace.yaml"
    path.write_text(
        f"registry: {SAMPLE_REGISTRY}\n"
        f"storage: {{backend: sqlite, sqlite_path: {tmp_path / 'store.sqlite'}}}\n"
        "retention: {raw_days: 30, derived_days: 395, aggregates_days: 0}\n"
        f"privacy: {{ledger_path: {tmp_path / 'ledger.sqlite'},"
        " budgets: {regulator: 2.0}, epsilon_per_release: 1.0}\n",
        encoding="utf-8",
    )
    return path


def _store(config: Path) -> SqliteStore:
    return SqliteStore(load_settings(config, environ={}).storage.sqlite_path)


def _run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["-c", str(config), *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_inventory_covers_every_series_and_follows_settings() -> None:
    settings = Settings.model_validate({"retention": {"raw_days": 7}})
    rows = {r.what: r for r in build_inventory(settings).rows}
    assert set(SERIES) <= set(rows)
    assert rows["room_count"].retention == "7 days"
    assert rows["regulator_aggregate"].retention == "kept indefinitely"
    assert rows["regulator_aggregate"].leaves_operator
    assert not rows["room_measure"].leaves_operator


def test_commands_inventory_json(config: Path) -> None:
    code, output = _run(config, "privacy", "inventory", "--json")
    assert code == 0
    assert {r["what"] for r in json.loads(output)["rows"]} >= set(SERIES)


def test_commands_audit_exits_non_zero_on_breach(config: Path) -> None:
    store = _store(config)
    now = int(time.time() * 1000)
    store.write([Sample("room_count", {"site": "s", "room": "r"}, {"count": 1}, now)])
    store.close()
    assert _run(config, "privacy", "audit")[0] == 0
    store = _store(config)
    store.write([Sample("room_count", {"site": "s", "room": "r"}, {"count": 1}, now - 50 * DAY_MS)])
    store.close()
    code, output = _run(config, "privacy", "audit")
    assert code == 1 and "retention" in output
    store = _store(config)
    assert store.query("privacy_audit", now - DAY_MS, now + DAY_MS, {"check": "retention"})
    store.close()


@pytest.mark.slow  # four releases and a report through the CLI
def test_commands_export_then_report(config: Path, tmp_path: Path) -> None:
    registry = load_registry(SAMPLE_REGISTRY)
    monday = dt.date(2025, 3, 3)
    rows = [
        measure(p.site.id, p.room.id, monday + dt.timedelta(days=d), band,
                area=p.room.area_m2, building=p.building.id)
        for p in registry.placed_rooms() if p.room.devices
        for d in range(7) for band in ("morning", "afternoon")
    ]
    store = _store(config)
    store.write(rows)
    store.close()
    out = tmp_path / "export"
    code, output = _run(config, "export", "--recipient", "regulator", "--from", "2025-03-03",
                        "--to", "2025-03-10", "--period", "week", "--out", str(out))
    assert code == 0, output
    summary = json.loads(output)
    assert summary["epsilon"] == pytest.approx(1.0) and summary["released"] > 0
    assert (out / "datapackage.json").exists() and (out / "regulator_aggregate.csv").exists()
    store = _store(config)
    written = store.query("regulator_aggregate", 0, 2**62)
    assert {s.tags["level"] for s in written} == {"building", "district"}
    assert store.query("privacy_budget", 0, 2**62)
    store.close()
    # a second release spends the rest; a third is refused (exit 3) and charges nothing
    assert _run(config, "export", "--recipient", "regulator", "--from", "2025-03-03",
                "--to", "2025-03-10", "--out", str(out))[0] == 0
    code, output = _run(config, "export", "--recipient", "regulator", "--from", "2025-03-03",
                        "--to", "2025-03-10", "--out", str(out))
    assert code == 3 and "refused" in output
    report = tmp_path / "report.md"
    assert _run(config, "privacy", "report", "--out", str(report))[0] == 0
    text = report.read_text()
    for heading in ("Data inventory", "Retention policies", "Audit: PASS", "privacy budget"):
        assert heading in text
    assert "| regulator | 2 | 2 | 0 | 2 |" in text
