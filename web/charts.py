"""Chart geometry for the SVG templates: plain numbers in, positioned shapes out.

Charts are hand-made SVG (``templates/charts.html``): a bar chart and a heatmap need a
few rectangles, which Jinja writes in microseconds with no dependency, no font or browser
engine on the server, and markup the tests can read (each shape carries its value in a
``data-value`` attribute, the report's own float).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from web.data import BranchReport, HeatCell

BAR_HEIGHT = 22
BAR_GAP = 6
LABEL_WIDTH = 300
PLOT_WIDTH = 400
VALUE_WIDTH = 70
CELL = 18
HEAT_LEFT = 40
HEAT_TOP = 20
# light to dark blue, 6 steps (ColorBrewer "Blues"); unknown hours are grey
PALETTE = ("#eff3ff", "#c6dbef", "#9ecae1", "#6baed6", "#3182bd", "#08519c")
UNKNOWN_FILL = "#d9d9d9"
DAY_LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True, slots=True)
class Bar:
    key: str
    label: str
    value: float
    text: str
    y: int
    width: float


@dataclass(frozen=True, slots=True)
class BarChart:
    bars: list[Bar]
    width: int
    height: int
    label_width: int
    plot_width: int
    max_value: float


def bar_chart(rows: Sequence[tuple[str, str, float, str]], *, max_value: float | None = None
              ) -> BarChart:
    """Horizontal bars: (key, label, value, shown text) per row."""
    top = max_value if max_value is not None else max((r[2] for r in rows), default=0.0)
    scale = PLOT_WIDTH / top if top > 0 else 0.0
    bars = [
        Bar(key, label, value, text, i * (BAR_HEIGHT + BAR_GAP), max(value, 0.0) * scale)
        for i, (key, label, value, text) in enumerate(rows)
    ]
    height = max(len(bars) * (BAR_HEIGHT + BAR_GAP), BAR_HEIGHT)
    return BarChart(bars, LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH, height, LABEL_WIDTH,
                    PLOT_WIDTH, top)


@dataclass(frozen=True, slots=True)
class HeatRect:
    weekday: int
    hour: int
    x: int
    y: int
    fill: str
    value: float | None
    title: str


@dataclass(frozen=True, slots=True)
class Heatmap:
    cells: list[HeatRect]
    width: int
    height: int
    days: list[tuple[str, int]]  # label, y
    hours: list[tuple[str, int]]  # label, x


def fill_for(share: float | None) -> str:
    if share is None:
        return UNKNOWN_FILL
    step = min(int(share * len(PALETTE)), len(PALETTE) - 1)
    return PALETTE[step]


def heatmap_chart(cells: Sequence[HeatCell]) -> Heatmap:
    rects = [
        HeatRect(
            c.weekday, c.hour, HEAT_LEFT + c.hour * CELL, HEAT_TOP + c.weekday * CELL,
            fill_for(c.occupied_share), c.occupied_share,
            f"{DAY_LABELS[c.weekday]} {c.hour:02d}h: "
            + ("no data" if c.occupied_share is None else f"{c.occupied_share:.0%} occupied"),
        )
        for c in cells
    ]
    return Heatmap(
        rects, HEAT_LEFT + 24 * CELL, HEAT_TOP + 7 * CELL,
        [(d, HEAT_TOP + i * CELL + CELL - 5) for i, d in enumerate(DAY_LABELS)],
        [(f"{h:02d}", HEAT_LEFT + h * CELL + 2) for h in range(0, 24, 3)],
    )


def _pct(rate: float) -> str:
    return f"{rate * 100:.0f} %"


@dataclass(frozen=True, slots=True)
class ReportCharts:
    rooms: BarChart  # utilisation per room, in the report's order (most idle first)
    spaces: BarChart  # utilisation per floor, building and site
    weeks: BarChart  # idle m²·h per ISO week


def report_charts(branch: BranchReport) -> ReportCharts:
    report = branch.report
    return ReportCharts(
        rooms=bar_chart([(r.room, f"{r.name} ({r.room})", r.utilisation_rate,
                          _pct(r.utilisation_rate)) for r in report.rooms], max_value=1.0),
        spaces=bar_chart([(f"{s.level}:{s.space}", f"{s.level}: {s.space}", s.utilisation_rate,
                           _pct(s.utilisation_rate)) for s in report.rollups], max_value=1.0),
        weeks=bar_chart([(w.week, f"{w.week} ({w.start:%d %b}–{w.end:%d %b})", w.idle_m2h,
                          f"{w.idle_m2h:,.0f}") for w in branch.weeks]),
    )
