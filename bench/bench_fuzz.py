"""Fuzz bench: 100,000 adversarial payloads through the real gateway on a private mosquitto.

    .venv/bin/python bench/bench_fuzz.py [--bad N] [--timeout S]

The long version of ``tests/gateway/test_fuzz.py`` (same payload kinds, same checks): every
good reading lands in the outbox, every bad payload becomes exactly one dead letter under a
key of its own, the gateway never reconnects. Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from devkit.services import Mosquitto

# the payloads and checks are the test suite's own (tests/ is not an installed package)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.gateway.test_fuzz import run_fuzz

log = logging.getLogger("bench_fuzz")
DEFAULT_BAD = 100_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bad", type=int, default=DEFAULT_BAD, help="adversarial payloads")
    parser.add_argument("--timeout", type=float, default=900, help="seconds for the run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as tmp:
        broker = Mosquitto(Path(tmp) / "broker")
        broker.start()
        try:
            result = run_fuzz(broker.settings, Path(tmp), args.bad, args.timeout)
        finally:
            broker.stop()
    for line in result.lines():
        log.info("%s", line)
    ok = (result.accepted == result.good and result.good_missing == 0
          and result.dead_lettered == result.bad == result.letters_upstream
          == result.letter_keys and result.connections == 1)
    log.info("%s: %.0f payloads/s", "ok" if ok else "FAILED",
             (result.good + result.bad) / result.seconds)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
