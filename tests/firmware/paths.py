"""Where the firmware lives, for the firmware checks."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
FW_TESTS = FIRMWARE / "tests"
