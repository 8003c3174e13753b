"""Broker outages of 10 minutes each against the real firmware and mqtt_as.

    .venv/bin/python bench/bench_fw_link.py [--outage-s 600] [--scenario stopped ...]

The same run as tests/firmware/test_fw_link.py (firmware main.py and the vendored mqtt_as
under the WebAssembly MicroPython, the real mosquitto with the deploy configuration, a
stand-in gateway that acks every reading), with the outage the issue asks for: the broker
stopped, frozen (SIGSTOP) and refusing the device for ``--outage-s`` each. Prints, per
scenario: readings made, landed, dropped (counted by the device), doubled, the longest
watchdog gap and how many outage readings were replayed with their original timestamps.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.deployed_broker import running
from tests.firmware import link_outage


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--outage-s", type=float, default=600)
    parser.add_argument("--scenario", action="append", choices=link_outage.SCENARIOS)
    args = parser.parse_args()
    failed = 0
    for scenario in args.scenario or link_outage.SCENARIOS:
        with tempfile.TemporaryDirectory() as tmp, running(
                Path(tmp), {link_outage.DEVICE: (link_outage.SITE, link_outage.PASSWORD)}
        ) as broker:
            r = link_outage.run(broker, scenario, args.outage_s, settle_s=120)
        lost = r.sent - len(r.landed) - r.dropped
        ok = r.max_feed_gap_ms < link_outage.WDT_MS and lost <= 0 and not r.pending_at_end
        failed += not ok
        print(f"{scenario}: outage {r.outage_s:.0f} s, made {r.sent}, landed {len(r.landed)},"
              f" dropped {r.dropped} (counted), lost {max(lost, 0)}, doubled {r.doubled},"
              f" replayed with original ts {r.replayed_old_ts}, longest watchdog gap"
              f" {r.max_feed_gap_ms} ms, sensing steps during the outage {r.sensed_during}"
              f" -> {'ok' if ok else 'FAILED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
