"""``softplace bookings ...`` and the requesters' retention in ``softplace privacy audit``,
through the assembled command line on a real bookings file."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from click.testing import CliRunner

from bookings.core import BookingRequest, Requester, Window
from bookings.store import Booking, BookingStore
from softplace.registry import load_registry
from softplace.schema import RoomCountField, SeriesName
from softplace.storage.base import Sample
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
    assert "booking requesters: kept 30 days after the booking ends" in " ".join(
        audit.output.split())
    purged = runner.invoke(cli, ["--config", str(config), "bookings", "purge"])
    assert "1 requester record(s) deleted" in purged.output
    audit = runner.invoke(cli, ["--config", str(config), "privacy", "audit", "--no-record"])
    assert audit.exit_code == 0, audit.output
    today = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    flat = " ".join(audit.output.split())
    assert "booking requesters: deleted 1 requester record(s) of bookings ended before" in flat
    assert f"at {today}" in flat
    report = tmp_path / "report.md"
    runner.invoke(cli, ["--config", str(config), "privacy", "report", "--out", str(report)])
    text = report.read_text(encoding="utf-8")
    assert "| booking requesters | Requesters' identity and contact" in text
    assert "30 days after the booking ends" in text
    assert f"| booking requesters | {today}" in text
    # a second purge deletes nothing and logs nothing
    runner.invoke(cli, ["--config", str(config), "bookings", "purge"])
    with BookingStore(tmp_path / "bookings.sqlite") as store:
        assert [p.requesters for p in store.purges()] == [1]
    with BookingStore(tmp_path / "bookings.sqlite") as store:
        assert [b.requester.name for b in store.all() if b.requester] == ["Recent"]


def test_bookings_reconcile_writes_outcomes_without_the_requester(tmp_path: Path) -> None:
    config = _config(tmp_path)
    store = SqliteStore(tmp_path / "s.sqlite")
    site = load_registry().site(SITE)
    past = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) - dt.timedelta(days=1)
    lo = round(past.timestamp() * 1000)
    store.write([Sample(SeriesName.ROOM_COUNT, site.room("meeting-a").tags,
                        {RoomCountField.COUNT: 0, RoomCountField.SOURCES: 1}, t)
                 for t in range(lo - 600_000, lo + 3_600_000, 300_000)])
    store.close()
    future = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
    with BookingStore(tmp_path / "bookings.sqlite") as books:
        ghost, ahead, pending = _ask(books, past), _ask(books, future, "Bo"), _ask(
            books, future + 2 * HOUR, "Cy")
        for booking in (ghost, ahead):
            books.decide(booking.id, True, round(time.time() * 1000))
    result = CliRunner().invoke(cli, ["--config", str(config), "bookings", "reconcile"])
    assert result.exit_code == 0 and "2 booking(s) written" in result.output, result.output
    store = SqliteStore(tmp_path / "s.sqlite")
    try:
        points = {p.time_ms: p for p in store.query(SeriesName.BOOKING, 0, 2**62)}
    finally:
        store.close()
    assert set(points) == {ghost.window.start_ms, ahead.window.start_ms}  # not the pending one
    assert points[ghost.window.start_ms].fields["ghost"] == 1
    assert points[ghost.window.start_ms].fields["checked"] == 1
    assert points[ahead.window.start_ms].fields["checked"] == 0
    assert points[ahead.window.start_ms].fields["booked_h"] == 1.0
    for point in points.values():
        assert "Ada" not in repr(point) and "ada@example.org" not in repr(point)
    assert pending.id not in repr(points)
