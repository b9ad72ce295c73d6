"""The webhook page's 24-hour chart (webhooks/admin/chart.py): axes, hour labels, totals."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from webhooks.admin.chart import PLOT_HEIGHT, TOP, axis_ticks, chart_context, render_chart

START = datetime(2026, 12, 1, 13, 0, tzinfo=UTC)


def series(counts):
    return [
        {"hour": START + timedelta(hours=n), "successes": ok, "failures": failed}
        for n, (ok, failed) in enumerate(counts)
    ]


@pytest.mark.parametrize(
    ("peak", "ticks"),
    [(0, [0, 1]), (1, [0, 1]), (3, [0, 1, 2, 3]), (7, [0, 2, 4, 6, 8]), (60, [0, 20, 40, 60]), (999, [0, 500, 1000])],
)
def test_axis_ticks_are_round_and_cover_the_peak(peak, ticks):
    assert axis_ticks(peak) == ticks


def test_bars_are_stacked_in_proportion_with_an_hour_label_each():
    context = chart_context(series([(6, 2)] + [(0, 0)] * 22 + [(1, 0)]))
    first, *_, last = context["bars"]
    assert [bar.label for bar in context["bars"]] == [f"{(13 + n) % 24:02d}" for n in range(24)]
    assert context["ticks"][-1].value == 8 and context["ticks"][-1].y == TOP  # the top tick is the plot's top
    assert first.ok_height == PLOT_HEIGHT * 6 / 8 and first.failed_height == PLOT_HEIGHT * 2 / 8
    assert first.failed_y + first.failed_height == first.ok_y  # failures stacked on the successes
    assert first.tooltip == "2026-12-01 13:00 to 14:00: 6 succeeded, 2 failed"
    assert (context["total"], context["successes"], context["failures"], context["success_rate"]) == (9, 7, 2, 77.8)
    assert last.ok_height == PLOT_HEIGHT / 8


def test_the_rendered_chart_has_axes_labels_and_totals_and_loads_nothing():
    html = render_chart(series([(3, 1)] * 24))
    assert "<strong>96 attempts</strong> in the last 24 hours" in html
    assert "72 succeeded" in html and "24 failed (75.0 % succeeded)" in html
    assert len(re.findall(r"<line ", html)) == len(axis_ticks(4)) + 2  # gridlines, the y and x axes
    assert ">attempts</text>" in html and "hour (UTC)" in html
    for label in ("13", "23", "00", "12"):
        assert f">{label}</text>" in html
    assert "<script" not in html and "http" not in html  # inline SVG: no scripts, nothing fetched


def test_a_quiet_day_still_draws_axes():
    html = render_chart(series([(0, 0)] * 24))
    assert "<strong>0 attempts</strong>" in html and "% succeeded" not in html
    assert "<rect" not in html and ">0</text>" in html and ">1</text>" in html
