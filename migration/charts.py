"""The migration pages' pictures, as server-rendered SVG (commandcenter.charts draws the
generic ones)."""

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from commandcenter.charts import stacked_bars
from migration.throttle import DAYS, HOURS

CELL, LABEL_W, HEAD_H = 18, 34, 14


def throughput(per_minute):
    """Instances per second, one bar per minute over the last hour."""
    labels = [
        f"{timezone.localtime(datetime.fromtimestamp(stamp, UTC)):%H:%M}" for stamp, _ in per_minute
    ]
    values = [round(rate, 2) for _stamp, rate in per_minute]
    return stacked_bars(
        labels, {"instances/s": values}, title="Instances per second, minute by minute"
    )


def schedule_heatmap(table, pacs_limit):
    """A 7 × 24 grid of the wave's association limits: the darker, the more associations
    (hours at the PACS's own limit are darkest); paused hours (0) are outlined in red."""
    table = table or [[None] * HOURS for _ in DAYS]
    width, height = LABEL_W + HOURS * CELL, HEAD_H + len(DAYS) * CELL
    cells = [_hour_labels()]
    paused = 0
    for row, (day, hours) in enumerate(zip(DAYS, table, strict=True)):
        y = HEAD_H + row * CELL
        cells.append(f'<text x="0" y="{y + 13}" class="tick">{day.capitalize()}</text>')
        for hour, limit in enumerate(hours):
            value = pacs_limit if limit is None else limit
            paused += value == 0
            cells.append(_cell(LABEL_W + hour * CELL, y, day, hour, limit, value, pacs_limit))
    desc = f"{paused} paused hour(s) a week; other hours allow up to {pacs_limit} association(s)"
    return mark_safe(
        f'<svg class="chart heatmap" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>Weekly schedule</title>'
        f"<desc>{escape(desc)}</desc>{''.join(cells)}</svg>"
    )


def _hour_labels():
    return "".join(
        f'<text x="{LABEL_W + hour * CELL + 2}" y="10" class="tick">{hour}</text>'
        for hour in range(0, HOURS, 3)
    )


def _cell(x, y, day, hour, limit, value, pacs_limit):
    shade = 0.2 + 0.8 * min(1, value / max(1, pacs_limit))
    klass = "paused" if value == 0 else "open"
    label = "paused" if value == 0 else f"{value} association(s)"
    if limit is None:
        label += " (PACS limit)"
    return (
        f'<rect x="{x}" y="{y}" width="{CELL - 1}" height="{CELL - 1}" class="{klass}" '
        f'fill="#0b5cad" fill-opacity="{shade:.2f}"><title>{day} {hour:02d}:00 {escape(label)}'
        f"</title></rect>"
    )
