"""The following detector's own state: late readings counted for real (a reading stored
behind its position), and the ``detector_status`` series the detector-lag alert reads."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from dashboards import alerts
from detector.service import LATE_RECOUNT_S, DetectorService
from detector.settings import DetectorSettings
from softplace.storage.base import Store
from softplace.storage.influx import InfluxStore
from tests.dashboards.test_alert_rules import _firing
from tests.detector.helpers import HOUR, MIN, count_samples, registry, scratch_store, site

POLL_S = 10


def _following(store: Store, tmp_path: Path, now: list[float]) -> DetectorService:
    """Three hours of minutely readings up to ``now``; a service caught up with them."""
    start = int(now[0] * 1000) - 3 * HOUR
    start -= start % MIN
    store.write(count_samples(site(), "meet", [(t, (t // (7 * MIN)) % 2)
                                               for t in range(start, int(now[0] * 1000), MIN)]))
    service = DetectorService(store, registry(), DetectorSettings(
        checkpoint_path=tmp_path / "cp.json"), sites=["s1"], clock=lambda: now[0],
        since_ms=start)
    service.step()
    return service


def _late_by_steps(store: Store, tmp_path: Path) -> None:
    now = [time.time()]
    service = _following(store, tmp_path, now)
    position = service.detectors["s1"].watermark_ms
    for _ in range(3):  # readings in order, arriving on time: nothing late
        now[0] += POLL_S
        store.write(count_samples(site(), "meet", [(int(now[0] * 1000) - 1000, 1)]))
        service.step()
    assert service.late_readings == 0
    # two readings stored behind the position (a gateway's outbox drained after an outage)
    store.write(count_samples(site(), "meet", [(position - 20 * MIN + 7, 3),
                                               (position - 5 * MIN + 7, 0)]))
    now[0] += POLL_S
    service.step()
    assert service.late_readings == 2
    now[0] += POLL_S
    service.step()
    assert service.late_readings == 2  # counted once
    # too far behind to be re-counted: not counted (the module says so)
    store.write(count_samples(site(), "meet", [(
        service.detectors["s1"].watermark_ms - int(LATE_RECOUNT_S * 1000) - 10 * MIN + 7, 2)]))
    now[0] += POLL_S
    service.step()
    assert service.late_readings == 2
    (status,) = service.status_samples()
    assert status.series == "detector_status" and status.tags == {"site": "s1"}
    assert status.fields["late_readings"] == 2
    assert status.fields["lag_s"] == service.lag_s()
    assert status.fields["checkpoint_age_s"] == 0


def test_status_late_readings_counted_on_sqlite(tmp_path: Path) -> None:
    _late_by_steps(scratch_store(), tmp_path)


@pytest.mark.services
def test_status_late_readings_counted_on_influxd(influx_store: InfluxStore,
                                                 tmp_path: Path) -> None:
    _late_by_steps(influx_store, tmp_path)


@pytest.mark.services
def test_status_run_writes_what_the_lag_rule_reads(influx_store: InfluxStore,
                                                   tmp_path: Path) -> None:
    now = [time.time()]
    service = _following(influx_store, tmp_path, now)
    rule = next(a for a in alerts.ALERTS if a.uid == "softplace-detector-lag")

    def sleep(seconds: float) -> None:  # the clock stays on influxd's now(), which the rule uses
        now[0] = time.time()

    service.run(sleep=sleep, max_steps=3)
    stored = influx_store.query("detector_status", 0, int(now[0] * 1000) + 1)
    assert len(stored) == 3 and {s.tags["site"] for s in stored} == {"s1"}
    assert _firing(influx_store, rule, int(now[0] * 1000)) == set()
    # a detector started from a checkpoint two hours old, still catching up, says so
    behind = DetectorService(influx_store, registry(), DetectorSettings(
        checkpoint_path=tmp_path / "old.json"), sites=["s1"], clock=lambda: now[0],
        since_ms=int(now[0] * 1000) - 2 * HOUR)
    now[0] = time.time()  # its status is the site's last one (or replaces it)
    behind.write_status()
    assert _firing(influx_store, rule, int(now[0] * 1000)) == {("s1",)}
