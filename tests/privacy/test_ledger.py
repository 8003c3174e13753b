from __future__ import annotations

import threading
from pathlib import Path

import pytest

from privacy.ledger import Ledger
from softplace.errors import PrivacyError


def test_ledger_refuses_over_budget(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite", {"regulator": 2.0}) as ledger:
        ledger.charge("regulator", 1.0)
        ledger.charge("regulator", 1.0)
        with pytest.raises(PrivacyError, match="refused"):
            ledger.charge("regulator", 0.1)
        assert ledger.state("regulator").spent == pytest.approx(2.0)
        assert ledger.state("regulator").releases == 2


def test_ledger_survives_restart(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with Ledger(path, {"regulator": 3.0}) as ledger:
        ledger.charge("regulator", 2.5, release_id="r1")
    with Ledger(path, {"regulator": 3.0}) as reopened:
        assert reopened.state("regulator").spent == pytest.approx(2.5)
        with pytest.raises(PrivacyError):
            reopened.charge("regulator", 1.0)
        assert [c.release_id for c in reopened.charges()] == ["r1"]


def test_ledger_unknown_recipient_has_no_budget(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite", {"regulator": 3.0}) as ledger, \
            pytest.raises(PrivacyError, match="no privacy budget"):
        ledger.charge("press", 0.1)


def test_ledger_budgets_are_per_recipient(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.sqlite", {"a": 1.0, "b": 1.0}) as ledger:
        ledger.charge("a", 1.0)
        ledger.charge("b", 1.0)
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
                    ledger.charge("regulator", 1.0)
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
