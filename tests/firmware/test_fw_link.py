"""Outages without reboots: the real firmware and mqtt_as (under the real MicroPython)
against the real mosquitto, stopped, frozen and refusing for a bounded time each
(SOFTPLACE_LINK_OUTAGE_S, default 60 s; bench/fw_link_outages.py runs 10 minutes)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deployed_broker import DeployedBroker, running
from tests.firmware import link_outage
from tests.firmware.test_fw_micropython import PACKAGE

pytestmark = [pytest.mark.node, pytest.mark.slow, pytest.mark.services]

OUTAGE_S = float(os.environ.get("SOFTPLACE_LINK_OUTAGE_S", "60"))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DeployedBroker]:
    assert PACKAGE.is_dir(), "run `cd firmware/tests && npm ci`"
    with running(tmp_path, {link_outage.DEVICE: (link_outage.SITE, link_outage.PASSWORD)}
                 ) as deployed:
        yield deployed


@pytest.mark.parametrize("scenario", link_outage.SCENARIOS)
def test_fw_link_outage_never_resets_keeps_sensing_and_replays(
    broker: DeployedBroker, scenario: str,
) -> None:
    result = link_outage.run(broker, scenario, OUTAGE_S)
    log = "\n".join(result.output[-30:])
    assert result.max_feed_gap_ms < link_outage.WDT_MS, f"the watchdog would reset:\n{log}"
    assert not any("machine.reset" in line for line in result.output), log
    assert result.health_reasons <= {""}, result.health_reasons
    assert result.sensed_during >= OUTAGE_S * 0.8 * 1000 / 200, "kept sensing at sample_ms"
    assert result.replayed_old_ts >= 1, f"readings of the outage replayed with their ts:\n{log}"
    assert len(result.landed) + result.dropped >= result.sent, (
        f"sent {result.sent}, landed {len(result.landed)}, dropped {result.dropped}")
    assert result.dropped > 0, "the small spool overflowed and counted it"
    assert not result.pending_at_end, "every reading acknowledged and forgotten"
