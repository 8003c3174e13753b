"""``softplace import`` / ``detect`` / ``report`` / ``slots`` end to end on SQLite."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from detector.importer import CsvImportError, read_counts
from softplace.schema import SeriesName
from softplace.storage.base import Sample
from softplace.storage.sqlite import SqliteStore
from softplace_cli import cli
from tests.detector.helpers import REGISTRY_YAML, at, site

MON = dt.date(2024, 3, 4)


def test_importer_reads_iso_local_and_unix_timestamps() -> None:
    text = ("timestamp,room,count\n"
            "2024-03-04T09:00:00Z,meet,3\n"
            "2024-07-01 09:00,meet,2\n"  # local (BST): 08:00 UTC
            f"{at(MON, '10:00') // 1000},office,0\n")
    samples = list(read_counts(io.StringIO(text), site()))
    assert [s.time_ms for s in samples] == [
        at(MON, "09:00"), at(dt.date(2024, 7, 1), "09:00"), at(MON, "10:00")]
    assert samples[0].tags == site().room("meet").tags
    assert samples[0].fields == {"count": 3, "sources": 1}


@pytest.mark.parametrize(("text", "message"), [
    ("time,room,count\n", "missing column"),
    ("timestamp,room,count\n2024-03-04T09:00Z,nowhere,1\n", ":2: room 'nowhere'"),
    ("timestamp,room,count\n2024-03-04T09:00Z,meet,1\nyesterday,meet,1\n", ":3: timestamp"),
    ("timestamp,room,count\n2024-03-04T09:00Z,meet,-1\n", ":2: count must be >= 0"),
])
def test_importer_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(CsvImportError, match=message):
        list(read_counts(io.StringIO(text), site(), "f.csv"))


@pytest.mark.slow  # five days through the CLI: thousands of SQLite commits
def test_commands_import_detect_report_slots(tmp_path: Path) -> None:
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(REGISTRY_YAML)
    lines = ["timestamp,room,count"]
    for day in range(5):
        date = MON + dt.timedelta(days=day)
        for minute in range(0, 24 * 60, 5):
            busy = 9 * 60 <= minute < 10 * 60
            stamp = dt.datetime.combine(date, dt.time(minute // 60, minute % 60))
            lines.append(f"{stamp.isoformat()},meet,{2 if busy else 0}")
    csv_file = tmp_path / "history.csv"
    csv_file.write_text("\n".join(lines) + "\n")
    env = {
        "SOFTPLACE_REGISTRY": str(registry_file),
        "SOFTPLACE_STORAGE__BACKEND": "sqlite",
        "SOFTPLACE_STORAGE__SQLITE_PATH": str(tmp_path / "store.sqlite"),
        "SOFTPLACE_DETECTOR__CHECKPOINT_PATH": str(tmp_path / "cp.json"),
        # 2024 history must outlive the default retention for this test
        "SOFTPLACE_RETENTION__RAW_DAYS": "100000",
        "SOFTPLACE_RETENTION__DERIVED_DAYS": "100000",
    }
    runner = CliRunner(env=env)
    result = runner.invoke(cli, ["import", str(csv_file), "--site", "s1"])
    assert result.exit_code == 0, result.output
    assert f"imported {len(lines) - 1} room counts" in result.output
    result = runner.invoke(cli, ["detect", "--site", "s1", "--from", "2024-03-04",
                                 "--to", "2024-03-08"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["report", "--site", "s1", "--from", "2024-03-04",
                                 "--to", "2024-03-08", "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["source"] == "stored"
    assert [r["room"] for r in report["under_used"]] == ["meet"]
    assert len(report["breaches"]) == 5
    result = runner.invoke(cli, ["report", "--site", "s1", "--from", "2024-03-04",
                                 "--to", "2024-03-08"])
    assert result.exit_code == 0 and "Under-used rooms (1)" in result.output
    out = tmp_path / "feeds"
    # an accepted booking ahead, as `softplace bookings reconcile` stores it: the feed
    # leaves that Monday out (the booked-time rule)
    booked_at = at(MON + dt.timedelta(weeks=1), "11:00")
    store = SqliteStore(tmp_path / "store.sqlite")
    store.write([Sample(SeriesName.BOOKING, site().room("meet").tags, {
        "end_ms": booked_at + 3_600_000, "booked_h": 1.0, "used_h": 0.0, "checked": 0,
        "ghost": 0, "unknown": 0}, booked_at)])
    store.close()
    result = runner.invoke(cli, ["slots", "--site", "s1", "--from", "2024-03-04",
                                 "--to", "2024-03-08", "--out", str(out)])
    assert result.exit_code == 0, result.output
    feed = (out / "meet.ics").read_bytes()
    assert b"RRULE:FREQ=WEEKLY" in feed
    assert b"EXDATE;TZID=Europe/London:20240311T100000" in feed, feed
    assert json.loads((out / "meet.json").read_text())["idle_slots"]
    # the service, one step, resumes from the batch's store state without error
    result = runner.invoke(cli, ["detect", "--site", "s1", "--once", "--since", "2024-03-04"])
    assert result.exit_code == 0, result.output
