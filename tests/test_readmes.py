"""The folder READMEs are a checked contract: each has the same shape, and each settings
section's configuration table lists exactly the options of its pydantic model, with the
model's defaults and Field descriptions.

Sections come from the application's settings model, so a new stage section (or a new
option) fails here until its README documents it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from softplace.settings import KernelSettings, Section
from softplace_cli.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("softplace", "gateway", "ingest", "detector", "privacy", "dashboards", "devkit",
           "bookings", "provision")
REQUIRED_HEADINGS = (
    "Layout", "Configuration", "Inputs and outputs", "Example output", "Why it is built this way",
)
TOP_LEVEL = "top level"  # the heading (in softplace/README.md) of the kernel's plain options
ENV_PREFIX = "SOFTPLACE_"
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_OPTION_ROW = re.compile(r"^\|\s*`([a-z_][a-z0-9_]*)`\s*\|([^|]*)\|([^|]*)\|")


@dataclass(frozen=True, slots=True)
class Row:
    default: str
    description: str


@dataclass(frozen=True, slots=True)
class Documented:
    """A settings section as the code defines it, and the README that must document it."""

    key: str  # the section's name in the settings file, or TOP_LEVEL
    fields: dict[str, FieldInfo]
    readme: Path


def _sections() -> list[Documented]:
    found: list[Documented] = []
    plain: dict[str, FieldInfo] = {}
    for name, info in Settings.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, Section):
            folder = kind.__module__.split(".")[0]
            found.append(Documented(name, dict(kind.model_fields), ROOT / folder / "README.md"))
        elif name in KernelSettings.model_fields:
            plain[name] = info
    found.append(Documented(TOP_LEVEL, plain, ROOT / "softplace" / "README.md"))
    return found


SECTIONS = _sections()


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _headings(text: str, level: int) -> list[str]:
    marker = "#" * level + " "
    lines, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith(marker):
            lines.append(line[len(marker):].strip())
    return lines


def _configuration_tables(text: str) -> dict[str, dict[str, Row]]:
    """Option rows of the ``## Configuration`` part, by the heading they sit under."""
    tables: dict[str, dict[str, Row]] = {}
    inside, heading = False, ""
    for line in text.splitlines():
        if line.startswith("## "):
            inside = line[3:].startswith("Configuration")
            heading = line[3:]
        elif inside and line.startswith("### "):
            heading = line[4:]
        elif inside and (match := _OPTION_ROW.match(line)):
            tables.setdefault(heading, {})[match[1]] = Row(match[2].strip(), match[3].strip())
    return tables


def _table_for(section: Documented) -> dict[str, Row]:
    tables = _configuration_tables(_text(section.readme))
    if section.key == TOP_LEVEL:
        matching = [rows for heading, rows in tables.items() if TOP_LEVEL in heading.lower()]
    else:
        matching = [rows for heading, rows in tables.items() if f"`{section.key}:`" in heading]
    assert len(matching) == 1, (
        f"{section.readme.relative_to(ROOT)}: expected one configuration table under a "
        f"heading naming `{section.key}:`, found {len(matching)} (headings: {list(tables)})"
    )
    return matching[0]


def _plain(cell: str) -> str:
    return " ".join(cell.replace("`", "").split())


def _scalar_default(info: FieldInfo) -> Any:
    """The default when it is one scalar a table cell can state; else PydanticUndefined."""
    value = info.default
    if value is PydanticUndefined or isinstance(value, BaseModel | tuple | list | dict):
        return PydanticUndefined
    return value


def _states(cell: str, value: Any) -> bool:
    """Whether a table cell's first word states ``value`` (YAML spelling)."""
    words = _plain(cell).split()
    first = words[0] if words else ""
    if value is None or isinstance(value, bool):
        return first == {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, int | float):
        try:
            return float(first) == float(value)
        except ValueError:
            return False
    return first == str(value)


@pytest.mark.parametrize("folder", FOLDERS)
def test_readme_folder_has_the_common_shape(folder: str) -> None:
    text = _text(ROOT / folder / "README.md")
    headings = _headings(text, 2)
    for required in REQUIRED_HEADINGS:
        assert any(h.startswith(required) for h in headings), f"{folder}: no '## {required}'"
    title, _, rest = text.partition("\n")
    assert title.startswith(f"# {folder}")
    intro = rest.split("\n## ", 1)[0]
    summary, fence, runnable = intro.strip().partition("```")
    assert summary.strip(), f"{folder}: one line on what it does comes first"
    assert fence and re.search(r"^softplace ", runnable, re.MULTILINE), (
        f"{folder}: a runnable `softplace ...` block comes before the first section"
    )


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.key)
def test_readme_configuration_table_lists_exactly_the_model_options(
    section: Documented,
) -> None:
    rows = _table_for(section)
    missing = set(section.fields) - set(rows)
    invented = set(rows) - set(section.fields)
    assert not missing, f"{section.readme.relative_to(ROOT)} lacks {sorted(missing)}"
    assert not invented, f"{section.readme.relative_to(ROOT)} invents {sorted(invented)}"


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.key)
def test_readme_configuration_table_states_defaults_and_descriptions(
    section: Documented,
) -> None:
    rows = _table_for(section)
    for name, info in section.fields.items():
        row = rows[name]
        default = _scalar_default(info)
        if default is not PydanticUndefined:
            assert _states(row.default, default), (
                f"{section.key}.{name}: README default {row.default!r}, code {default!r}"
            )
        if info.description:
            assert _plain(info.description) in _plain(row.description), (
                f"{section.key}.{name}: README must carry the Field description "
                f"{info.description!r}"
            )


@pytest.mark.parametrize("section", [s for s in SECTIONS if s.key != TOP_LEVEL],
                         ids=lambda s: s.key)
def test_readme_configuration_shows_the_environment_override(section: Documented) -> None:
    assert f"{ENV_PREFIX}{section.key.upper()}__" in _text(section.readme)


def test_readme_states_a_default_check_catches_a_wrong_one() -> None:
    assert _states("`300` (5 min)", 300.0)
    assert not _states("`120`", 300)
    assert _states("`null`", None)
    assert not _states("`false`", True)
    assert _states("`.softplace/gateway`", Path(".softplace/gateway"))


def _markdown_files() -> list[Path]:
    found: list[Path] = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d != "node_modules"]
        found.extend(Path(folder) / name for name in files if name.endswith(".md"))
    return found


def test_readme_relative_links_resolve() -> None:
    broken = []
    for path in _markdown_files():
        for target in _LINK.findall(_text(path)):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            if not (path.parent / target.split("#")[0]).exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert not broken


@pytest.mark.parametrize("folder", FOLDERS)
def test_readme_pastes_no_temporary_path(folder: str) -> None:
    assert "/tmp/" not in _text(ROOT / folder / "README.md")
