"""The dashboard's SVG geometry (``approvals.web.charts``): pure functions, checked by numbers."""

from datetime import date

import pytest

from approvals.web import charts
from approvals.web.charts import VALUE_ROOM, WIDTH

PLOT = WIDTH - VALUE_ROOM


@pytest.mark.parametrize(
    ("value", "ceiling"),
    [(0, 1), (0.3, 0.5), (1, 1), (7, 10), (44, 50), (60, 100), (120, 200), (240, 250)],
)
def test_nice_ceiling(value, ceiling):
    assert charts.nice_ceiling(value) == pytest.approx(ceiling)


def workflow(name, completed, rejected, cancelled):
    finished = completed + rejected + cancelled
    return {
        "definition": {"id": name, "name": name},
        "completed": completed,
        "rejected": rejected,
        "cancelled": cancelled,
        "completion_rate": completed / finished if finished else None,
    }


def test_completion_bars_are_proportional_and_labelled():
    chart = charts.completion_chart(
        [workflow("Deal Review", 1, 2, 1), workflow("NDA", 1, 0, 0), workflow("New", 0, 0, 0)]
    )

    assert [bar.width for bar in chart.bars] == [PLOT * 0.25, PLOT, 0]
    assert [bar.text for bar in chart.bars] == ["25% of 4", "100% of 1", "none finished"]
    assert chart.bars[0].y < chart.bars[1].y < chart.bars[2].y
    assert chart.height > chart.bars[2].y + chart.bars[2].height
    assert "Deal Review: 25%; NDA: 100%; New: no decisions." in chart.desc
    assert [label.text for label in chart.labels[-5:]] == ["0%", "25%", "50%", "75%", "100%"]


def stage(name, avg, p90, low, high):
    return {
        "stage_name": name,
        "avg_hours_to_decision": avg,
        "p90_hours_to_decision": p90,
        "sla_hours_low": low,
        "sla_hours_high": high,
    }


def test_stage_bars_share_a_scale_with_their_sla_lines():
    chart = charts.stage_hours_chart(
        [stage("Legal Review", 21.6, 44, 24, 48), stage("Finance", 17, 27.4, None, None)]
    )

    # The longest figure is the 48 h SLA: the scale runs to 50 h.
    assert [bar.width for bar in chart.bars] == pytest.approx(
        [PLOT * 21.6 / 50, PLOT * 44 / 50, PLOT * 17 / 50, PLOT * 27.4 / 50]
    )
    assert [bar.fill for bar in chart.bars] == [charts.BLUE, charts.VERMILLION] * 2
    sla_lines = sorted(line.x1 for line in chart.lines if line.dashed)
    assert sla_lines == pytest.approx([PLOT * 24 / 50, PLOT * 48 / 50])  # none for "default"
    assert "Finance: average 17 h, p90 27.4 h, SLA default" in chart.desc
    assert [label.text for label in chart.labels[-5:]] == [
        "0 h",
        "12.5 h",
        "25 h",
        "37.5 h",
        "50 h",
    ]


def test_a_stage_without_decisions_has_empty_bars():
    chart = charts.stage_hours_chart([stage("Waiting", None, None, 24, 24)])

    assert [bar.width for bar in chart.bars] == [0, 0]
    assert [bar.text for bar in chart.bars] == ["avg -", "p90 -"]


def week(day, rate, decided=4):
    return {"week": day, "sla_compliance_rate": rate, "decided": decided}


def test_weekly_columns_rise_with_compliance():
    chart = charts.weekly_compliance_chart(
        [week(date(2026, 3, 2), 0.5), week(date(2026, 3, 9), 1.0), week(date(2026, 3, 16), 0)]
    )

    heights = [bar.height for bar in chart.bars]
    assert heights == [charts.WEEK_PLOT_HEIGHT / 2, charts.WEEK_PLOT_HEIGHT, 0]
    assert all(
        bar.y + bar.height == pytest.approx(chart.bars[0].y + heights[0]) for bar in chart.bars
    )
    assert [bar.text for bar in chart.bars] == ["50%", "100%", "0%"]
    assert {"Mar 2", "Mar 9", "Mar 16"} <= {label.text for label in chart.labels}
    assert "week of Mar 9: 100% of 4" in chart.desc


def test_many_weeks_label_only_some_and_stay_inside():
    weeks = [week(date.fromordinal(date(2026, 1, 5).toordinal() + 7 * n), 0.9) for n in range(52)]

    chart = charts.weekly_compliance_chart(weeks)

    week_labels = [label for label in chart.labels if label.anchor == "middle"]
    assert len(week_labels) <= charts.MAX_WEEK_LABELS
    assert all(bar.text == "" for bar in chart.bars)  # no room for figures over 52 columns
    assert max(bar.x + bar.width for bar in chart.bars) <= WIDTH


def test_empty_sections_draw_empty_charts():
    assert charts.completion_chart([]).bars == []
    assert charts.stage_hours_chart([]).bars == []
    assert charts.weekly_compliance_chart([]).bars == []
