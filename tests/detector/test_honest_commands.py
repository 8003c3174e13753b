"""``detect`` says what it did in a sentence or JSON; ``report`` notices stale stored
figures; ``intervals`` lists vacancies and each day's longest, as CSV and JSON."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest

from tests.detector.helpers import LONDON, REGISTRY_YAML
from tests.honest_cli import Outcome, softplace, store_env


def _monday() -> dt.date:
    today = dt.datetime.now(LONDON).date()
    return today - dt.timedelta(days=today.weekday() + 14)


def _history(path: Path, monday: dt.date, busy_until: int) -> Path:
    """meet busy 09:00 to ``busy_until`` o'clock on Monday, empty otherwise, every 5 min."""
    lines = ["timestamp,room,count"]
    for minute in range(0, 24 * 60, 5):
        stamp = dt.datetime.combine(monday, dt.time(minute // 60, minute % 60))
        lines.append(f"{stamp.isoformat()},meet,{2 if 9 * 60 <= minute < busy_until * 60 else 0}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY_YAML)
    return store_env(tmp_path, SOFTPLACE_REGISTRY=str(registry))


def _run(capsys: pytest.CaptureFixture[str], env: dict[str, str], *args: str) -> Outcome:
    outcome = softplace(capsys, env, *args)
    assert outcome.code == 0, outcome
    return outcome


def test_commands_detect_sentence_stale_report_and_intervals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> None:
    monday = _monday()
    day = ("--from", monday.isoformat(), "--to", monday.isoformat())
    _run(capsys, env, "import", str(_history(tmp_path / "a.csv", monday, 10)), "--site", "s1")
    detected = _run(capsys, env, "detect", "--site", "s1", *day)
    assert detected.out.startswith("site s1: ") and " breaches; " in detected.out
    assert "{" not in detected.out
    as_json = json.loads(_run(capsys, env, "detect", "--site", "s1", *day,
                              "--format", "json").out)
    assert as_json["site"] == "s1" and as_json["breaches"] >= 1

    fresh = json.loads(_run(capsys, env, "report", "--site", "s1", *day, "--format",
                            "json").out)
    assert fresh["source"] == "stored" and not fresh["stale_stored"]
    # corrected history: meet was in use until 15:00, so no half-day vacancy any more
    _run(capsys, env, "import", str(_history(tmp_path / "b.csv", monday, 15)), "--site", "s1")
    stale = json.loads(_run(capsys, env, "report", "--site", "s1", *day, "--format",
                            "json").out)
    assert stale["source"] == "recomputed" and stale["stale_stored"]
    assert [b["room"] for b in stale["breaches"]] == [
        b["room"] for b in fresh["breaches"] if b["room"] != "meet"]
    text = _run(capsys, env, "report", "--site", "s1", *day).out
    assert "older than the room counts" in text and "softplace detect --site s1" in text

    rows = list(csv.DictReader(io.StringIO(_run(
        capsys, env, "intervals", "--site", "s1", *day, "--room", "meet", "--format", "csv").out)))
    assert [r["room"] for r in rows] == ["meet", "meet"]  # before 09:00 and after 15:00
    assert rows[0]["start"].startswith(f"{monday}T00:00") and rows[1]["end"].startswith(
        f"{monday + dt.timedelta(days=1)}T00:00")
    longest = json.loads(_run(capsys, env, "intervals", "--site", "s1", *day, "--room", "meet",
                              "--longest", "--format", "json").out)["longest"]
    assert len(longest) == 1
    assert longest[0]["open_h"] == 8 and longest[0]["longest_h"] == pytest.approx(2.0)
    assert longest[0]["start"].startswith(f"{monday}T15:00")
    table = _run(capsys, env, "intervals", "--site", "s1", *day, "--longest").out
    assert "Longest vacancy per day" in table and "meet" in table


def test_commands_report_csv_has_one_row_per_room(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> None:
    monday = _monday()
    _run(capsys, env, "import", str(_history(tmp_path / "a.csv", monday, 10)), "--site", "s1")
    out = _run(capsys, env, "report", "--site", "s1", "--from", monday.isoformat(), "--to",
               monday.isoformat(), "--format", "csv").out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["room"] for r in rows} == {"meet", "office", "flat", "store"}
    meet = next(r for r in rows if r["room"] == "meet")
    assert float(meet["used_h"]) == pytest.approx(1.0)


def test_commands_import_shows_a_progress_bar_on_a_large_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rich.console import Console

    import detector.commands
    from detector.commands import LARGE_IMPORT_LINES

    terminal = Console(file=io.StringIO(), force_terminal=True, width=100, color_system=None)
    monkeypatch.setattr(detector.commands, "console", terminal)
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    lines = ["timestamp,room,count", *(
        f"{(start + dt.timedelta(seconds=5 * i)).isoformat()},meet,1"
        for i in range(LARGE_IMPORT_LINES))]
    csv_file = tmp_path / "large.csv"
    csv_file.write_text("\n".join(lines) + "\n")
    _run(capsys, env, "import", str(csv_file), "--site", "s1")
    screen = terminal.file.getvalue()  # type: ignore[attr-defined]
    assert "checking large.csv" in screen
    assert f"imported {LARGE_IMPORT_LINES} room counts" in screen
