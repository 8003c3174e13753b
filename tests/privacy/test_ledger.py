from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from pathlib import Path

import pytest

from privacy.ledger import Ledger, recorded_spending, store_mismatches
from privacy.settings import PrivacySettings
from softplace.errors import PrivacyError
from softplace.storage.base import Sample

NOV = (dt.date(2026, 11, 1), dt.date(2026, 12, 1))
DEC = (dt.date(2026, 12, 1), dt.date(2027, 1, 1))


def _month(year: int, month: int) -> tuple[dt.date, dt.date]:
    first = dt.date(year, month, 1)
    return first, (first + dt.timedelta(days=32)).replace(day=1)


def test_ledger_refuses_over_budget(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite", {"regulator": 2.0}) as ledger:
        ledger.charge("regulator", 1.0, start=NOV[0], end=NOV[1])
        ledger.charge("regulator", 1.0, start=NOV[0], end=NOV[1])
        with pytest.raises(PrivacyError, match="refused"):
            ledger.charge("regulator", 0.1, start=NOV[0], end=NOV[1])
        assert ledger.state("regulator").spent == pytest.approx(2.0)
        assert ledger.state("regulator").releases == 2


def test_ledger_disjoint_months_compose_in_parallel(tmp_path: Path) -> None:
    """A monthly feed at epsilon 1 runs for years against a budget of 1."""
    with Ledger(tmp_path / "ledger.sqlite", {"regulator": 1.0}) as ledger:
        for i in range(36):
            start, end = _month(2024 + i // 12, i % 12 + 1)
            ledger.charge("regulator", 1.0, start=start, end=end)
        state = ledger.state("regulator")
        assert state.spent == pytest.approx(1.0) and state.total == pytest.approx(36.0)
        # but a release overlapping one day of an already released month is refused
        with pytest.raises(PrivacyError, match="refused"):
            ledger.charge("regulator", 0.5, start=dt.date(2026, 12, 31), end=dt.date(2027, 1, 2))


def test_ledger_overlap_counts_the_worst_day(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite", {"regulator": 2.0}) as ledger:
        ledger.charge("regulator", 1.0, start=NOV[0], end=NOV[1])
        ledger.charge("regulator", 1.0, start=dt.date(2026, 11, 20), end=DEC[1])
        assert ledger.state("regulator", DEC).spent == pytest.approx(1.0)
        assert ledger.state("regulator", NOV).spent == pytest.approx(2.0)
        ledger.charge("regulator", 1.0, start=DEC[0], end=DEC[1])  # Dec: 1 + 1
        with pytest.raises(PrivacyError):
            ledger.charge("regulator", 0.5, start=dt.date(2026, 11, 25), end=dt.date(2026, 11, 26))


def test_ledger_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger(path, {"regulator": 3.0}) as ledger:
        ledger.charge("regulator", 2.5, release_id="r1", start=NOV[0], end=NOV[1])
    with Ledger(path, {"regulator": 3.0}) as reopened:
        assert reopened.state("regulator").spent == pytest.approx(2.5)
        with pytest.raises(PrivacyError):
            reopened.charge("regulator", 1.0, start=NOV[0], end=NOV[1])
        assert [c.release_id for c in reopened.charges()] == ["r1"]


def test_ledger_unknown_recipient_has_no_budget(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite", {"regulator": 3.0}) as ledger, \
            pytest.raises(PrivacyError, match="no privacy budget"):
        ledger.charge("press", 0.1, start=NOV[0], end=NOV[1])


def test_ledger_budgets_are_per_recipient(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite", {"a": 1.0, "b": 1.0}) as ledger:
        ledger.charge("a", 1.0, start=NOV[0], end=NOV[1])
        ledger.charge("b", 1.0, start=NOV[0], end=NOV[1])
        assert {s.recipient: s.remaining for s in ledger.states()} == {"a": 0.0, "b": 0.0}


def test_ledger_concurrent_charges_never_exceed_budget(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    Ledger(path, {"regulator": 5.0}).close()
    accepted: list[int] = []

    def worker() -> None:
        ledger = Ledger(path, {"regulator": 5.0})
        try:
            for _ in range(5):
                try:
                    ledger.charge("regulator", 1.0, start=NOV[0], end=NOV[1])
                    accepted.append(1)
                except PrivacyError:
                    pass
        finally:
            ledger.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accepted) == 5
    with Ledger(path, {"regulator": 5.0}) as ledger:
        assert ledger.state("regulator").spent == pytest.approx(5.0)
        assert ledger.verify() == []


def _three_charges(path: Path) -> None:
    with Ledger(path, {"regulator": 5.0}) as ledger:
        for month in (9, 10, 11):
            start, end = _month(2026, month)
            ledger.charge("regulator", 1.0, start=start, end=end, hidden={"d/c"})


def test_ledger_refuses_update_and_delete(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    _three_charges(path)
    db = sqlite3.connect(path)
    for statement in ("UPDATE entry SET epsilon = 0", "DELETE FROM entry WHERE seq = 3"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(statement)
    db.close()


def _tamper(path: Path, statement: str) -> None:
    """What someone with the file and the sqlite3 shell could do: drop the guards."""
    db = sqlite3.connect(path)
    db.executescript("DROP TRIGGER entry_no_update; DROP TRIGGER entry_no_delete;"
                     f" {statement};")
    db.close()


def test_ledger_verify_finds_an_edited_entry(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    _three_charges(path)
    _tamper(path, "UPDATE entry SET epsilon = 0.1 WHERE seq = 1")
    with Ledger(path, {"regulator": 5.0}) as ledger:
        problems = ledger.verify()
    assert [p.seq for p in problems] == [1] and "edited" in problems[0].detail


def test_ledger_verify_finds_a_removed_entry(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    _three_charges(path)
    _tamper(path, "DELETE FROM entry WHERE seq = 2")
    with Ledger(path, {"regulator": 5.0}) as ledger:
        assert {p.seq for p in ledger.verify()} == {3}


def test_ledger_truncated_at_the_end_is_caught_by_the_store_record(tmp_path: Path) -> None:
    """Dropping the last charges leaves a valid chain; the store's privacy_budget points,
    written after each release, still know them."""
    path = tmp_path / "ledger.sqlite"
    _three_charges(path)
    recorded = recorded_spending([
        Sample("privacy_budget", {"recipient": "regulator"},
               {"epsilon_spent": float(n), "epsilon_limit": 5.0, "releases": n}, n)
        for n in (1, 2, 3)
    ])
    with Ledger(path, {"regulator": 5.0}) as ledger:
        assert store_mismatches(ledger, recorded, "the store") == []
    _tamper(path, "DELETE FROM entry WHERE seq = (SELECT MAX(seq) FROM entry)")
    with Ledger(path, {"regulator": 5.0}) as ledger:
        assert ledger.verify() == []
        (problem,) = store_mismatches(ledger, recorded, "the store (SQLite x)")
    assert "the store (SQLite x) records epsilon 3 in 3 releases" in problem
    assert f"the ledger {path} knows 2 in 2" in problem


def test_ledger_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    _three_charges(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(PrivacyError, match="unreadable"):
        Ledger(path, {"regulator": 5.0}).verify()


def test_ledger_suppression_memory_is_chained(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    _three_charges(path)
    with Ledger(path, {"regulator": 5.0}) as ledger:
        assert ledger.hidden_areas() == {"d/c"}
        assert len(ledger.charges()) == 3  # "d/c" recorded once
        assert ledger.verify() == []


def test_ledger_path_resolves_against_the_settings_file(tmp_path: Path) -> None:
    settings = PrivacySettings()
    config = tmp_path / "etc" / "softplace.yaml"
    assert settings.ledger_file(config) == tmp_path / "etc" / ".softplace/privacy-ledger.sqlite"
    absolute = PrivacySettings(ledger_path=tmp_path / "l.sqlite")
    assert absolute.ledger_file(config) == tmp_path / "l.sqlite"
