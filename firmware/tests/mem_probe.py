"""Heap in use under the real MicroPython: after importing the firmware, during compaction.

Run alone in a fresh interpreter (``node run_micropython.mjs --probe mem_probe``; the
CPython test passes the mpy-cross build the installer copies to the device). This port
reclaims garbage only between ``step`` calls, so:

- ``after_import`` is the live heap (``gc.mem_alloc()`` after ``gc.collect()``) once every
  firmware module is imported;
- ``compaction_peak`` is the live heap before compacting a full spool file of the largest
  size the schema allows, plus everything the compaction allocated with the collector
  off: an upper bound of the heap in use at any moment during it.

Prints ``MEM ...`` and "1 passed, 0 failed" when both stay under ``LIMIT``.
"""

import gc

LIMIT = 60 * 1024
SPOOL_BYTES = 262144  # the largest buffer_flash_bytes the schema allows
PATH = "/tmp/mem_probe_spool"
LINE = (b'{"v": 1, "device": "esp32-0a1b2c3d4e5f", "boot": 7, "seq": %d, "ts": 1730796577, '
        b'"synced": true, "count": 1, "sensor": "ld2410", "rssi_dbm": -61}\n')

figures = {}
_state = {}


def _live() -> int:
    gc.collect()
    return gc.mem_alloc()


def _import_firmware() -> None:
    from softplace_fw import app, buffer, clock, config, core, health, payload  # noqa: F401
    from softplace_fw.drivers import ld2410, pir, vl53l1x  # noqa: F401


def _write_spool() -> int:
    written = 0
    i = 0
    with open(PATH, "wb") as f:
        while written + len(LINE % i) <= SPOOL_BYTES:
            data = LINE % i
            f.write(data)
            written += len(data)
            i += 1
    return i


def _compact() -> None:
    from softplace_fw import buffer

    before = _live()
    spool = buffer.FlashSpool(PATH, SPOOL_BYTES)
    item = LINE[:-1] % _state["lines"]
    gc.disable()
    try:
        start = gc.mem_alloc()
        spool.append(item)  # over the cap: compacts the whole file
        used = gc.mem_alloc() - start
    finally:
        gc.enable()
    figures["compaction_alloc"] = used
    figures["compaction_peak"] = before + used
    figures["spool_dropped"] = spool.dropped
    figures["spool_bytes_after"] = spool.size


def step(n: int) -> bool:
    if n == 0:
        figures["baseline"] = _live()
        _import_firmware()
    elif n == 1:
        figures["after_import"] = _live()
        _state["lines"] = _write_spool()
    elif n == 2:
        _compact()
    return n < 2


def verdict() -> int:
    print("MEM " + " ".join("{}={}".format(k, figures[k]) for k in sorted(figures)))
    good = (figures["after_import"] < LIMIT and figures["compaction_peak"] < LIMIT
            and figures["spool_dropped"] > 0 and figures["spool_bytes_after"] <= SPOOL_BYTES)
    print("{} passed, {} failed".format(1 if good else 0, 0 if good else 1))
    return 0 if good else 1
