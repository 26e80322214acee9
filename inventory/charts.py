"""Server-rendered SVG charts of the inventory dashboard (no JavaScript, no CDN).

Every chart is an accessible image: role="img", a <title>, and a <desc> that states the
numbers, so a screen reader gets what the picture shows.
"""

from django.utils.html import escape
from django.utils.safestring import mark_safe

PALETTE = ["#0b5cad", "#b25e00", "#1b7f3b", "#b3261e", "#6b3fa0", "#00796b", "#5b6776", "#8a6d00"]


def _svg(kind, width, height, title, desc, body):
    return mark_safe(
        f'<svg class="chart chart-{kind}" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" data-chart="{kind}">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>{''.join(body)}</svg>"
    )


def _empty(title):
    return mark_safe(f'<p class="muted chart-empty">{escape(title)}: no data yet.</p>')


def _nice(value):
    """A round axis maximum at or above `value`."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _fmt(value):
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{value:g}"


def hbars(rows, *, title, unit="studies", width=560):
    """Horizontal bars: rows = [(label, value)], largest first."""
    if not rows:
        return _empty(title)
    bar_h, gap, left, right = 22, 6, 90, 70
    height = len(rows) * (bar_h + gap) + gap
    top = max(value for _, value in rows) or 1
    body = []
    for index, (label, value) in enumerate(rows):
        y = gap + index * (bar_h + gap)
        w = (width - left - right) * value / top
        color = PALETTE[index % len(PALETTE)]
        body.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" class="tick">'
            f"{escape(label)}</text>"
            f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}">'
            f"<title>{escape(label)}: {value} {escape(unit)}</title></rect>"
            f'<text x="{left + w + 4:.1f}" y="{y + 15}" class="tick">{_fmt(value)}</text>'
        )
    desc = "; ".join(f"{label}: {value} {unit}" for label, value in rows)
    return _svg("hbars", width, height, title, desc, body)


def stacked_columns(columns, stacks, *, title, width=560, height=260):
    """Columns per label, each stacked by series: stacks = {series: [value per column]}."""
    totals = [sum(values[i] for values in stacks.values()) for i in range(len(columns))]
    if not columns or not any(totals):
        return _empty(title)
    left, bottom, top_pad, legend_h = 44, 34, 8, 18 * ((len(stacks) + 5) // 6)
    plot_h = height - bottom - top_pad - legend_h
    plot_w = width - left - 6
    top = _nice(max(totals))
    slot = plot_w / len(columns)
    step = 1 if len(columns) <= 10 else -(-len(columns) // 8)  # at most ~8 labels
    body = [_y_axis(left, top_pad, plot_h, top, width)]
    for i, label in enumerate(columns):
        x, base = left + i * slot + slot * 0.12, top_pad + plot_h
        for s, (name, values) in enumerate(stacks.items()):
            h = plot_h * values[i] / top
            if values[i]:
                base -= h
                body.append(
                    f'<rect x="{x:.1f}" y="{base:.1f}" width="{slot * 0.76:.1f}" height="{h:.1f}" '
                    f'fill="{PALETTE[s % len(PALETTE)]}"><title>{escape(label)} {escape(name)}: '
                    f"{values[i]}</title></rect>"
                )
        if i % step == 0 or label == "undated":
            last = i == len(columns) - 1
            anchor, at = ("end", 0.76) if last else ("middle", 0.38)
            body.append(
                f'<text x="{x + slot * at:.1f}" y="{top_pad + plot_h + 14}" '
                f'text-anchor="{anchor}" class="tick">{escape(str(label))}</text>'
            )
    body.append(_legend(list(stacks), left, height - legend_h + 4))
    desc = "; ".join(f"{c}: {t}" for c, t in zip(columns, totals, strict=True))
    return _svg("columns", width, height, title, desc, body)


def _y_axis(left, top_pad, plot_h, top, width):
    lines = []
    for fraction in (0, 0.5, 1):
        y = top_pad + plot_h * (1 - fraction)
        lines.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - 6}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{_fmt(top * fraction)}</text>"
        )
    return "".join(lines)


def _legend(names, x, y):
    items = []
    for i, name in enumerate(names):
        col, row = i % 6, i // 6
        cx, cy = x + col * 90, y + row * 18
        items.append(
            f'<rect x="{cx}" y="{cy}" width="10" height="10" fill="{PALETTE[i % len(PALETTE)]}"/>'
            f'<text x="{cx + 14}" y="{cy + 9}" class="tick">{escape(str(name))}</text>'
        )
    return f'<g class="legend">{"".join(items)}</g>'


def growth_line(actual, projection, *, title, width=960, height=240):
    """Cumulative studies by month, solid, and the projection on from the last month, dashed.

    `actual` and `projection`: [(date, value)]; the projection starts at the last actual point.
    """
    points = actual + projection
    if len(actual) < 2:
        return _empty(title)
    left, bottom, top_pad = 52, 24, 8
    plot_w, plot_h = width - left - 8, height - bottom - top_pad
    start, end = points[0][0], points[-1][0]
    span = max((end - start).days, 1)
    top = _nice(max(v for _, v in points))

    def xy(when, value):
        x = left + (when - start).days / span * plot_w
        return f"{x:.1f},{top_pad + plot_h * (1 - value / top):.1f}"

    body = [_y_axis(left, top_pad, plot_h, top, width)]
    body.append(
        f'<polyline class="actual" fill="none" stroke="{PALETTE[0]}" stroke-width="2" '
        f'points="{" ".join(xy(t, v) for t, v in actual)}"><title>studies so far</title></polyline>'
    )
    if len(projection) > 1:
        body.append(
            f'<polyline class="projection" fill="none" stroke="{PALETTE[1]}" stroke-width="2" '
            f'stroke-dasharray="6 4" points="{" ".join(xy(t, v) for t, v in projection)}">'
            f"<title>projection</title></polyline>"
        )
    for when, anchor in ((start, "start"), (end, "end")):
        x = left if anchor == "start" else width - 8
        body.append(
            f'<text x="{x}" y="{height - 6}" text-anchor="{anchor}" class="tick">'
            f"{when:%Y-%m}</text>"
        )
    desc = f"{actual[-1][1]} studies by {actual[-1][0]:%Y-%m}"
    if len(projection) > 1:
        desc += f"; projected {projection[-1][1]} by {projection[-1][0]:%Y-%m}"
    return _svg("growth", width, height, title, desc, body)


def coverage_bar(segments, *, title, width=640, height=26):
    """One bar split by range status: segments = [(label, count, css class)]."""
    total = sum(count for _, count, _ in segments)
    if not total:
        return _empty(title)
    x, body = 0.0, []
    for label, count, css in segments:
        w = width * count / total
        if count:
            body.append(
                f'<rect x="{x:.1f}" y="0" width="{w:.1f}" height="{height}" class="seg-{css}">'
                f"<title>{escape(label)}: {count}</title></rect>"
            )
        x += w
    desc = "; ".join(f"{label}: {count}" for label, count, _ in segments)
    return _svg("coverage", width, height, title, desc, body)
