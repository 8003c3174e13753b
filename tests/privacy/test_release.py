from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from privacy.export import COLUMNS, DataPackage, export_release
from privacy.ledger import Ledger
from privacy.release import Cell, Release, build_release, to_samples
from privacy.settings import PrivacySettings
from privacy.suppression import Suppression
from softplace.errors import PrivacyError
from tests.privacy.helpers import make_registry, week_of_data

MONDAY = dt.date(2025, 3, 3)
REGISTRY = make_registry({"d1": [6, 2, 5, 7], "d2": [3]})
ROOM_IDS = {p.room.id for p in REGISTRY.placed_rooms()}


def _release(tmp_path: Path, **overrides: object) -> Release:
    settings = PrivacySettings(**overrides)  # type: ignore[arg-type]
    measures, breaches = week_of_data(REGISTRY, MONDAY, days=14)
    with Ledger(tmp_path / "ledger.sqlite", settings.budgets) as ledger:
        return build_release(
            REGISTRY, settings, ledger, recipient="regulator", start=MONDAY,
            end=MONDAY + dt.timedelta(days=14), measures=measures, breaches=breaches,
            now_ms=1_741_000_000_000,
        )


def test_release_holds_no_room_or_device_level_row(tmp_path: Path) -> None:
    release = _release(tmp_path)
    assert {c.level for c in release.cells} <= {"building", "district"}
    assert not {c.area for c in release.cells} & ROOM_IDS
    assert all(c.rooms is not None and c.rooms >= release.k
               for c in release.cells if c.status is Suppression.RELEASED)
    dumped = release.model_dump_json()
    assert "room" not in {k for c in json.loads(dumped)["cells"] for k in c} - {"rooms"}
    assert "dev" not in dumped.replace("deviation", "")


def test_release_model_refuses_room_level_and_small_cells() -> None:
    with pytest.raises(ValidationError):
        Cell(level="room", area="office-1", period="2025-03-03",  # type: ignore[arg-type]
             status=Suppression.RELEASED)
    with pytest.raises(ValidationError):
        Cell(level="building", area="s/b", period="2025-03-03", status=Suppression.PRIMARY,
             rooms=2, idle_m2h=3.0)
    with pytest.raises(ValidationError):
        Cell(level="building", area="s/b", period="p", status=Suppression.RELEASED, rooms=1,
             available_m2h=1, idle_m2h=1, breaches=0, device="x")  # type: ignore[call-arg]


def test_release_states_epsilon_k_mechanism_and_error(tmp_path: Path) -> None:
    release = _release(tmp_path)
    assert release.epsilon == pytest.approx(1.0)
    assert release.k == 5
    assert "discrete Laplace" in release.mechanism
    assert "OS entropy" in release.rng
    assert {q.quantity for q in release.noise} == {
        "available_m2h", "idle_m2h", "used_m2h", "breaches"}
    for q in release.noise:
        assert q.bound > q.std > 0 and q.epsilon == pytest.approx(0.25)
    assert release.period in {"week", "month"}  # coarsened: error too large at half-days


def test_release_suppressed_cells_carry_no_figures(tmp_path: Path) -> None:
    release = _release(tmp_path)
    hidden = [c for c in release.cells if c.status is not Suppression.RELEASED]
    assert {c.area for c in hidden} >= {"d1-s1/b1", "d1-s2/b2", "d2", "d2-s0/b0"}
    assert all(c.idle_m2h is None and c.rooms is None for c in hidden)


def test_release_refused_over_budget_charges_nothing(tmp_path: Path) -> None:
    _release(tmp_path, budgets={"regulator": 1.5})
    with pytest.raises(PrivacyError, match="refused"):
        _release(tmp_path, budgets={"regulator": 1.5})
    with Ledger(tmp_path / "ledger.sqlite", {"regulator": 1.5}) as ledger:
        assert ledger.state("regulator").releases == 1


def test_release_samples_are_valid_aggregate_points(tmp_path: Path) -> None:
    release = _release(tmp_path)
    samples = to_samples(release)
    assert len(samples) == len(release.cells)
    assert {s.series for s in samples} == {"regulator_aggregate"}
    assert all(set(s.tags) == {"recipient", "level", "area", "period"} for s in samples)


def test_release_export_csv_matches_datapackage(tmp_path: Path) -> None:
    import csv
    import hashlib

    release = _release(tmp_path, period="day", epsilon_per_release=10.0, max_relative_error=5)
    csv_path, package_path = export_release(release, tmp_path / "out")
    package = DataPackage.model_validate_json(package_path.read_text())
    resource = package.resources[0]
    assert (tmp_path / "out" / resource.path) == csv_path
    data = csv_path.read_bytes()
    assert resource.hash == f"sha256:{hashlib.sha256(data).hexdigest()}"
    assert resource.bytes == len(data)
    with csv_path.open(encoding="utf-8", newline="") as handle:  # closed: no ResourceWarning
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == [f.name for f in resource.schema_.fields] == list(COLUMNS)
    keys = [tuple(r[k] for k in resource.schema_.primaryKey) for r in rows]
    assert len(keys) == len(set(keys)) == len(release.cells)
    types = {f.name: f.type for f in resource.schema_.fields}
    for row in rows:
        for name, value in row.items():
            if value == "":
                continue
            if types[name] == "integer":
                int(value)
            elif types[name] == "number":
                float(value)
        assert row["level"] in {"building", "district"}
    descriptor = json.loads(package_path.read_text())
    assert descriptor["profile"] == "tabular-data-package"
    assert descriptor["softplace:privacy"]["epsilon"] == pytest.approx(release.epsilon)
    assert descriptor["softplace:privacy"]["k"] == 5
    assert "cells" not in descriptor["softplace:privacy"]
