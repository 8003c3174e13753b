"""Settings refuse what they would silently ignore; output is whole, on one line, escaped,
and says what it means."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from pathlib import Path

import pytest
from rich.console import Console

from detector.report import BreachRow, _breach_row, explain_hours
from softplace.cli import CHATTY_LOGGERS, configure_logging
from softplace.errors import ConfigError
from softplace.registry import parse_registry
from softplace_cli import load_settings
from tests.detector.helpers import REGISTRY_YAML
from tests.honest_cli import softplace, store_env


def test_settings_duplicate_yaml_key_names_both_lines(tmp_path: Path) -> None:
    config = tmp_path / "softplace.yaml"
    config.write_text("retention:\n  raw_days: 60\n  derived_days: 400\n  raw_days: 7\n")
    with pytest.raises(ConfigError, match=r"softplace.yaml:4: retention.raw_days: duplicate "
                                          r"key, first set at line 2"):
        load_settings(config, {})


def test_settings_misspelt_environment_variable_is_refused_with_its_name() -> None:
    with pytest.raises(ConfigError, match="SOFTPLACE_RETENTOIN__RAW_DAYS: no such setting; "
                                          "did you mean SOFTPLACE_RETENTION__RAW_DAYS"):
        load_settings(None, {"SOFTPLACE_RETENTOIN__RAW_DAYS": "7"})


def test_settings_environment_through_pydantic_settings_keeps_json_and_null() -> None:
    settings = load_settings(None, {"SOFTPLACE_RETENTION__RAW_DAYS": "7",
                                    "SOFTPLACE_PRIVACY__BUDGETS": '{"regulator": 6}',
                                    "SOFTPLACE_INGEST__SHARED_GROUP": "",
                                    "SOFTPLACE_SITE": "compose-only"})
    assert settings.retention.raw_days == 7
    assert settings.privacy.budgets == {"regulator": 6}
    assert settings.ingest.shared_group is None


def test_registry_duplicate_room_is_reported_at_the_duplicate_line() -> None:
    text = REGISTRY_YAML.replace(
        "              - {id: flat,", "              - {id: meet, kind: office, area_m2: 5,"
        " capacity: 1}\n              - {id: flat,")
    line = text.splitlines().index("              - {id: meet, kind: office, area_m2: 5,"
                                   " capacity: 1}") + 1
    with pytest.raises(ConfigError, match=rf"r.yaml:{line}: .*room id in site 's1' 'meet' "
                                          "appears twice"):
        parse_registry(text, "r.yaml")


@pytest.mark.parametrize(("vacant", "limit", "shown"), [
    (3.82, 3.75, ("3.82", "3.75")),
    (4.5, 3.75, ("4.5", "3.8")),
    (3.751, 3.75, ("3.751", "3.750")),
    (3.75, 3.75, ("3.8", "3.8")),
])
def test_report_breach_hours_keep_the_verdict_visible(
    vacant: float, limit: float, shown: tuple[str, str]
) -> None:
    assert explain_hours(vacant, limit) == shown


def test_report_breach_row_shows_3_82_against_3_75() -> None:
    moment = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)
    row = BreachRow(room="r", name="R", date=moment.date(), start=moment, end=moment,
                    vacant_h=3.82, limit_h=3.75)
    assert _breach_row(row)[-2:] == ("3.82", "3.75")


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    outcome = softplace(capsys, {}, "--version")
    assert outcome.code == 0 and outcome.out.strip().endswith(version("softplace"))


def test_cli_error_is_one_line_with_markup_shown_verbatim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    draft = tmp_path / "[draft]" / "a very long directory name that would wrap a terminal"
    outcome = softplace(capsys, store_env(tmp_path, SOFTPLACE_STORAGE__SQLITE_PATH=str(
        draft / "store.sqlite")), "report", "--site", "branch-lyon-part-dieu", "--from",
        "2026-11-02", "--to", "2026-11-08")
    assert outcome.code == 2
    assert outcome.err.count("\n") == 1 and "[draft]" in outcome.err


def test_cli_dates_are_parsed_and_ordered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = softplace(capsys, store_env(tmp_path), "report", "--site", "x", "--from", "2 Nov",
                    "--to", "2026-11-08")
    assert bad.code == 2 and "'2 Nov' is not a date like 2026-11-02" in bad.err
    reversed_ = softplace(capsys, store_env(tmp_path), "intervals", "--site", "x", "--from",
                          "2026-11-08", "--to", "2026-11-02")
    assert reversed_.code == 2 and "--to 2026-11-02 is before --from 2026-11-08" in (
        reversed_.err)


def test_console_redirected_is_not_cut_to_80_columns() -> None:
    from softplace.cli import UNWRAPPED_WIDTH, _console

    saved = os.environ.pop("COLUMNS", None)
    try:
        assert _console(stderr=False).width == UNWRAPPED_WIDTH  # pytest captures: no tty
    finally:
        if saved is not None:
            os.environ["COLUMNS"] = saved
    wide = Console(width=UNWRAPPED_WIDTH, record=True)
    from rich.table import Table

    table = Table()
    table.add_column("room")
    table.add_row("Coworking corner by the big south window (cowork-south)")
    wide.print(table)
    assert "Coworking corner by the big south window (cowork-south)" in wide.export_text()


def test_dashboards_build_writes_under_the_working_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import dashboards.build

    installed = sorted(p.stat().st_mtime_ns for p in dashboards.build.JSON_DIR.glob("*.json"))
    monkeypatch.chdir(tmp_path)
    outcome = softplace(capsys, {}, "dashboards", "build")
    assert outcome.code == 0, outcome
    assert json.loads((tmp_path / "dashboards" / "json" / "branch.json").read_text())
    assert sorted(p.stat().st_mtime_ns for p in dashboards.build.JSON_DIR.glob("*.json")) == (
        installed)


@pytest.mark.parametrize(("verbose", "http_level"), [(0, "WARNING"), (1, "WARNING"), (2, "DEBUG")])
def test_cli_verbose_keeps_per_request_http_logs_for_debug(verbose: int, http_level: str) -> None:
    configure_logging(verbose)
    for name in CHATTY_LOGGERS:
        assert logging.getLevelName(logging.getLogger(name).level) == http_level
