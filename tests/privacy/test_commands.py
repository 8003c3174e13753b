from __future__ import annotations

import csv
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
from tests.privacy.helpers import booking, measure

DAY_MS = 86_400_000
# data must be recent (the store keeps derived series 395 days) and its month complete
_LAST_MONTH = (dt.date.today().replace(day=1) - dt.timedelta(days=1)).replace(day=1)
MONDAY = _LAST_MONTH + dt.timedelta(days=(7 - _LAST_MONTH.weekday()) % 7)
WEEK = ("--from", str(MONDAY), "--to", str(MONDAY + dt.timedelta(days=6)), "--period", "week")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "softplace.yaml"
    path.write_text(
        f"registry: {SAMPLE_REGISTRY}\n"
        f"storage: {{backend: sqlite, sqlite_path: {tmp_path / 'store.sqlite'}}}\n"
        "retention: {raw_days: 30, derived_days: 395, aggregates_days: 0}\n"
        f"privacy: {{ledger_path: {tmp_path / 'ledger.sqlite'},"
        " budgets: {regulator: 2.0}, epsilon_per_release: 0.75,"
        " epsilon_bookings: 0.25}\n",  # 1.0 a release
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
    monday = MONDAY
    rows = [
        measure(p.site.id, p.room.id, monday + dt.timedelta(days=d), band,
                area=p.room.area_m2, building=p.building.id)
        for p in registry.placed_rooms() if p.room.devices
        for d in range(7) for band in ("morning", "afternoon")
    ]
    offered = next(p for p in registry.placed_rooms() if p.room.offer is not None)
    rows += [booking(offered.site.id, offered.room.id, monday + dt.timedelta(days=d), 10,
                     building=offered.building.id) for d in range(5)]
    store = _store(config)
    store.write(rows)
    store.close()
    out = tmp_path / "export"
    code, output = _run(config, "export", "--recipient", "regulator", *WEEK, "--out", str(out))
    assert code == 0, output
    summary = json.loads(output)
    assert summary["epsilon"] == pytest.approx(1.0) and summary["released"] > 0
    assert (out / "datapackage.json").exists() and (out / "regulator_aggregate.csv").exists()
    with (out / "regulator_aggregate.csv").open(encoding="utf-8", newline="") as handle:
        cells = [r for r in csv.DictReader(handle) if r["status"] == "released"]
    assert cells and all(r["ghost_bookings"] != "" and r["booked_used_h"] != "" for r in cells)
    package = json.loads((out / "datapackage.json").read_text())
    noise = {q["quantity"]: q for q in package["softplace:privacy"]["noise"]}
    assert noise["ghost_bookings"]["epsilon"] == pytest.approx(0.125)  # charged: bookings
    store = _store(config)
    written = store.query("regulator_aggregate", 0, 2**62)
    assert {s.tags["level"] for s in written} == {"building", "district"}
    assert store.query("privacy_budget", 0, 2**62)
    store.close()
    # a second release spends the rest; a third is refused (exit 3) and charges nothing
    assert _run(config, "export", "--recipient", "regulator", *WEEK[:4], "--out", str(out))[0] == 0
    code, output = _run(config, "export", "--recipient", "regulator", *WEEK[:4], "--out", str(out))
    assert code == 3 and "refused" in output
    report = tmp_path / "report.md"
    assert _run(config, "privacy", "report", "--out", str(report))[0] == 0
    text = report.read_text()
    for heading in ("Data inventory", "Retention policies", "Audit: PASS", "privacy budget"):
        assert heading in text
    assert "| regulator | 2 | 2 | 0 | 2 |" in text


def _week_of_sample_data(store_path: Path) -> None:
    registry = load_registry(SAMPLE_REGISTRY)
    monday = MONDAY
    store = SqliteStore(store_path)
    store.write([
        measure(p.site.id, p.room.id, monday + dt.timedelta(days=d), band,
                area=p.room.area_m2, building=p.building.id)
        for p in registry.placed_rooms() if p.room.devices
        for d in range(7) for band in ("morning", "afternoon")
    ])
    store.close()



@pytest.fixture
def relative_config(tmp_path: Path) -> Path:
    """A settings file whose ledger path is relative: it must hang off the file's directory."""
    etc = tmp_path / "etc"
    etc.mkdir()
    path = etc / "softplace.yaml"
    path.write_text(
        f"registry: {SAMPLE_REGISTRY}\n"
        f"storage: {{backend: sqlite, sqlite_path: {tmp_path / 'store.sqlite'}}}\n"
        "privacy: {ledger_path: ledger/privacy.sqlite, budgets: {regulator: 3.0},"
        " epsilon_per_release: 0.75, epsilon_bookings: 0.25}\n",  # 1.0 a release
        encoding="utf-8",
    )
    _week_of_sample_data(tmp_path / "store.sqlite")
    return path


@pytest.mark.slow  # several releases through the CLI
def test_commands_export_ledger_follows_the_settings_file_not_the_cwd(
    relative_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for cwd in ("a", "b"):
        (tmp_path / cwd).mkdir()
        monkeypatch.chdir(tmp_path / cwd)
        code, output = _run(relative_config, "export", "--recipient", "regulator", *WEEK,
                            "--out", str(tmp_path / f"out-{cwd}"))
        assert code == 0, output
    ledger = relative_config.parent / "ledger" / "privacy.sqlite"
    assert ledger.exists() and not (tmp_path / "a" / "ledger").exists()
    summary = json.loads(output)
    assert summary["spent_in_window"] == pytest.approx(2.0)
    assert summary["left_in_window"] == pytest.approx(1.0)


@pytest.mark.slow
def test_commands_export_refuses_a_ledger_that_knows_less_than_the_store(
    relative_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _run(relative_config, "export", "--recipient", "regulator", *WEEK,
                "--out", str(tmp_path / "out"))[0] == 0
    # another ledger (an environment override, a restored old copy): a fresh full budget
    monkeypatch.setenv("SOFTPLACE_PRIVACY__LEDGER_PATH", str(tmp_path / "other.sqlite"))
    code, output = _run(relative_config, "export", "--recipient", "regulator", *WEEK,
                        "--out", str(tmp_path / "out2"))
    assert code == 3
    flat = " ".join(output.split())
    assert "records epsilon 1 in 1 releases" in flat and "knows 0 in 0" in flat
    assert str(tmp_path / "store.sqlite") in flat.replace(" ", "") or "SQLite" in flat
    assert not (tmp_path / "out2" / "regulator_aggregate.csv").exists()


@pytest.mark.slow
def test_commands_export_charges_nothing_when_the_files_cannot_be_written(
    relative_config: Path, tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, output = _run(relative_config, "export", "--recipient", "regulator", *WEEK,
                        "--out", str(blocker / "release"))
    assert code == 3 and "nothing was charged" in " ".join(output.split())
    assert "Traceback" not in output
    code, output = _run(relative_config, "privacy", "budget")
    assert "spent 0 of 3" in output
    store = SqliteStore(tmp_path / "store.sqlite")
    assert store.query("privacy_budget", 0, 2**62) == []
    assert store.query("regulator_aggregate", 0, 2**62) == []
    store.close()


@pytest.mark.slow
def test_commands_export_refuses_future_and_uncovered_days(
    relative_config: Path, tmp_path: Path,
) -> None:
    future = dt.date.today() + dt.timedelta(days=40)
    code, output = _run(relative_config, "export", "--recipient", "regulator",
                        "--from", str(future), "--to", str(future), "--out", str(tmp_path / "o"))
    assert code == 3 and "future" in output
    code, output = _run(relative_config, "export", "--recipient", "regulator",
                        "--from", str(_LAST_MONTH - dt.timedelta(days=60)),
                        "--to", str(_LAST_MONTH - dt.timedelta(days=40)), "--period", "month",
                        "--out", str(tmp_path / "o"))
    assert code == 3 and "no observed data" in output
    assert "spent 0 of 3" in _run(relative_config, "privacy", "budget")[1]


@pytest.mark.slow
def test_commands_audit_finds_an_edited_and_a_truncated_ledger(
    relative_config: Path, tmp_path: Path,
) -> None:
    import sqlite3

    for n in range(2):
        assert _run(relative_config, "export", "--recipient", "regulator", *WEEK,
                    "--out", str(tmp_path / f"out{n}"))[0] == 0
    assert _run(relative_config, "privacy", "audit", "--no-record")[0] == 0
    ledger = relative_config.parent / "ledger" / "privacy.sqlite"
    backup = ledger.read_bytes()
    db = sqlite3.connect(ledger)
    db.executescript("DROP TRIGGER entry_no_update; UPDATE entry SET epsilon = 0.5 WHERE seq = 1;")
    db.close()
    code, output = _run(relative_config, "privacy", "audit", "--no-record")
    assert code == 1 and "ledger" in output and "edited" in output
    ledger.write_bytes(backup)
    db = sqlite3.connect(ledger)
    db.executescript("DROP TRIGGER entry_no_delete;"
                     " DELETE FROM entry WHERE seq >= (SELECT MAX(seq) FROM entry WHERE"
                     " kind = 'charge');")
    db.close()
    code, output = _run(relative_config, "privacy", "audit", "--no-record")
    assert code == 1 and "knows 1 in 1" in " ".join(output.split())
    ledger.write_bytes(backup[: len(backup) // 2])
    code, output = _run(relative_config, "privacy", "audit", "--no-record")
    assert code == 1 and "ledger" in output
