"""The dashboard's charts as SVG geometry: pure functions of the figures, no queries, no HTML.

Each function returns a ``Chart`` whose coordinates are in its ``viewBox`` (the SVG scales to the
page's width); the templates under ``approvals/charts/`` only draw what is computed here. Colours
are the Okabe-Ito palette, distinguishable with every common colour-vision deficiency; every
mark also carries its figure as text, so no meaning rides on colour alone.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

# Okabe-Ito colours, each at least 3:1 against white (WCAG's minimum for graphics).
BLUE = "#0072B2"
VERMILLION = "#D55E00"
GREEN = "#009E73"
BLACK = "#000000"
GRID = "#767676"  # 4.5:1 on white

WIDTH = 640
LABEL_HEIGHT = 26  # a label line above each horizontal bar (24 units high on a phone)
BAR_HEIGHT = 16
ROW_GAP = 12
VALUE_ROOM = 150  # right of the longest bar, for its figure (phones draw it larger)
AXIS_HEIGHT = 34


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    fill: str
    text: str  # the figure, drawn beside the bar (and read by screen readers with the table)
    text_x: float
    text_y: float
    text_anchor: str = "start"


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "start"


@dataclass(frozen=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str = GRID
    dashed: bool = False


@dataclass(frozen=True)
class LegendItem:
    colour: str
    text: str
    dashed: bool = False  # a dashed line instead of a swatch


@dataclass
class Chart:
    title: str
    desc: str
    height: float
    width: float = WIDTH
    bars: list[Bar] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    legend: list[LegendItem] = field(default_factory=list)

    @property
    def view_box(self) -> str:
        """A margin of 2 around the drawing, so strokes on its edges are not clipped."""
        return f"-2 -2 {self.width + 4:.0f} {self.height + 4:.0f}"


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least ``value`` (> 0)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5):
        if value <= step * power * (1 + 1e-9):
            return step * power
    return 10 * power


def _number(value: float) -> str:
    return f"{value:,.1f}".removesuffix(".0")


def _percent(rate: float | None) -> str:
    return "no decisions" if rate is None else f"{rate * 100:.0f}%"


def _axis(chart: Chart, bottom: float, scale_max: float, text: Callable[[float], str]) -> None:
    """Gridlines at 0, 1/4 .. 4/4 of ``scale_max`` across the bars, labelled under them."""
    plot = WIDTH - VALUE_ROOM
    for step in range(5):
        x = plot * step / 4
        chart.lines.append(Line(x, 0, x, bottom))
        anchor = "start" if step == 0 else "middle"
        chart.labels.append(Label(x, bottom + 24, text(scale_max * step / 4), anchor))


def completion_chart(workflows: list[dict]) -> Chart:
    """Completion rate per definition: one bar each, 0-100%."""
    chart = Chart(
        title="Completion rate per workflow definition",
        desc=(
            "Share of finished workflows that completed (not rejected or cancelled), per "
            "definition: "
            + "; ".join(
                f"{row['definition']['name']}: {_percent(row['completion_rate'])}"
                for row in workflows
            )
            + "."
        ),
        height=0,
    )
    plot = WIDTH - VALUE_ROOM
    y = 0.0
    for row in workflows:
        rate = row["completion_rate"]
        chart.labels.append(Label(0, y + LABEL_HEIGHT - 5, row["definition"]["name"]))
        bar_y = y + LABEL_HEIGHT
        width = plot * (rate or 0)
        text = f"{_percent(rate)} of {row['completed'] + row['rejected'] + row['cancelled']}"
        if rate is None:
            text = "none finished"
        chart.bars.append(
            Bar(0, bar_y, width, BAR_HEIGHT, GREEN, text, width + 6, bar_y + BAR_HEIGHT - 3)
        )
        y = bar_y + BAR_HEIGHT + ROW_GAP
    _axis(chart, y, 1.0, _percent)
    chart.height = y + AXIS_HEIGHT
    return chart


def stage_hours_chart(stages: list[dict]) -> Chart:
    """Average and p90 hours to decision per stage, each against its SLA (a dashed line)."""
    highest = max(
        (
            value or 0
            for row in stages
            for value in (
                row["avg_hours_to_decision"],
                row["p90_hours_to_decision"],
                row.get("sla_hours_high"),
            )
        ),
        default=0,
    )
    scale_max = nice_ceiling(highest)
    plot = WIDTH - VALUE_ROOM
    chart = Chart(
        title="Hours to decision per stage, against the stage's SLA",
        desc=(
            "Average and 90th-percentile hours from a stage's start to each decision, slowest "
            "stage first; the dashed line marks the SLA. "
            + "; ".join(
                f"{row['stage_name']}: average {_hours_text(row['avg_hours_to_decision'])}, "
                f"p90 {_hours_text(row['p90_hours_to_decision'])}, SLA {sla_text(row)}"
                for row in stages
            )
            + "."
        ),
        height=0,
        legend=[
            LegendItem(BLUE, "Average"),
            LegendItem(VERMILLION, "90th percentile"),
            LegendItem(BLACK, "SLA", dashed=True),
        ],
    )
    y = 0.0
    for row in stages:
        chart.labels.append(Label(0, y + LABEL_HEIGHT - 5, row["stage_name"]))
        top = y + LABEL_HEIGHT
        for offset, key, colour, name in (
            (0, "avg_hours_to_decision", BLUE, "avg"),
            (BAR_HEIGHT, "p90_hours_to_decision", VERMILLION, "p90"),
        ):
            hours = row[key]
            width = plot * (hours or 0) / scale_max
            bar_y = top + offset
            chart.bars.append(
                Bar(
                    0,
                    bar_y,
                    width,
                    BAR_HEIGHT - 2,
                    colour,
                    f"{name} {_hours_text(hours)}",
                    width + 6,
                    bar_y + BAR_HEIGHT - 5,
                )
            )
        bottom = top + 2 * BAR_HEIGHT
        for sla in {row.get("sla_hours_low"), row.get("sla_hours_high")} - {None}:
            x = plot * sla / scale_max
            chart.lines.append(Line(x, top - 3, x, bottom + 1, BLACK, dashed=True))
        y = bottom + ROW_GAP
    _axis(chart, y, scale_max, _hours_text)
    chart.height = y + AXIS_HEIGHT
    return chart


def _hours_text(hours: float | None) -> str:
    return "-" if hours is None else f"{_number(hours)} h"


def sla_text(row: dict) -> str:
    """A stage's SLA as shown: one figure, a range, or the tenant default."""
    low, high = row.get("sla_hours_low"), row.get("sla_hours_high")
    if low is None:
        return "default"
    return f"{low} h" if low == high else f"{low}-{high} h"


