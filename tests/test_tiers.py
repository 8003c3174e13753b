"""The test tiers mean what they say: ``-m "not services"`` selects no test that needs
mosquitto, influxd, node or a subprocess, and a service requested behind the markers' back
fails the test instead of starting."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import NODE, SERVICE_FIXTURES, SERVICES, SLOW

TESTS = Path(__file__).parent
PYPROJECT = TESTS.parent / "pyproject.toml"

LATE_REQUEST = '''
def test_asks_for_influxd_late(request):
    request.getfixturevalue("influxd")
'''


class _Recorder:
    """A plugin for a nested run: what it collected and how each test ended."""

    def __init__(self) -> None:
        self.items: list[pytest.Item] = []
        self.reports: list[pytest.TestReport] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.items = list(session.items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reports.append(report)


def _run(*args: str) -> tuple[pytest.ExitCode | int, _Recorder]:
    recorder = _Recorder()
    code = pytest.main(["-q", "-p", "no:cacheprovider", *args], plugins=[recorder])
    return code, recorder


def test_tiers_without_services_no_test_uses_a_service_node_or_a_slow_search() -> None:
    code, collected = _run("--collect-only", "-m", f"not {SERVICES}", str(TESTS))
    assert code == pytest.ExitCode.OK
    assert collected.items
    for item in collected.items:
        assert not SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ())), item.nodeid
        assert item.get_closest_marker(NODE) is None, item.nodeid
        assert item.get_closest_marker(SLOW) is None, item.nodeid
    nodeids = {item.nodeid for item in collected.items}
    assert "tests/firmware/test_fw_micropython.py::test_fw_micropython_suite_passes" not in nodeids
    assert not any(n.startswith(("tests/test_demo.py", "tests/test_cli.py")) for n in nodeids)
    assert "tests/firmware/test_fw_cpython.py::test_fw_modules_all_listed" in nodeids
    # the store fixture requests influx_store late (getfixturevalue): its param is marked
    contract = "tests/test_storage_contract.py::test_store_delete_series_by_tag"
    assert f"{contract}[sqlite]" in nodeids and f"{contract}[influxdb]" not in nodeids


def test_tiers_a_service_requested_late_in_a_run_without_services_fails(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("from tests.conftest import *  # noqa: F403\n")
    (tmp_path / "test_late.py").write_text(LATE_REQUEST)
    code, ran = _run("-c", str(PYPROJECT), "--rootdir", str(tmp_path), "-m", f"not {SERVICES}",
                     str(tmp_path))
    assert code == pytest.ExitCode.TESTS_FAILED
    (failed,) = [r for r in ran.reports if r.failed]
    assert "influxd requested in a run that selected no 'services' test" in str(failed.longrepr)
