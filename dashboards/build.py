"""Generate the Grafana dashboard JSON from the panel tables, deterministically.

``render_all()`` gives ``{filename: text}``; ``write()`` puts it in ``dashboards/json/``
and ``stale()`` says which committed files differ from what the code generates. The JSON
is Grafana's dashboard model (schemaVersion 39) with sorted keys and stable uids, so a
diff of the committed files shows exactly what changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dashboards.panels import DASHBOARDS
from dashboards.spec import (
    DATASOURCE_TYPE,
    DATASOURCE_UID,
    Dashboard,
    Panel,
    Query,
    Variable,
)

JSON_DIR = Path(__file__).with_name("json")
SCHEMA_VERSION = 39
GRID_WIDTH = 24
_REF_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def datasource_ref() -> dict[str, str]:
    return {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID}


def _target(query: Query, index: int) -> dict[str, Any]:
    target: dict[str, Any] = {
        "datasource": datasource_ref(),
        "query": query.text,
        "rawQuery": True,
        "refId": _REF_IDS[index],
        "resultFormat": query.format,
    }
    if query.alias:
        target["alias"] = query.alias
    return target


def _thresholds(panel: Panel) -> dict[str, Any]:
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for value, color in panel.thresholds],
    }


def _field_defaults(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "color": {"mode": "thresholds" if panel.type in {"stat", "bargauge"}
                  else "palette-classic"},
        "custom": dict(panel.custom),
        "mappings": [],
        "thresholds": _thresholds(panel),
        "unit": panel.unit,
    }
    for key in ("decimals", "min", "max"):
        value = getattr(panel, key)
        if value is not None:
            defaults[key] = value
    return defaults


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    result: dict[str, Any] = {
        "datasource": datasource_ref(),
        "description": panel.description,
        "fieldConfig": {
            "defaults": _field_defaults(panel),
            "overrides": [dict(override) for override in panel.overrides],
        },
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "id": panel_id,
        "options": dict(panel.options),
        "targets": [_target(query, i) for i, query in enumerate(panel.queries)],
        "title": panel.title,
        "transformations": [dict(t) for t in panel.transformations],
        "type": panel.type,
    }
    if panel.min_interval:
        result["interval"] = panel.min_interval
    if panel.time_from:
        result["timeFrom"] = panel.time_from
    return result


def _layout(panels: tuple[Panel, ...]) -> list[tuple[Panel, int, int]]:
    """Left to right, wrapping at Grafana's 24 columns; a row is as tall as its tallest."""
    placed: list[tuple[Panel, int, int]] = []
    x = y = row_height = 0
    for panel in panels:
        if panel.width > GRID_WIDTH:
            raise ValueError(f"panel {panel.key!r} is wider than {GRID_WIDTH} columns")
        if x + panel.width > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        placed.append((panel, x, y))
        x += panel.width
        row_height = max(row_height, panel.height)
    return placed


def variable_json(variable: Variable) -> dict[str, Any]:
    return {
        "allValue": variable.all_value,
        "current": ({"selected": True, "text": variable.default, "value": variable.default}
                    if variable.default else {}),
        "datasource": datasource_ref(),
        "definition": variable.query,
        "hide": 0,
        "includeAll": variable.include_all,
        "label": variable.label,
        "multi": variable.multi,
        "name": variable.name,
        "options": [],
        "query": variable.query,
        "refresh": 1,  # on dashboard load
        "regex": "",
        "skipUrlSync": False,
        "sort": 1,
        "type": "query",
    }


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    keys = [panel.key for panel in dashboard.panels]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{dashboard.uid}: panel keys must be unique: {keys}")
    return {
        "annotations": {"list": []},
        "description": dashboard.description,
        "editable": False,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "id": None,
        "links": [],
        "panels": [
            _panel(panel, index, x, y)
            for index, (panel, x, y) in enumerate(_layout(dashboard.panels), start=1)
        ],
        "refresh": dashboard.refresh,
        "schemaVersion": SCHEMA_VERSION,
        "tags": list(dashboard.tags),
        "templating": {"list": [variable_json(v) for v in dashboard.variables]},
        "time": {"from": dashboard.time_from, "to": "now"},
        "timepicker": {},
        "timezone": "browser",
        "title": dashboard.title,
        "uid": dashboard.uid,
        "version": 1,
        "weekStart": "monday",
    }


def render(dashboard: Dashboard) -> str:
    return json.dumps(dashboard_json(dashboard), indent=2, sort_keys=True,
                      ensure_ascii=False) + "\n"


def render_all() -> dict[str, str]:
    return {dashboard.filename: render(dashboard) for dashboard in DASHBOARDS}


def write(out_dir: Path = JSON_DIR) -> list[Path]:
    """Write every dashboard; remove generated files whose dashboard is gone."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rendered = render_all()
    for old in out_dir.glob("*.json"):
        if old.name not in rendered:
            old.unlink()
    written = []
    for name, text in rendered.items():
        path = out_dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale(out_dir: Path = JSON_DIR) -> list[str]:
    """Files in ``out_dir`` that differ from the generated ones (missing or extra too)."""
    rendered = render_all()
    present = {path.name for path in out_dir.glob("*.json")}
    problems = sorted(present - set(rendered))
    for name, text in rendered.items():
        path = out_dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            problems.append(name)
    return sorted(problems)


def load_committed(out_dir: Path = JSON_DIR) -> dict[str, dict[str, Any]]:
    """The committed dashboards as Grafana will read them."""
    result: dict[str, dict[str, Any]] = {}
    for path in sorted(out_dir.glob("*.json")):
        result[path.name] = json.loads(path.read_text(encoding="utf-8"))
    return result
