"""The demo is the main job: the whole chain on the embedded broker, into SQLite, then the
detector, with what it stores fitting what the privacy release reads."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from rich.console import Console

from devkit.demo import full_days, run_demo
from privacy.settings import PrivacySettings
from softplace.registry import load_registry
from softplace.storage.sqlite import SqliteStore

FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01

pytestmark = pytest.mark.slow  # the whole chain, two simulated days


def test_demo_plays_two_days_through_the_whole_chain(tmp_path: Path) -> None:
    registry = load_registry()
    store_path = tmp_path / "softplace.sqlite"
    now = dt.datetime.now(dt.UTC)
    friday = now - dt.timedelta(days=(now.weekday() - 4) % 7)
    end = friday.replace(hour=18, minute=0, second=0, microsecond=0)  # a working week's end
    if end > now:
        end -= dt.timedelta(days=7)
    result = run_demo(registry, store_path, Console(file=None, quiet=True), days=2,
                      step_s=600, heartbeat_s=1800, end=end)

    assert result.rejected == 1  # the one malformed message sent on purpose
    assert result.accepted == result.published - 1
    watched = {(p.site.id, p.room.id) for p in registry.placed_rooms() if p.room.devices}
    assert set(result.per_room) == watched
    assert all(n >= 2 * 24 * 2 for n in result.per_room.values())  # heartbeat every 30 min

    store = SqliteStore(store_path)
    try:
        first, last = full_days(result, registry.sites[0].tz)
        assert first == last == (end - dt.timedelta(days=1)).date()  # Thursday
        measures = store.query("room_measure", 0, int(end.timestamp() * 1000))
        assert {s.tags["room"] for s in measures} >= {room for _, room in watched}
        bands = {s.tags["band"] for s in measures}
        assert set(PrivacySettings().half_day_bands) <= bands  # what the release reads
        rates = [float(s.fields["utilisation_rate"]) for s in measures
                 if "utilisation_rate" in s.fields]
        assert rates and all(0.0 <= r <= 1.0 for r in rates) and max(rates) > 0
        # health and dead letters carry the gateway's clock: now, not the simulated week
        assert store.query("sensor_health", 0, FAR_FUTURE_MS)
        (letter,) = store.query("deadletter", 0, FAR_FUTURE_MS)
        assert letter.tags["reason"] == "invalid_payload"
    finally:
        store.close()
