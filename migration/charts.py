"""The migration pages' pictures, as server-rendered SVG (core.charts draws the
generic ones)."""

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import mark_safe

from core.charts import stacked_bars
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


# --- the forecast's charts (the what-if page redraws them on every slider change) -------

CW, CH, PAD_L, PAD_B, PAD_T = 600, 200, 48, 22, 10
COST_COLOURS = {
    "storage_standard": "#0b5cad",
    "storage_cold": "#6aa2dc",
    "requests": "#e0a100",
    "retrieval": "#b3541e",
    "egress": "#7a3e9d",
}


def _scale(low, high, size, offset=0.0):
    span = (high - low) or 1.0
    return lambda v: offset + (v - low) / span * size


def _polyline(points, klass, dash=""):
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline class="{klass}" fill="none" points="{coords}"{extra}/>'


def _svg(klass, title, desc, body):
    return mark_safe(
        f'<svg class="chart {klass}" viewBox="0 0 {CW} {CH}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f"<desc>{escape(desc)}</desc>{body}</svg>"
    )


def _axes(top_label, left_label, right_label):
    bottom = CH - PAD_B
    return (
        f'<line class="axis" x1="{PAD_L}" y1="{bottom}" x2="{CW}" y2="{bottom}"/>'
        f'<line class="axis" x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{bottom}"/>'
        f'<text class="tick" x="2" y="{PAD_T + 8}">{escape(top_label)}</text>'
        f'<text class="tick" x="{PAD_L}" y="{CH - 6}">{escape(left_label)}</text>'
        f'<text class="tick" x="{CW - 90}" y="{CH - 6}">{escape(right_label)}</text>'
    )


def cumulative_tb(actual, planned, plan_start_bytes=0.0):
    """Cumulative TB over time: stored so far (solid) and the plan from now (dashed).
    `actual` and `planned` are [(datetime, bytes)]; the plan adds to what is stored."""
    plan = [(t, plan_start_bytes + b) for t, b in planned]
    points = actual + plan
    if len(points) < 2:
        return _svg("cumulative", "Cumulative TB over time", "no data yet", "")
    t0, t1 = min(t for t, _ in points), max(t for t, _ in points)
    top = max(b for _, b in points) / 1e12 or 1.0
    sx = _scale(t0.timestamp(), t1.timestamp(), CW - PAD_L, PAD_L)
    sy = _scale(0, top, -(CH - PAD_B - PAD_T), CH - PAD_B)

    def xy(series):
        return [(sx(t.timestamp()), sy(b / 1e12)) for t, b in series]

    body = _axes(f"{top:.3g} TB", f"{timezone.localtime(t0):%Y-%m-%d}",
                 f"{timezone.localtime(t1):%Y-%m-%d}")  # fmt: skip
    if len(actual) > 1:
        body += _polyline(xy(actual), "actual")
    if len(plan) > 1:
        body += _polyline(xy(plan), "plan", "6 4")
    desc = f"{top:.3g} TB by {timezone.localtime(t1):%Y-%m-%d}; solid: stored, dashed: plan"
    return _svg("cumulative", "Cumulative TB over time, plan against actual", desc, body)


def cost_area(rows, currency="USD"):
    """Cost per month as a stacked area, one band per cost part."""
    if not rows:
        return _svg("cost", "Cost per month", "no months", "")
    top = max(r["total"] for r in rows) or 1.0
    step = (CW - PAD_L) / max(1, len(rows) - 1)
    sy = _scale(0, top, -(CH - PAD_B - PAD_T), CH - PAD_B)
    xs = [PAD_L + i * step for i in range(len(rows))]
    below = [0.0] * len(rows)
    bands = []
    for part, colour in COST_COLOURS.items():
        above = [b + r[part] for b, r in zip(below, rows, strict=True)]
        upper = [(x, sy(v)) for x, v in zip(xs, above, strict=True)]
        lower = [(x, sy(v)) for x, v in zip(reversed(xs), reversed(below), strict=True)]
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in upper + lower)
        label = part.replace("_", " ")
        bands.append(
            f'<polygon class="band {part}" fill="{colour}" fill-opacity="0.8" '
            f'points="{coords}"><title>{label}</title></polygon>'
        )
        below = above
    body = _axes(f"{top:,.0f} {currency}", rows[0]["month"], rows[-1]["month"]) + "".join(bands)
    desc = f"from {rows[0]['month']} to {rows[-1]['month']}, at most {top:,.0f} {currency} a month"
    return _svg("cost", "Cost per month, stacked by part", desc, body)
