"""Retention runs inside the long-running service (issue 13: a 40-day-old point survived a
running ``softplace ingest`` and failed the audit)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from devkit.services import Mosquitto
from ingest.service import Ingest
from ingest.settings import IngestSettings
from privacy.audit import run_audit
from softplace.registry import load_registry
from softplace.retention import RetentionSchedule
from softplace.settings import RetentionSettings
from softplace.storage.base import RetentionPolicy, Sample, Store
from softplace.storage.influx import InfluxStore
from softplace.storage.sqlite import SqliteStore

DAY_MS = 86_400_000
NOW_S = 1_795_000_000.0  # the service's injected clock
POLICIES = RetentionSettings().policies()


def _old_point(store: Store, days: int) -> None:
    store.write([Sample("room_count", {"site": "s", "room": "r"}, {"count": 1},
                        int(NOW_S * 1000) - days * DAY_MS)])


def _wait(condition: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_retention_runs_inside_a_running_ingest(
    mosquitto: Mosquitto, sqlite_store: SqliteStore,
) -> None:
    clock = [NOW_S]
    schedule = RetentionSchedule(sqlite_store, POLICIES, every_s=0.05, clock=lambda: clock[0])
    service = Ingest(load_registry(), sqlite_store, mosquitto.settings,
                     IngestSettings(client_id="retention-test", shared_group=None),
                     retention=schedule)
    _old_point(sqlite_store, 29)  # within the raw family's 30 days
    _old_point(sqlite_store, 40)
    assert not run_audit(sqlite_store, POLICIES, int(NOW_S * 1000)).ok
    service.start()
    try:
        assert _wait(lambda: schedule.runs >= 2)
        points = sqlite_store.query("room_count", 0, 2**62)
        assert [round((NOW_S * 1000 - p.time_ms) / DAY_MS) for p in points] == [29]
        assert run_audit(sqlite_store, POLICIES, int(NOW_S * 1000)).ok
        # time passes inside the running service: the 29-day-old point goes too
        clock[0] += 2 * 86_400
        assert _wait(lambda: not sqlite_store.query("room_count", 0, 2**62))
    finally:
        service.stop()
    assert not schedule._thread.is_alive()


def test_retention_schedule_survives_a_failing_store(tmp_path: Path) -> None:
    class Failing(SqliteStore):
        calls = 0

        def apply_retention(self, policies: Sequence[RetentionPolicy],
                            now_ms: int | None = None) -> None:
            Failing.calls += 1
            raise OSError("disk gone")

    store = Failing(tmp_path / "s.sqlite")
    schedule = RetentionSchedule(store, POLICIES, every_s=0.01)
    schedule.start()
    try:
        assert _wait(lambda: Failing.calls >= 3, 5)
    finally:
        schedule.stop()
        store.close()
    assert schedule.runs == 0


def test_retention_schedule_restores_an_influx_policy_and_the_audit_flags_old_points(
    influx_store: InfluxStore,
) -> None:
    """InfluxDB drops expired shards itself; the schedule puts back a policy someone
    lengthened, and the audit fails on an out-of-policy point until it is gone."""
    influx_store.influxql(  # what an operator's manual change looks like
        f'ALTER RETENTION POLICY "raw" ON "{influx_store.settings.database}" DURATION 400d',
        method="POST",
    )
    assert influx_store.retention_policies()["raw"] == "9600h0m0s"
    now_ms = int(time.time() * 1000)
    influx_store.write([Sample("room_count", {"site": "s", "room": "r"}, {"count": 1},
                               now_ms - 40 * DAY_MS)])
    assert not run_audit(influx_store, POLICIES, now_ms).ok
    RetentionSchedule(influx_store, POLICIES).run_once()
    assert influx_store.retention_policies()["raw"] == "720h0m0s"
