"""The installed entry point: exit codes and clean errors, as cron jobs and CI see them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from softplace.storage.base import Sample
from softplace.storage.sqlite import SqliteStore

DAY_MS = 86_400_000

pytestmark = pytest.mark.slow  # every test spawns the installed entry point


def run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOFTPLACE_STORAGE__SQLITE_PATH": str(tmp_path / "store.sqlite"),
           "SOFTPLACE_PRIVACY__LEDGER_PATH": str(tmp_path / "ledger.sqlite"),
           "COLUMNS": "120"}
    entry_point = Path(sys.executable).with_name("softplace")
    return subprocess.run([str(entry_point), *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_cli_privacy_audit_exits_non_zero_on_an_out_of_policy_point(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "store.sqlite").close()
    assert run(tmp_path, "privacy", "audit", "--no-record").returncode == 0
    store = SqliteStore(tmp_path / "store.sqlite")
    store.write([Sample("room_count", {"site": "s", "room": "r"}, {"count": 1},
                        int(time.time() * 1000) - 60 * DAY_MS)])
    store.close()
    result = run(tmp_path, "privacy", "audit", "--no-record")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "room_count" in result.stdout + result.stderr


def test_cli_export_refused_without_a_budget_exits_3(tmp_path: Path) -> None:
    SqliteStore(tmp_path / "store.sqlite").close()
    result = run(tmp_path, "export", "--recipient", "nobody", "--district", "lyon-3",
                 "--from", "2026-11-02", "--to", "2026-11-09", "--out", str(tmp_path / "out"))
    assert result.returncode == 3, result.stdout + result.stderr


def test_cli_unknown_site_is_a_clean_error(tmp_path: Path) -> None:
    result = run(tmp_path, "report", "--site", "nope", "--from", "2026-11-02",
                 "--to", "2026-11-08")
    assert result.returncode == 2
    assert "no site 'nope'" in result.stderr and "Traceback" not in result.stderr


def test_cli_bad_config_names_file_line_and_option(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("ingest:\n  batch_size: 0\n")
    result = run(tmp_path, "--config", str(config), "report", "--site", "x",
                 "--from", "2026-11-02", "--to", "2026-11-08")
    assert result.returncode == 2
    assert f"{config}:2: ingest.batch_size" in result.stderr.replace("\n", "")