WEEK_PLOT_TOP = 10
WEEK_PLOT_HEIGHT = 160
WEEK_LEFT = 72
MAX_WEEK_LABELS = 8


def weekly_compliance_chart(weeks: list[dict]) -> Chart:
    """SLA compliance per week: one column each, 0-100%, the week's Monday under it."""
    chart = Chart(
        title="SLA compliance per week",
        desc=(
            "Share of decisions made by their due time, per week of the decision: "
            + "; ".join(
                f"week of {_day(row['week'])}: {_percent(row['sla_compliance_rate'])} "
                f"of {row['decided']}"
                for row in weeks
            )
            + "."
        ),
        height=WEEK_PLOT_TOP + WEEK_PLOT_HEIGHT + AXIS_HEIGHT + 6,
    )
    bottom = WEEK_PLOT_TOP + WEEK_PLOT_HEIGHT
    right = WIDTH - 8
    for step in range(5):
        y = bottom - WEEK_PLOT_HEIGHT * step / 4
        chart.lines.append(Line(WEEK_LEFT, y, right, y))
        chart.labels.append(Label(WEEK_LEFT - 6, y + 5, f"{step * 25}%", "end"))
    if not weeks:
        return chart
    slot = (right - WEEK_LEFT) / len(weeks)
    every = math.ceil(len(weeks) / MAX_WEEK_LABELS)
    for index, row in enumerate(weeks):
        rate = row["sla_compliance_rate"] or 0
        height = WEEK_PLOT_HEIGHT * rate
        x = WEEK_LEFT + slot * index + slot * 0.15
        width = slot * 0.7
        centre = x + width / 2
        # The figure above the column when there is room for it among its neighbours.
        text = _percent(row["sla_compliance_rate"]) if every == 1 else ""
        chart.bars.append(
            Bar(
                x, bottom - height, width, height, BLUE, text, centre, bottom - height - 4, "middle"
            )
        )
        if index % every == 0:
            chart.labels.append(Label(centre, bottom + 24, _day(row["week"]), "middle"))
    return chart


def _day(day: date) -> str:
    return f"{day:%b} {day.day}"
