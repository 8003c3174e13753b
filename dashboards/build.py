"""Generate the Grafana dashboard JSON from the panel tables, deterministically.

Each ``Panel`` row becomes one of grafana-foundation-sdk's typed panel builders
(``timeseries``, ``stat``, ``bargauge``, ``table``, ``heatmap``), each ``Variable`` a
``QueryVariable`` and each ``Dashboard`` a ``dashboard.Dashboard`` builder; the SDK's
encoder gives the JSON. ``render_all()`` gives ``{filename: text}``; ``write()`` puts it in
``dashboards/json/`` and ``stale()`` says which committed files differ from what the code
generates. The JSON is Grafana's dashboard model (schemaVersion 39) with sorted keys and
stable uids and panel ids, so a diff of the committed files shows exactly what changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import bargauge, heatmap, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import heatmap as heatmap_model

from dashboards.panels import DASHBOARDS
from dashboards.sdk import InfluxQLQueryBuilder, to_plain
from dashboards.spec import (
    DATASOURCE_TYPE,
    DATASOURCE_UID,
    Dashboard,
    Override,
    Panel,
    PanelType,
    Query,
    Variable,
)

JSON_DIR = Path(__file__).with_name("json")
SCHEMA_VERSION = 39
GRID_WIDTH = 24
# Grafana 11's own defaults, written out: the SDK's option models default to other values
BARGAUGE_MIN_HEIGHT, BARGAUGE_MIN_WIDTH = 16, 8
HEATMAP_STEPS, HEATMAP_EXPONENT, HEATMAP_FILL = 64, 0.5, "dark-orange"
_REF_IDS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_OVERRIDE_UNIT, _OVERRIDE_MAPPINGS, _OVERRIDE_CELL = "unit", "mappings", "custom.cellOptions"


def datasource_ref() -> model.DataSourceRef:
    return model.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


# every typed panel builder of the SDK is its own class, with the same field-config methods
_PanelBuilder = timeseries.Panel | stat.Panel | bargauge.Panel | table.Panel | heatmap.Panel


def _reduce(panel: Panel) -> common_builder.ReduceDataOptions:
    return common_builder.ReduceDataOptions().calcs([panel.calc])


# Each panel type sets its options explicitly: a panel whose options stay unset is written
# as "options": null, which Grafana cannot display.
def _timeseries(panel: Panel) -> _PanelBuilder:
    built = (timeseries.Panel()
             .legend(common_builder.VizLegendOptions().show_legend(True)
                     .display_mode(common.LegendDisplayMode.LIST)
                     .placement(common.LegendPlacement.BOTTOM).calcs([]))
             .tooltip(common_builder.VizTooltipOptions().mode(common.TooltipDisplayMode.SINGLE)
                      .sort(common.SortOrder.NONE)))
    if panel.draw:
        built = built.draw_style(common.GraphDrawStyle(panel.draw))
    if panel.stacking:
        built = built.stacking(common_builder.StackingConfig()
                               .mode(common.StackingMode(panel.stacking)))
    return built


def _stat(panel: Panel) -> _PanelBuilder:
    return stat.Panel().reduce_options(_reduce(panel))


def _bargauge(panel: Panel) -> _PanelBuilder:
    return (bargauge.Panel().display_mode(common.BarGaugeDisplayMode(panel.display))
            .orientation(common.VizOrientation.HORIZONTAL).reduce_options(_reduce(panel))
            .min_viz_height(BARGAUGE_MIN_HEIGHT).min_viz_width(BARGAUGE_MIN_WIDTH))


def _table(panel: Panel) -> _PanelBuilder:
    return table.Panel().show_header(True)


def _heatmap(panel: Panel) -> _PanelBuilder:
    """Rows are the series as they come (one per room), cells as stored: no bucketing."""
    return (heatmap.Panel().calculate(False).cell_gap(1)
            .color(heatmap.HeatmapColorOptions().mode(heatmap_model.HeatmapColorMode.SCHEME)
                   .scheme(panel.scheme).steps(HEATMAP_STEPS)
                   .exponent(HEATMAP_EXPONENT).fill(HEATMAP_FILL).reverse(False))
            .y_axis(heatmap.YAxisConfig().axis_placement(common.AxisPlacement.LEFT))
            .rows_frame(heatmap.RowsHeatmapOptions().layout(common.HeatmapCellLayout.AUTO))
            .show_tooltip())


_BUILDERS: dict[PanelType, Callable[[Panel], _PanelBuilder]] = {
    "timeseries": _timeseries, "stat": _stat, "bargauge": _bargauge, "table": _table,
    "heatmap": _heatmap,
}
_THRESHOLD_COLOURED: frozenset[PanelType] = frozenset({"stat", "bargauge"})


def _target(query: Query, index: int) -> InfluxQLQueryBuilder:
    target = (InfluxQLQueryBuilder(query.text).ref_id(_REF_IDS[index])
              .result_format(query.format).datasource(datasource_ref()))
    if query.alias:
        target = target.alias(query.alias)
    return target


def _properties(override: Override) -> list[model.DynamicConfigValue]:
    properties = []
    if override.unit:
        properties.append(model.DynamicConfigValue(id_val=_OVERRIDE_UNIT, value=override.unit))
    if override.texts:
        texts = model.ValueMap(options={
            mapped.value: model.ValueMappingResult(text=mapped.text, color=mapped.color,
                                                   index=index)
            for index, mapped in enumerate(override.texts)})
        properties += [
            model.DynamicConfigValue(id_val=_OVERRIDE_MAPPINGS, value=[texts]),
            model.DynamicConfigValue(id_val=_OVERRIDE_CELL,
                                     value=common.TableColoredBackgroundCellOptions()),
        ]
    return properties


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> _PanelBuilder:
    colour = (model.FieldColorModeId.THRESHOLDS if panel.type in _THRESHOLD_COLOURED
              else model.FieldColorModeId.PALETTE_CLASSIC)
    built = (_BUILDERS[panel.type](panel)
             .id(panel_id).title(panel.title).description(panel.description)
             .datasource(datasource_ref())
             .grid_pos(model.GridPos(h=panel.height, w=panel.width, x=x, y=y))
             .targets([_target(query, i) for i, query in enumerate(panel.queries)])
             .transformations([model.DataTransformerConfig(id_val=t.id, options=dict(t.options))
                               for t in panel.transformations])
             .unit(panel.unit).mappings([])
             .color_scheme(dashboard_builder.FieldColor().mode(colour))
             .thresholds(dashboard_builder.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE)
                         .steps([model.Threshold(value=value, color=color)
                                 for value, color in panel.thresholds])))
    if panel.decimals is not None:
        built = built.decimals(panel.decimals)
    if panel.min is not None:
        built = built.min(panel.min)
    if panel.max is not None:
        built = built.max(panel.max)
    if panel.min_interval:
        built = built.interval(panel.min_interval)
    if panel.time_from:
        built = built.time_from(panel.time_from)
    for override in panel.overrides:
        built = built.override_by_name(override.field, _properties(override))
    return built


def _layout(panels: tuple[Panel, ...]) -> list[tuple[Panel, int, int]]:
    """Left to right, wrapping at Grafana's 24 columns; a row is as tall as its tallest.

    Positions are computed here, not by the SDK's ``with_panel``: it wraps only after a
    row is full, so a panel that does not fit would overflow the grid.
    """
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


def variable_builder(variable: Variable) -> dashboard_builder.QueryVariable:
    built = (dashboard_builder.QueryVariable(variable.name).label(variable.label)
             .query(variable.query).datasource(datasource_ref())
             .hide(model.VariableHide.DONT_HIDE).multi(variable.multi)
             .include_all(variable.include_all).options([]).regex("")
             .refresh(model.VariableRefresh.ON_DASHBOARD_LOAD)
             .sort(model.VariableSort.ALPHABETICAL_ASC))
    if variable.all_value is not None:
        built = built.all_value(variable.all_value)
    if variable.default:
        built = built.current(model.VariableOption(selected=True, text=variable.default,
                                                   value=variable.default))
    return built


def dashboard_builder_for(dashboard: Dashboard) -> dashboard_builder.Dashboard:
    keys = [panel.key for panel in dashboard.panels]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{dashboard.uid}: panel keys must be unique: {keys}")
    built = (dashboard_builder.Dashboard(dashboard.title).uid(dashboard.uid)
             .description(dashboard.description).readonly()
             .tooltip(model.DashboardCursorSync.CROSSHAIR).tags(list(dashboard.tags))
             .time(dashboard.time_from, "now").timezone("browser").refresh(dashboard.refresh)
             .fiscal_year_start_month(0).week_start("monday").version(1)
             .links([]).annotations([])
             .variables([variable_builder(v) for v in dashboard.variables]))
    for index, (panel, x, y) in enumerate(_layout(dashboard.panels), start=1):
        built = built.with_panel(_panel(panel, index, x, y))
    return built


def dashboard_json(dashboard: Dashboard) -> dict[str, Any]:
    built = dashboard_builder_for(dashboard).build()
    built.schema_version = SCHEMA_VERSION  # the builder has no setter; the model is 39's
    result: dict[str, Any] = to_plain(built)
    return result


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
