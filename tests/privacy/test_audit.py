from __future__ import annotations

import time

import httpx
import pytest

from privacy.audit import (
    audit_samples,
    audit_snapshot,
    check_schema,
    default_grace_ms,
    run_audit,
)
from softplace.schema import SERIES, Family, Series
from softplace.settings import RetentionSettings
from softplace.storage.base import Sample
from softplace.storage.influx import InfluxStore
from softplace.storage.sqlite import SqliteStore
from softplace.timeutil import MS_PER_DAY as DAY_MS

NOW = 1_750_000_000_000
POLICIES = RetentionSettings().policies()  # raw 30 d, derived 395 d, aggregates forever


def _count(age_days: float) -> Sample:
    return Sample("room_count", {"site": "s", "room": "r"}, {"count": 1, "sources": 1},
                  int(NOW - age_days * DAY_MS))


def test_audit_passes_points_within_policy() -> None:
    result = audit_snapshot(stored={"room_count": {"count"}},
                            oldest={"room_count": NOW - 29 * DAY_MS},
                            policies=POLICIES, now_ms=NOW)
    assert result.ok


def test_audit_catches_point_past_retention() -> None:
    result = audit_snapshot(stored={"room_count": {"count"}},
                            oldest={"room_count": NOW - 40 * DAY_MS},
                            policies=POLICIES, now_ms=NOW)
    assert [f.check for f in result.findings] == ["retention"]
    assert "30-day raw policy" in result.findings[0].detail


def test_audit_grace_covers_shard_expiry_only() -> None:
    inside = NOW - 30 * DAY_MS - default_grace_ms(30) + 1
    outside = NOW - 30 * DAY_MS - default_grace_ms(30) - 1
    for oldest, ok in ((inside, True), (outside, False)):
        result = audit_snapshot(stored={"room_count": {"count"}}, oldest={"room_count": oldest},
                                policies=POLICIES, now_ms=NOW)
        assert result.ok is ok


def test_audit_forever_policy_never_breached() -> None:
    result = audit_snapshot(stored={"privacy_budget": {"epsilon_spent"}},
                            oldest={"privacy_budget": 0}, policies=POLICIES, now_ms=NOW)
    assert result.ok


def test_audit_catches_unknown_series_field_and_tag() -> None:
    result = audit_snapshot(
        stored={"face_images": {"jpeg"}, "room_count": {"count", "mac"}},
        oldest={"face_images": NOW, "room_count": NOW}, policies=POLICIES, now_ms=NOW,
        tags={"room_count": {"site", "room", "device"}},
    )
    assert {f.check for f in result.findings} == {"unknown_series", "unknown_field", "unknown_tag"}
    samples = audit_samples(result)
    assert {s.tags["check"] for s in samples if s.fields["ok"] == 0} == {
        "unknown_series", "unknown_field", "unknown_tag"}


def test_audit_schema_of_the_code_is_minimal() -> None:
    assert check_schema() == []


def test_audit_schema_check_catches_identifying_fields() -> None:
    bad = dict(SERIES)
    bad["visits"] = Series("visits", Family.RAW, ("site", "device"),
                           {"count": "int", "visitor_name": "str", "mac_address": "str"},
                           "bad", ("operator",), "bad")
    findings = check_schema(bad)
    details = " ".join(f.detail for f in findings)
    assert "visitor_name" in details and "mac_address" in details
    assert "device identity stored next to a people count" in details


def test_audit_run_on_sqlite_store_with_a_smuggled_field(sqlite_store: SqliteStore) -> None:
    sqlite_store.write([_count(1), _count(45)])
    # what Sample refuses, written behind its back, as a careless script could
    sqlite_store._db.execute(
        "INSERT INTO points (series, tag_key, time_ms, tags, fields) VALUES "
        "('room_count', '{}', ?, '{}', '{\"image\": \"...\"}')", (NOW - DAY_MS,))
    result = run_audit(sqlite_store, POLICIES, NOW)
    assert {f.check for f in result.findings} == {"retention", "unknown_field"}


def test_audit_run_on_sqlite_store_after_policy_shortened(sqlite_store: SqliteStore) -> None:
    now = int(time.time() * 1000)
    sqlite_store.write([Sample("room_count", {"site": "s", "room": "r"}, {"count": 0},
                               now - 45 * DAY_MS)])
    assert not run_audit(sqlite_store, POLICIES, now).ok
    sqlite_store.apply_retention(POLICIES)  # enforcement by deletion
    assert run_audit(sqlite_store, POLICIES, now).ok


@pytest.mark.services
def test_audit_catches_out_of_policy_point_in_real_influxd(influx_store: InfluxStore) -> None:
    now = int(time.time() * 1000)
    # a year-long raw policy, a point 60 days old, then the policy shortened to 30 days:
    # InfluxDB only drops the shard later, so the point is really there, out of policy.
    influx_store.apply_retention(RetentionSettings(raw_days=365).policies())
    influx_store.write([Sample("room_count", {"site": "s", "room": "r"}, {"count": 1},
                               now - 60 * DAY_MS),
                        Sample("room_count", {"site": "s", "room": "r"}, {"count": 2}, now)])
    influx_store.apply_retention(POLICIES)
    result = run_audit(influx_store, POLICIES, now)
    # with the mark the write left on the site-hour (room_count_segment), just as old
    assert sorted((f.check, f.series) for f in result.findings) == [
        ("retention", "room_count"), ("retention", "room_count_segment")]


@pytest.mark.services
def test_audit_catches_forbidden_field_and_series_in_real_influxd(
    influx_store: InfluxStore,
) -> None:
    now = int(time.time() * 1000)
    settings = influx_store.settings
    lines = (f'room_count,site=s,room=r count=1i,mac="aa:bb:cc:dd:ee:ff" {now}\n'
             f'face_images,site=s jpeg="..." {now}')
    response = httpx.post(f"{settings.url}/write",
                          params={"db": settings.database, "rp": "raw", "precision": "ms"},
                          content=lines.encode())
    assert response.status_code == 204, response.text
    result = run_audit(influx_store, POLICIES, now)
    found = {(f.check, f.series) for f in result.findings}
    assert ("unknown_field", "room_count") in found
    assert ("unknown_series", "face_images") in found


def test_audit_covers_the_booking_series() -> None:
    """Bookings (room and times, never who asked) pass the minimisation rules and follow
    the derived retention like the detector's results."""
    assert [f for f in check_schema() if f.series == "booking"] == []
    assert not {"name", "email", "purpose", "organisation"} & set(SERIES["booking"].fields)
    result = audit_snapshot(stored={"booking": {"end_ms", "ghost"}},
                            oldest={"booking": NOW - 420 * DAY_MS}, policies=POLICIES,
                            now_ms=NOW)
    assert [(f.check, f.series) for f in result.findings] == [("retention", "booking")]
    smuggled = audit_snapshot(stored={"booking": {"end_ms", "email"}},
                              oldest={"booking": NOW}, policies=POLICIES, now_ms=NOW)
    assert [(f.check, f.series) for f in smuggled.findings] == [("unknown_field", "booking")]
