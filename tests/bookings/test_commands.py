"""``softplace bookings ...`` and the requesters' retention in ``softplace privacy audit``,
through the assembled command line on a real bookings file."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from click.testing import CliRunner

from bookings.core import BookingRequest, Requester, Window
from bookings.store import Booking, BookingStore
from softplace.storage.sqlite import SqliteStore
from softplace_cli import cli

SITE = "branch-lyon-part-dieu"
HOUR = dt.timedelta(hours=1)


def _ask(store: BookingStore, start: dt.datetime, name: str = "Ada") -> Booking:
    request = BookingRequest(
        site=SITE, room="meeting-a", start=start, end=start + HOUR, attendance=3,
        requester=Requester(name=name, email="ada@example.org", purpose="meeting"),
    )

    def anything(_accepted: list[Window]) -> None:
        return None

    return store.request(request, round(time.time() * 1000), anything)


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "softplace.yaml"
    config.write_text(f"storage:\n  backend: sqlite\n  sqlite_path: {tmp_path / 's.sqlite'}\n"
                      f"privacy:\n  ledger_path: {tmp_path / 'ledger.sqlite'}\n",
                      encoding="utf-8")
    return config


def test_bookings_commands_list_accept_and_refuse_a_double_booking(tmp_path: Path) -> None:
    config = _config(tmp_path)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
    with BookingStore(tmp_path / "bookings.sqlite") as store:
        first, second = _ask(store, start), _ask(store, start + HOUR / 2, "Bob")
        third = _ask(store, start + 3 * HOUR, "Cy")
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["--config", str(config), "bookings", *args])
        return result.exit_code, result.output

    assert run("list", "--status", "declined") == (0, "no declined bookings\n")
    code, listed = run("list", "--status", "pending")
    assert code == 0 and len(listed.splitlines()) == 3
    assert run("accept", first.id)[0] == 0
    code, output = run("accept", second.id)
    assert code == 1 and "overlaps" in output
    assert run("decline", third.id)[0] == 0
    assert run("accept", "no-such-id")[0] == 2
    code, listed = run("list")
    statuses = {line.split("\t")[0]: line.split("\t")[1] for line in listed.splitlines()}
    assert statuses == {first.id: "accepted", second.id: "pending", third.id: "declined"}


def test_bookings_requesters_past_retention_fail_the_privacy_audit_until_purged(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path)
    SqliteStore(tmp_path / "s.sqlite").close()  # an empty store: only the bookings matter
    with BookingStore(tmp_path / "bookings.sqlite") as store:
        _ask(store, dt.datetime.now(dt.UTC) - dt.timedelta(days=40))
        _ask(store, dt.datetime.now(dt.UTC) - dt.timedelta(days=2), "Recent")
    runner = CliRunner()
    audit = runner.invoke(cli, ["--config", str(config), "privacy", "audit", "--no-record"])
    assert audit.exit_code == 1
    assert "booking requesters" in audit.output
    purged = runner.invoke(cli, ["--config", str(config), "bookings", "purge"])
    assert "1 requester record(s) deleted" in purged.output
    audit = runner.invoke(cli, ["--config", str(config), "privacy", "audit", "--no-record"])
    assert audit.exit_code == 0, audit.output
    with BookingStore(tmp_path / "bookings.sqlite") as store:
        assert [b.requester.name for b in store.all() if b.requester] == ["Recent"]
