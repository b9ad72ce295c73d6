"""The webhook page's 24-hour chart: stacked bars per hour with axes, hour labels and totals.

Inline SVG drawn by a template (templates/admin/webhooks/hourly_chart.html) from the
numbers computed here: nothing is loaded from the internet and no JavaScript runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from django.template.loader import render_to_string
from django.utils import timezone

SUCCESS_COLOUR = "#2e7d32"
FAILURE_COLOUR = "#c62828"

# Geometry, in SVG pixels.
SLOT = 26  # one hour: a bar and the gap after it
BAR = 18
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 40
PLOT_HEIGHT = 140


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class Bar:
    x: float
    centre: float
    label: str
    tooltip: str
    ok_y: float
    ok_height: float
    failed_y: float
    failed_height: float


def axis_ticks(peak: int, most: int = 4) -> list[int]:
    """Round y-axis ticks from 0 up to at least `peak`: a step of 1, 2 or 5 times a power of ten, at most
    `most` steps (0, 1, 2, 3 for 3; 0, 2, 4, 6, 8 for 7; 0, 20, 40, 60 for 60)."""
    peak = max(peak, 1)
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if math.ceil(peak / step) <= most:
                return [step * n for n in range(math.ceil(peak / step) + 1)]
        magnitude *= 10


def _hour_label(hour: datetime) -> str:
    return f"{timezone.localtime(hour):%H}"


def chart_context(series: list[dict]) -> dict:
    """What the template draws, from `webhooks.selectors.webhook_hourly` (oldest hour first)."""
    ticks = axis_ticks(max([point["successes"] + point["failures"] for point in series] + [0]))
    top = ticks[-1]
    base = TOP + PLOT_HEIGHT

    def height(count: int) -> float:
        return round(count / top * PLOT_HEIGHT, 1)

    bars = []
    for index, point in enumerate(series):
        x = LEFT + index * SLOT + (SLOT - BAR) / 2
        ok_height, failed_height = height(point["successes"]), height(point["failures"])
        start = timezone.localtime(point["hour"])
        bars.append(
            Bar(
                x=x,
                centre=x + BAR / 2,
                label=_hour_label(point["hour"]),
                tooltip=(
                    f"{start:%Y-%m-%d %H}:00 to {(start.hour + 1) % 24:02d}:00: "
                    f"{point['successes']} succeeded, {point['failures']} failed"
                ),
                ok_y=base - ok_height,
                ok_height=ok_height,
                failed_y=base - ok_height - failed_height,
                failed_height=failed_height,
            )
        )
    successes = sum(point["successes"] for point in series)
    failures = sum(point["failures"] for point in series)
    total = successes + failures
    width = LEFT + len(series) * SLOT + RIGHT
    return {
        "bars": bars,
        "ticks": [Tick(value, base - height(value)) for value in ticks],
        "total": total,
        "successes": successes,
        "failures": failures,
        "success_rate": round(100 * successes / total, 1) if total else None,
        "peak": max([point["successes"] + point["failures"] for point in series] + [0]),
        "timezone": timezone.get_current_timezone_name(),
        "width": width,
        "height": TOP + PLOT_HEIGHT + BOTTOM,
        "left": LEFT,
        "right": width - RIGHT,
        "base": base,
        "top": TOP,
        "label_y": base + 14,
        "title_y": base + 32,
        "middle": LEFT + len(series) * SLOT / 2,
        "y_title_x": 12,
        "y_title_y": TOP + PLOT_HEIGHT / 2,
        "success_colour": SUCCESS_COLOUR,
        "failure_colour": FAILURE_COLOUR,
    }


def render_chart(series: list[dict]) -> str:
    return render_to_string("admin/webhooks/hourly_chart.html", chart_context(series))
