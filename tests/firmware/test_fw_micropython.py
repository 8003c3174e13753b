"""The same firmware tests under the real MicroPython (WebAssembly port, run by node)."""

import re
import shutil
import subprocess

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
    assert passed >= 105, f"only {passed} MicroPython tests ran:\n{out}"
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
