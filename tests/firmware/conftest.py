"""Put firmware/ (softplace_fw) and firmware/tests (the MicroPython test modules) on sys.path."""

import sys

from tests.firmware.paths import FIRMWARE, FW_TESTS

for _path in (str(FIRMWARE), str(FW_TESTS)):
    if _path not in sys.path:
        sys.path.insert(0, _path)
