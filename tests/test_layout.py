"""The floor plan holds: the import contracts cover every package, a pure core loads no
other stage, and a command loads only the stage it runs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("gateway", "ingest", "detector", "privacy", "dashboards", "bookings", "provision")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

pytestmark = pytest.mark.slow  # import probes run in fresh interpreters


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=ROOT, timeout=60, check=True)
    return set(result.stdout.split())


def _top_level_modules_after(code: str) -> set[str]:
    return {m.split(".")[0] for m in _modules_after(code)}


def test_layout_import_contracts_cover_every_installed_package() -> None:
    installed = {p.split(".")[0] for p in PYPROJECT["tool"]["setuptools"]["packages"]}
    checked = set(PYPROJECT["tool"]["importlinter"]["root_packages"])
    assert installed - {"softplace_fw"} == checked  # the firmware is MicroPython, checked apart


def test_layout_image_copies_every_installed_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    copied = {line.split()[1] for line in dockerfile.splitlines() if line.startswith("COPY ")}
    for package in {p.split(".")[0] for p in PYPROJECT["tool"]["setuptools"]["packages"]}:
        source = PYPROJECT["tool"]["setuptools"]["package-dir"].get(package, package)
        assert source in copied, f"Dockerfile does not COPY {source}"


def test_layout_contracts_name_every_stage_as_independent() -> None:
    contracts = {c["type"]: c for c in PYPROJECT["tool"]["importlinter"]["contracts"]}
    assert set(contracts["independence"]["modules"]) == set(STAGES)
    assert contracts["layers"]["layers"][-1] == "softplace"


def test_layout_pure_gateway_core_loads_no_other_stage_and_no_io_library() -> None:
    loaded = _top_level_modules_after("import gateway.core")
    assert loaded.isdisjoint({*STAGES} - {"gateway"} | {"devkit", "softplace_cli"})
    assert loaded.isdisjoint({"yaml", "paho", "httpx", "influxdb_client", "rich", "click"})


def test_layout_a_command_loads_only_its_own_stage() -> None:
    loaded = _modules_after(
        "import click\nfrom softplace_cli import cli\n"
        "cli.get_command(click.Context(cli), 'gateway')"
    )
    assert "gateway.service" in loaded
    others = {m for m in loaded if m.split(".")[0] in set(STAGES) - {"gateway"}}
    # the other stages contribute their settings sections, nothing else
    assert others == {f"{s}{part}" for s in ("ingest", "detector", "privacy", "dashboards",
                                              "bookings", "provision")
                      for part in ("", ".settings")}


def test_layout_web_stack_loads_only_for_the_web_command() -> None:
    web_stack = {"fastapi", "starlette", "uvicorn", "jinja2", "argon2"}
    loaded = _top_level_modules_after(
        "import click\nfrom softplace_cli import cli\n"
        "cli.get_command(click.Context(cli), 'gateway')"
    )
    assert loaded.isdisjoint(web_stack)
    assert "argon2" in _top_level_modules_after("import web.users")
