"""Long outages through the real processes: the fault matrix's heavy variants.

    .venv/bin/python -m bench.bench_outages [--outage-s 600] [--case NAME ...]  # from the root

Starts a private site mosquitto, upstream mosquitto and influxd (``devkit.services``), then
for each case runs ``softplace gateway`` and ``softplace ingest`` as processes (the e2e
tests' ``Stack``), plays virtual sensors through the outage and prints the line
``tests/e2e`` prints: sent, landed, lost, doubled, dead-lettered. Cases:

    influxd   influxd stopped for the outage
    link      the gateway's upstream link cut (``devkit.netfault.TcpRelay``)
    ingest    ingest killed -9, restarted after the outage
    upstream  the upstream mosquitto killed -9 before its autosave, down for the outage

Exit status 1 when a case lost or doubled a reading.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from devkit.netfault import TcpRelay
from devkit.services import Influxd, Mosquitto
from softplace.settings import MqttSettings, RetentionSettings
from softplace.storage.influx import InfluxStore
from tests.e2e.stack import Stack, wait_for, write_registry
from tests.e2e.test_pipeline import SITE, Fleet, landed

CASES = ("influxd", "link", "ingest", "upstream")
ROOMS = 8
# one step (10 simulated seconds) of every sensor per pause: a 10-minute outage stays within
# the hour the fleet's clock starts behind (the gateway refuses readings from the future)
PLAY_PAUSE_S = 2.0
NO_AUTOSAVE = "autosave_interval 3600"


def run_case(case: str, outage_s: float, workdir: Path, site_broker: Mosquitto,
             influxd: Influxd) -> tuple[int, int, int, int, int]:
    upstream = Mosquitto(workdir / "upstream")
    upstream.config.write_text(upstream.config.read_text().replace("autosave_interval 1",
                                                                   NO_AUTOSAVE))
    upstream.start()
    relay = TcpRelay(upstream.port)
    store = InfluxStore(influxd.settings_for(f"outage_{case}_{int(time.time())}"))
    store.apply_retention(RetentionSettings().policies())
    registry = workdir / "registry.yaml"
    write_registry(registry, SITE, rooms=ROOMS)
    stack = Stack(workdir, SITE, registry, site_broker.settings, store,
                  upstream=MqttSettings(url=f"mqtt://127.0.0.1:{relay.port}"))
    fleet = Fleet([f"dev-{r}-0" for r in range(ROOMS)], site_broker.settings)
    up_env = {"SOFTPLACE_MQTT__URL": upstream.settings.url}
    try:
        fleet.connect()
        stack.start("ingest", "ingest", env=up_env, ready="ingest subscribed")
        stack.start("gateway", "gateway", ready="connected upstream")
        fleet.play(20)
        begin = {"influxd": influxd.stop, "link": relay.cut,
                 "ingest": lambda: stack.kill("ingest"), "upstream": upstream.kill}[case]
        begin()
        deadline = time.monotonic() + outage_s
        while time.monotonic() < deadline:
            fleet.play(1, PLAY_PAUSE_S)
        {"influxd": influxd.start, "link": relay.restore,
         "ingest": lambda: stack.start("ingest", "ingest", env=up_env),
         "upstream": upstream.start}[case]()
        fleet.play(20)
        fleet.wait_sent()
        with contextlib.suppress(AssertionError):
            wait_for(lambda: not fleet.expected - landed(store, fleet.start_ts * 1000),
                     max(120.0, outage_s), "not every reading landed")
        found = landed(store, fleet.start_ts * 1000)
        dead = len(store.query("deadletter", 0, 1 << 62, {"site": SITE}))
        return (sum(fleet.expected.values()), sum(found.values()),
                sum((fleet.expected - found).values()), sum((found - fleet.expected).values()),
                dead)
    finally:
        fleet.close()
        stack.stop_all()
        relay.close()
        upstream.stop()
        influxd.start()
        store.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--outage-s", type=float, default=600, help="outage length per case")
    parser.add_argument("--case", action="append", choices=CASES, help="default: every case")
    args = parser.parse_args(argv)
    failed = False
    with tempfile.TemporaryDirectory(prefix="softplace-outages-") as tmp:
        root = Path(tmp)
        site_broker, influxd = Mosquitto(root / "site"), Influxd(root / "influxd")
        site_broker.start()
        influxd.start()
        try:
            for case in args.case or CASES:
                sent, got, lost, doubled, dead = run_case(case, args.outage_s, root / case,
                                                          site_broker, influxd)
                print(f"{case} down {args.outage_s:.0f} s: sent {sent}, landed {got}, "
                      f"lost {lost}, doubled {doubled}, dead-lettered {dead}", flush=True)
                failed |= bool(lost or doubled)
        finally:
            influxd.stop()
            site_broker.stop()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
