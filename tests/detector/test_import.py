"""``softplace import``: all or nothing, the gateway's plausibility rules, any encoding
refused cleanly, every bad value named with its line."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector.importer import CsvImportError, decode, parse_counts, read_counts
from softplace.storage.sqlite import SqliteStore
from tests.detector.helpers import REGISTRY_YAML, site
from tests.honest_cli import softplace, store_env

NOW = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)
NOW_MS = int(NOW.timestamp() * 1000)
HEADER = "timestamp,room,count\n"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY_YAML)
    return store_env(tmp_path, SOFTPLACE_REGISTRY=str(registry), **extra)


def _stored(tmp_path: Path) -> int:
    path = tmp_path / "store.sqlite"
    if not path.exists():
        return 0
    store = SqliteStore(path)
    try:
        return len(store.query("room_count", 0, 1 << 60))
    finally:
        store.close()


def _recent(minutes_ago: int) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)).isoformat()


def test_import_bad_row_late_in_the_file_stores_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [f"{_recent(i + 10)},meet,1" for i in range(12_000)]
    rows[11_998] = f"{_recent(5)},meet,lots"
    csv_file = tmp_path / "history.csv"
    csv_file.write_text(HEADER + "\n".join(rows) + "\n")
    outcome = softplace(capsys, _env(tmp_path), "import", str(csv_file), "--site", "s1")
    assert outcome.code == 2
    assert f"{csv_file}:12000: count 'lots'" in outcome.err
    assert "nothing imported" in outcome.err
    assert _stored(tmp_path) == 0


def test_import_good_file_with_bom_and_semicolons_is_stored_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "timestamp;room;count\r\n" + "".join(f"{_recent(i + 1)};meet;2\r\n" for i in range(50))
    csv_file = tmp_path / "excel.csv"
    csv_file.write_bytes(b"\xef\xbb\xbf" + text.encode())
    outcome = softplace(capsys, _env(tmp_path), "import", str(csv_file), "--site", "s1")
    assert outcome.code == 0, outcome
    assert "imported 50 room counts" in outcome.out
    assert _stored(tmp_path) == 50


def test_import_all_rows_older_than_retention_exits_non_zero_saying_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file = tmp_path / "old.csv"
    csv_file.write_text(HEADER + "2024-03-04T09:00:00Z,meet,1\n2024-03-04T09:05:00Z,meet,0\n")
    outcome = softplace(capsys, _env(tmp_path), "import", str(csv_file), "--site", "s1")
    assert outcome.code == 2
    assert "nothing imported: all 2 rows are older than the raw retention (30 days)" in (
        outcome.err)
    assert not (tmp_path / "store.sqlite").exists()


@pytest.mark.parametrize(("row", "message"), [
    ("2026-11-30T11:00:00Z,meet,99999", "count 99999 outside 0..10 (room capacity 4)"),
    ("2030-01-01T00:00:00Z,meet,1",
     "timestamp '2030-01-01T00:00:00Z' is 97416000 s in the future"),
    ("1e23,meet,1", "timestamp '1e23': use ISO 8601 or Unix seconds"),
    ("inf,meet,1", "timestamp 'inf'"),
    ("nan,meet,1", "timestamp 'nan'"),
    ("2026-11-30T11:00:00Z,meet,1e3", "count '1e3' and sources '1' must be integers"),
    ("2026-11-30T11:00:00Z,meet", "count '' and sources '1' must be integers"),
])
def test_import_refuses_what_the_gateway_would_naming_the_line(row: str, message: str) -> None:
    text = HEADER + "2026-11-30T10:00:00Z,meet,1\n" + row + "\n"
    with pytest.raises(CsvImportError) as raised:
        parse_counts(text, site(), "f.csv", now=NOW_MS)
    assert f"f.csv:3: {message}" in str(raised.value)


def test_import_names_every_bad_line_not_only_the_first() -> None:
    text = HEADER + "x,meet,1\n2026-11-30T10:00:00Z,nowhere,1\n2026-11-30T10:00:00Z,meet,-2\n"
    with pytest.raises(CsvImportError) as raised:
        parse_counts(text, site(), "f.csv", now=NOW_MS)
    message = str(raised.value)
    assert message.startswith("3 bad row(s), nothing imported")
    assert all(f"f.csv:{line}:" in message for line in (2, 3, 4))


def test_import_latin1_byte_names_its_line() -> None:
    data = (HEADER + "2026-11-30T10:00:00Z,meet,1\n2026-11-30T10:00:00Z,salle é,1\n").encode(
        "latin-1")
    with pytest.raises(CsvImportError, match=r"f.csv:3: byte 0xe9 is not UTF-8"):
        decode(data, "f.csv")


def test_import_header_without_a_known_delimiter_says_so() -> None:
    with pytest.raises(CsvImportError, match="cannot tell the delimiter"):
        parse_counts("timestamp\troom\tcount\n", site(), "f.csv", now=NOW_MS)


def test_import_reader_keeps_the_file_order() -> None:
    text = HEADER + "2026-11-30T10:00:00Z,meet,1\n2026-11-30T09:00:00Z,office,0\n"
    samples = read_counts(io.StringIO(text), site())
    assert [s.tags["room"] for s in samples] == ["meet", "office"]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_import_any_bytes_end_in_samples_or_a_clean_error(data: bytes) -> None:
    try:
        parse_counts(decode(HEADER.encode() + data, "f.csv"), site(), "f.csv", now=NOW_MS)
    except CsvImportError as err:
        assert "f.csv" in str(err)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=25), st.sampled_from(["meet", "office", "x", ""]),
                          st.text(max_size=8)), max_size=5))
def test_import_any_cell_values_end_in_samples_or_a_clean_error(
    rows: list[tuple[str, str, str]]
) -> None:
    text = HEADER + "".join(
        ",".join('"' + cell.replace('"', '""') + '"' for cell in row) + "\n" for row in rows)
    try:
        parse_counts(text, site(), "f.csv", now=NOW_MS)
    except CsvImportError as err:
        assert "f.csv" in str(err)
