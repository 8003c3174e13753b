"""``run_sites_parallel`` (``softplace detect --workers``): sites in processes of their own
store exactly what one process storing them one after the other does."""

from __future__ import annotations

import datetime as dt
import functools
import shutil
from pathlib import Path

from click.testing import CliRunner

from detector.batch import RESULT_SERIES, run_site_batch, run_sites_parallel
from softplace.storage.sqlite import SqliteStore
from softplace_cli import cli
from tests.detector.helpers import REGISTRY_YAML, at, busy_weekdays, count_samples, registry, site

MON = dt.date(2024, 3, 4)
BUSY = {"meet": ("09:00", "10:00"), "office": ("13:00", "17:00")}


def _stored(path: Path) -> list[tuple[str, int, str, str]]:
    store = SqliteStore(path)
    try:
        return sorted((name, s.time_ms, repr(sorted(s.tags.items())),
                       repr(sorted(s.fields.items())))
                      for name in RESULT_SERIES
                      for s in store.query(name, 0, at(MON + dt.timedelta(days=30))))
    finally:
        store.close()


def _history(path: Path) -> None:
    store = busy_weekdays(SqliteStore(path), MON, BUSY)
    always = site("always")
    for placed in always.placed_rooms():
        store.write(count_samples(always, placed.room.id, [
            (t, 1) for t in range(at(MON), at(MON + dt.timedelta(days=5)), 5 * 60_000)]))
    store.close()


def test_run_sites_parallel_stores_what_one_process_does(tmp_path: Path) -> None:
    parallel, serial = tmp_path / "parallel.sqlite", tmp_path / "serial.sqlite"
    _history(parallel)
    shutil.copy(parallel, serial)
    sites = registry().sites
    end = MON + dt.timedelta(days=5)
    found = {s["site"]: s for s in run_sites_parallel(
        functools.partial(SqliteStore, parallel), sites, MON, end, workers=2)}
    store = SqliteStore(serial)
    expected = {s.id: run_site_batch(store, s, MON, end) for s in sites}
    store.close()
    assert set(found) == {s.id for s in sites}
    for site_id, result in expected.items():
        assert found[site_id]["readings"] == result.readings > 0
        assert found[site_id]["written"] == result.written > 0
    assert found["s1"]["breaches"] == len(expected["s1"].results.breaches) > 0
    assert _stored(parallel) == _stored(serial)


def test_detect_workers_prints_each_site(tmp_path: Path) -> None:
    (tmp_path / "registry.yaml").write_text(REGISTRY_YAML)
    _history(tmp_path / "store.sqlite")
    runner = CliRunner(env={
        "SOFTPLACE_REGISTRY": str(tmp_path / "registry.yaml"),
        "SOFTPLACE_STORAGE__BACKEND": "sqlite",
        "SOFTPLACE_STORAGE__SQLITE_PATH": str(tmp_path / "store.sqlite"),
        "SOFTPLACE_RETENTION__RAW_DAYS": "100000",
        "SOFTPLACE_RETENTION__DERIVED_DAYS": "100000",
    })
    result = runner.invoke(cli, ["detect", "--from", "2024-03-04", "--to", "2024-03-08",
                                 "--workers", "2", "--format", "json"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert sorted(line.split('"site": "')[1].split('"')[0] for line in lines) == ["always", "s1"]
