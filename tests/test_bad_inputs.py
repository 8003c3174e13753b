"""Every case of ``docs/bad-inputs.md`` is run, and its message must be what the code
prints (placeholders such as ``<file>`` stand for any text)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from softplace.storage.base import Sample
from softplace.storage.sqlite import SqliteStore
from tests.detector.helpers import REGISTRY_YAML
from tests.honest_cli import Outcome, softplace, store_env

DOC = Path(__file__).parents[1] / "docs" / "bad-inputs.md"
HEADER = "timestamp,room,count\n"
WEEK = ("--from", "2026-11-02", "--to", "2026-11-08")


def _table() -> dict[str, str]:
    """case -> the message column, from the Markdown table."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 4 and cells[0].startswith("`") and cells[0] != "case":
            message = re.match(r"`(.*?)`(?: \(|$)", cells[2])
            assert message, f"no message in {line}"
            rows[cells[0].strip("`")] = message.group(1)
    return rows


def _pattern(message: str) -> str:
    parts = re.split(r"(<[a-z]+>)", message)
    return "".join(".+?" if re.fullmatch(r"<[a-z]+>", p) else re.escape(p) for p in parts)


Runner = Callable[[Path, pytest.CaptureFixture[str]], Outcome]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    registry = tmp / "registry.yaml"
    if not registry.exists():
        registry.write_text(REGISTRY_YAML)
    return store_env(tmp, SOFTPLACE_REGISTRY=str(registry), **extra)


def _import(
    tmp: Path, capsys: pytest.CaptureFixture[str], data: bytes, **env: str
) -> Outcome:
    csv_file = tmp / "history.csv"
    csv_file.write_bytes(data)
    return softplace(capsys, _env(tmp, **env), "import", str(csv_file), "--site", "s1")


def _recent() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))


def _with_store(tmp: Path) -> None:
    SqliteStore(tmp / "store.sqlite").close()


def _foreign_store(tmp: Path, capsys: pytest.CaptureFixture[str]) -> Outcome:
    store = SqliteStore(tmp / "store.sqlite")
    store.write([Sample("room_count", {"site": "s", "room": "r"}, {"count": 1},
                        int(time.time() * 1000))])
    store.close()
    return softplace(capsys, _env(tmp), "demo", "--days", "1")


def _registry(tmp: Path, capsys: pytest.CaptureFixture[str], text: str) -> Outcome:
    (tmp / "registry.yaml").write_text(text)
    _with_store(tmp)
    return softplace(capsys, _env(tmp), "report", "--site", "s1", *WEEK)


def _slots(tmp: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> Outcome:
    _with_store(tmp)
    return softplace(capsys, _env(tmp), "slots", "--site", "s1", *WEEK,
                     "--out", str(tmp / "feeds"), *extra)


def _settings_file(tmp: Path, capsys: pytest.CaptureFixture[str]) -> Outcome:
    config = tmp / "softplace.yaml"
    config.write_text("retention:\n  raw_days: 60\n  derived_days: 400\n  raw_days: 7\n")
    return softplace(capsys, _env(tmp, SOFTPLACE_CONFIG=str(config)), "report", "--site",
                     "s1", *WEEK)


CASES: dict[str, Runner] = {
    "missing-store": lambda tmp, capsys: softplace(
        capsys, _env(tmp), "report", "--site", "s1", *WEEK),
    "missing-directory": lambda tmp, capsys: _import(
        tmp, capsys, f"{HEADER}{_recent()},meet,1\n".encode(),
        SOFTPLACE_STORAGE__SQLITE_PATH=str(tmp / "nope" / "s.sqlite")),
    "demo-foreign-store": _foreign_store,
    "import-implausible-count": lambda tmp, capsys: _import(
        tmp, capsys, f"{HEADER}{_recent()},meet,1\n{_recent()},meet,99999\n".encode()),
    "import-future": lambda tmp, capsys: _import(
        tmp, capsys, f"{HEADER}2030-01-01T00:00:00Z,meet,1\n".encode()),
    "import-not-a-number": lambda tmp, capsys: _import(
        tmp, capsys, f"{HEADER}inf,meet,1\n".encode()),
    "import-encoding": lambda tmp, capsys: _import(
        tmp, capsys, f"{HEADER}{_recent()},salle é,1\n".encode("latin-1")),
    "import-delimiter": lambda tmp, capsys: _import(tmp, capsys, b"timestamp\troom\tcount\n"),
    "import-missing-column": lambda tmp, capsys: _import(tmp, capsys, b"time,room,count\n"),
    "import-too-old": lambda tmp, capsys: _import(
        tmp, capsys, f"{HEADER}2024-03-04T09:00:00Z,meet,1\n2024-03-04T09:05Z,meet,0\n".encode()),
    "yaml-duplicate-key": _settings_file,
    "env-typo": lambda tmp, capsys: softplace(
        capsys, _env(tmp, SOFTPLACE_RETENTOIN__RAW_DAYS="7"), "report", "--site", "s1", *WEEK),
    "registry-duplicate-room": lambda tmp, capsys: _registry(tmp, capsys, REGISTRY_YAML.replace(
        "              - {id: flat,", "              - {id: meet, kind: office, area_m2: 5,"
        " capacity: 1}\n              - {id: flat,")),
    "registry-unknown-sensor-kind": lambda tmp, capsys: _registry(
        tmp, capsys, REGISTRY_YAML.replace("devices: [dev-meet]}",
                                           "devices: [dev-meet], sensor_kind: radr}")),
    "bad-date": lambda tmp, capsys: softplace(
        capsys, _env(tmp), "report", "--site", "s1", "--from", "2 Nov", "--to", "2026-11-08"),
    "reversed-dates": lambda tmp, capsys: softplace(
        capsys, _env(tmp), "report", "--site", "s1", "--from", "2026-11-08",
        "--to", "2026-11-02"),
    "weeks-below-one": lambda tmp, capsys: _slots(tmp, capsys, "--weeks", "0"),
    "slots-nothing-idle": _slots,
}


def test_bad_inputs_table_and_cases_match() -> None:
    assert sorted(_table()) == sorted(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_inputs_message_is_what_the_code_prints(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outcome = CASES[case](tmp_path, capsys)
    printed = outcome.err if outcome.code else outcome.out
    assert re.search(_pattern(_table()[case]), printed), f"{case}: {printed!r}"
    assert "Traceback" not in outcome.err
    if outcome.code:
        assert outcome.code == 2
        assert printed.strip().splitlines() == [printed.strip()], "one line"
        assert printed.startswith("error: ")
