"""No command destroys data it did not create, and no read-only command creates a store."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from devkit.demo import DemoStoreError, claim_store, demo_mark
from softplace.errors import StorageError
from softplace.storage.base import Sample
from softplace.storage.sqlite import SqliteStore
from tests.honest_cli import softplace, store_env


def _store_with_a_point(path: Path) -> None:
    store = SqliteStore(path)
    store.write([Sample("room_count", {"site": "s", "room": "r"}, {"count": 1},
                        int(time.time() * 1000))])
    store.close()


def test_demo_claim_refuses_a_store_it_did_not_create(tmp_path: Path) -> None:
    path = tmp_path / "softplace.sqlite"
    _store_with_a_point(path)
    with pytest.raises(DemoStoreError, match="--overwrite"):
        claim_store(path, overwrite=False)
    assert path.stat().st_size > 0 and not demo_mark(path).exists()


def test_demo_claim_keeps_files_that_share_the_store_name_prefix(tmp_path: Path) -> None:
    path = tmp_path / "softplace.sqlite"
    backup = tmp_path / "softplace.sqlite.backup-2026-11"
    backup.write_bytes(b"precious")
    claim_store(path, overwrite=False)  # no store yet: the demo's to create
    _store_with_a_point(path)
    claim_store(path, overwrite=False)  # the demo's own store: replaced
    assert not path.exists() and demo_mark(path).exists()
    assert backup.read_bytes() == b"precious"


def test_demo_claim_with_overwrite_replaces_a_foreign_store(tmp_path: Path) -> None:
    path = tmp_path / "softplace.sqlite"
    _store_with_a_point(path)
    claim_store(path, overwrite=True)
    assert not path.exists()


def test_demo_command_refuses_a_foreign_store_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _store_with_a_point(tmp_path / "store.sqlite")
    outcome = softplace(capsys, store_env(tmp_path), "demo", "--days", "1")
    assert outcome.code == 2
    assert "did not create; pass --overwrite" in outcome.err
    assert len(SqliteStore(tmp_path / "store.sqlite").query("room_count", 0, 1 << 60)) == 1


SITE = ("--site", "branch-lyon-part-dieu")
WEEK = ("--from", "2026-11-02", "--to", "2026-11-08")


@pytest.mark.parametrize("args", [
    ("report", *SITE, *WEEK),
    ("slots", *SITE, *WEEK, "--out", "feeds"),
    ("intervals", *SITE, *WEEK),
    ("detect", *WEEK),
    ("privacy", "audit"),
])
def test_read_only_commands_refuse_a_missing_store_and_create_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...]
) -> None:
    outcome = softplace(capsys, store_env(tmp_path), *args)
    assert outcome.code == 2, outcome
    assert f"{tmp_path / 'store.sqlite'}: no store here" in outcome.err
    assert not (tmp_path / "store.sqlite").exists()


def test_store_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="does not exist"):
        SqliteStore(tmp_path / "typo" / "store.sqlite")
    with pytest.raises(StorageError, match="no store here"):
        SqliteStore(tmp_path / "typo" / "store.sqlite", create=False)
    assert not (tmp_path / "typo").exists()
