"""Write tests/fixtures/firmware_*.json: payloads produced by the firmware core itself.

    python firmware/tests/make_fixtures.py      (from the repository root)

tests/firmware checks that the committed files equal a fresh run and that every payload
validates against softplace.messages, so firmware and services cannot drift apart.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "firmware"))

from softplace_fw.config import validate  # noqa: E402
from softplace_fw.core import SensorCore  # noqa: E402

T0 = 1730796577


def fixtures() -> dict[str, list[dict]]:
    cfg, _ = validate({"hold_s": 10, "debounce_ms": 0, "heartbeat_s": 30})
    out: dict[str, list[dict]] = {}
    tof = SensorCore("esp32-a1b2c3d4e5f6", 12, cfg, "vl53l1x")
    readings = []
    for t, presence, entered, left in ((0, False, 0, 0), (1000, True, 1, 0), (2000, True, 1, 0),
                                       (9000, True, 0, 1), (40000, False, 0, 0)):
        readings += tof.observe(t, T0 + t // 1000, True, presence, entered, left, rssi_dbm=-58)
    out["firmware_readings.json"] = readings
    pir = SensorCore("esp32-0a0b0c0d0e0f", 0, cfg, "pir")
    out["firmware_readings_unsynced.json"] = (
        pir.observe(0, 946684800 + 42, False, True)
        + pir.observe(20000, 946684800 + 62, False, False)
    )
    out["firmware_status.json"] = [
        tof.status("online", T0, reset_cause="watchdog"),
        tof.status("online", T0 + 60, error="config refused: hold_s: must be 10..7200, got 1"),
        tof.will(),
    ]
    return out


def render(items: list[dict]) -> str:
    return json.dumps(items, indent=2, sort_keys=True) + "\n"


def main() -> None:
    for name, items in fixtures().items():
        (ROOT / "tests" / "fixtures" / name).write_text(render(items))


if __name__ == "__main__":
    main()
