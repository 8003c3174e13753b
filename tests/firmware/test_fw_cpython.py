"""The MicroPython test modules, run under CPython: one pytest test per firmware test."""

import importlib

import mpytest
import pytest
import run_all  # firmware/tests, put on sys.path by conftest

from tests.firmware.paths import FW_TESTS

CASES = [
    pytest.param(module, name, id=f"{module}.{name}")
    for module in run_all.MODULES
    for name, _fn in mpytest.tests_of(importlib.import_module(module))
]


def test_fw_modules_all_listed() -> None:
    on_disk = sorted(p.stem for p in FW_TESTS.glob("test_*.py"))
    assert on_disk == sorted(run_all.MODULES), "run_all.MODULES must list every test module"


@pytest.mark.parametrize(("module", "name"), CASES)
def test_fw_cpython(module: str, name: str) -> None:
    getattr(importlib.import_module(module), name)()
