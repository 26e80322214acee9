"""Every chart of the product, server-rendered as SVG (no JavaScript, no CDN): lines,
stacked bars (vertical), bars (horizontal: grouped or stacked), a growth line with its
projection, a split bar and a status strip. Apps shape their data and call these.

Each chart is an accessible image: role="img", a <title> and a <desc> that states the
numbers, so a screen reader gets what the picture shows. Text and grid lines carry
default colours as presentation attributes, so a page's CSS may restyle them.
"""

from django.utils.html import escape
from django.utils.safestring import mark_safe

PALETTE = ["#0b5cad", "#b25e00", "#1b7f3b", "#b3261e", "#6b3fa0", "#00796b", "#5b6776", "#8a6d00"]
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 44, 8, 10, 22
LEGEND_ROW = 18
TICK = 'class="tick" font-size="11" fill="#52606d"'


# --- the parts every chart is made of -----------------------------------------------------


def svg(kind, width, height, title, desc, body, stretch=False):
    """The chart's frame; `kind` is its CSS class and data-chart attribute."""
    aspect = ' preserveAspectRatio="none"' if stretch else ""
    return mark_safe(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" data-chart="{kind}" '
        f'viewBox="0 0 {width} {height}" role="img"{aspect}>'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>{''.join(body)}</svg>"
    )


def empty(title, text="no data yet"):
    return mark_safe(f'<p class="muted chart-empty">{escape(title)}: {escape(text)}.</p>')


def nice_max(value):
    """A round axis maximum at or above `value`."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def fmt(value):
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    return f"{round(value, 1):g}"


def text(x, y, label, anchor="start"):
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {TICK}>{escape(label)}</text>'


def legend(entries, x, y, width):
    """[(label, colour)] flowing left to right, wrapping at `width`: (svg, rows used)."""
    items, cx, cy, rows = [], x, y, 1 if entries else 0
    for label, colour in entries:
        step = 24 + 7 * len(str(label))
        if cx > x and cx + step > width:
            cx, cy, rows = x, cy + LEGEND_ROW, rows + 1
        items.append(
            f'<rect x="{cx}" y="{cy - 9}" width="10" height="10" fill="{colour}"/>'
            + text(cx + 14, cy, str(label))
        )
        cx += step
    return f'<g class="legend">{"".join(items)}</g>', rows


def grid(left, top_pad, plot_h, top, right, unit=""):
    """Horizontal lines at 0, half and the top of the scale, with their values."""
    lines = []
    for fraction in (0, 0.5, 1):
        y = top_pad + plot_h * (1 - fraction)
        lines.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" class="grid" '
            'stroke="#d9dee3"/>' + text(left - 4, y + 4, f"{fmt(top * fraction)}{unit}", "end")
        )
    return "".join(lines)


def colours_for(names, colors=None):
    """{name: colour}: the given ones, the palette for the others, in order."""
    colors = colors or {}
    return {name: colors.get(name) or PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


# --- the charts ---------------------------------------------------------------------------


def line_chart(series, *, title, unit="", width=600, height=160, time_format="%H:%M"):
    """`series`: [{"name", "points": [(datetime, value|None), ...]}] sharing one time axis."""
    times = [t for s in series for t, v in s["points"] if v is not None]
    values = [v for s in series for t, v in s["points"] if v is not None]
    if not times:
        return empty(title)
    start, end = min(times), max(times)
    span = max((end - start).total_seconds(), 1)
    top = nice_max(max(values))
    plot_w, plot_h = width - PAD_LEFT - PAD_RIGHT, height - PAD_TOP - PAD_BOTTOM
    body, latest = [grid(PAD_LEFT, PAD_TOP, plot_h, top, width - PAD_RIGHT, unit)], []
    for index, s in enumerate(series):
        points = [
            f"{PAD_LEFT + (t - start).total_seconds() / span * plot_w:.1f},"
            f"{PAD_TOP + plot_h - v / top * plot_h:.1f}"
            for t, v in s["points"]
            if v is not None
        ]
        color = PALETTE[index % len(PALETTE)]
        body.append(
            f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{" ".join(points)}">'
            f"<title>{escape(s['name'])}</title></polyline>"
        )
        last = [v for t, v in s["points"] if v is not None]
        if last:
            latest.append(f"{s['name']}: {last[-1]:g}{unit}")
    body.append(text(PAD_LEFT, height - 6, start.strftime(time_format)))
    body.append(text(width - PAD_RIGHT, height - 6, end.strftime(time_format), "end"))
    desc = f"{title}, latest: " + "; ".join(latest)
    return svg("line", width, height, title, desc, body, stretch=True)


def stacked_bars(
    labels, stacks, *, title, width=600, height=180, colors=None, legend_below=False, kind="bars"
):
    """One bar per label, stacked by series: `stacks` = {series: [value per label]}.
    `colors` = {series: colour} (the palette for the others); `legend_below` names the
    series under the chart. With many labels only some are written under the bars."""
    totals = [sum(values[i] for values in stacks.values()) for i in range(len(labels))]
    if not labels or not any(totals):
        return empty(title, "nothing to show")
    colors = colours_for(list(stacks), colors)
    top = nice_max(max(totals))
    plot_w, plot_h = width - PAD_LEFT - PAD_RIGHT, height - PAD_TOP - PAD_BOTTOM
    slot, base_y = plot_w / len(labels), PAD_TOP + plot_h
    body = [grid(PAD_LEFT, PAD_TOP, plot_h, top, width - PAD_RIGHT)]
    for i, label in enumerate(labels):
        x, y = PAD_LEFT + i * slot + slot * 0.15, base_y
        for name, values in stacks.items():
            if values[i] <= 0:
                continue
            h = values[i] / top * plot_h
            y -= h
            body.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
                f'fill="{colors[name]}"><title>{escape(label)} · {escape(name)}: {values[i]}'
                "</title></rect>"
            )
    body += _bar_labels(labels, slot, base_y + 14)
    if legend_below:
        key, rows = legend(list(colors.items()), PAD_LEFT, height + 12, width - PAD_RIGHT)
        body.append(key)
        height += rows * LEGEND_ROW
    desc = f"{title}: " + "; ".join(f"{lab}: {n}" for lab, n in zip(labels, totals, strict=True))
    return svg(kind, width, height, title, desc, body)


def _bar_labels(labels, slot, y):
    """The labels under the bars: all of up to 10, else about 8 of them and the last."""
    count = len(labels)
    step = 1 if count <= 10 else -(-count // 8)
    shown = [i for i in range(0, count, step) if count - 1 - i >= step / 2] + [count - 1]
    return [
        text(
            PAD_LEFT + i * slot + slot * (0.85 if i == count - 1 and i else 0.5),
            y,
            str(labels[i]),
            "end" if i == count - 1 and i else "middle",
        )
        for i in shown
    ]


def hbars(rows, series, *, title, stacked=False, max_value=None, unit="", label_width=150,
          width=560):  # fmt: skip
    """Horizontal bars, one group per row: `rows` = [(label, {key: value})], `series` =
    [(key, legend label, colour or None)]. Grouped: a bar per series (over a track of the
    whole scale when `max_value` is given, so 0 reads as empty, not missing); stacked: one
    bar per row split into its series. A single series without colour takes one palette
    colour per row. The legend is drawn when there is more than one series."""
    if not rows:
        return empty(title)
    keys = [key for key, _, _ in series]
    sums = [sum(values.get(k, 0) for k in keys) for _, values in rows]
    flat = [values.get(k, 0) for _, values in rows for k in keys]
    scale = max_value or max((sums if stacked else flat) + [1])
    bar_h = 18 if stacked else 22 if len(series) == 1 else 14
    group_h = bar_h * (1 if stacked else len(series)) + 8
    top = 26 if len(series) > 1 else 6
    height = top + group_h * len(rows)
    plot = width - label_width - 60
    body = []
    if len(series) > 1:
        body.append(legend([(name, c) for _, name, c in series], label_width, 14, width)[0])
    for i, (label, values) in enumerate(rows):
        y = top + i * group_h
        body.append(text(label_width - 8, y + min(bar_h, 15), label, "end"))
        x = label_width
        for j, (key, name, colour) in enumerate(series):
            value = values.get(key, 0)
            w = plot * value / scale
            colour = colour or PALETTE[i % len(PALETTE)]
            by, bx = (y, x) if stacked else (y + j * bar_h, label_width)
            if max_value and not stacked:
                body.append(
                    f'<rect x="{bx}" y="{by}" width="{plot}" height="{bar_h - 2}" fill="#eef1f4"/>'
                )
            if w or not stacked:
                body.append(
                    f'<rect x="{bx:.1f}" y="{by}" width="{w:.1f}" height="{bar_h - 2}" '
                    f'fill="{colour}"><title>{escape(label)}, {escape(name)}: '
                    f"{fmt(value)}{unit}</title></rect>"
                )
            if stacked:
                x += w
            else:
                body.append(text(bx + w + 4, by + bar_h - 5, f"{fmt(value)}{unit}"))
        if stacked and sums[i]:
            body.append(text(x + 4, y + bar_h - 5, f"{fmt(sums[i])}{unit}"))
    desc = "; ".join(
        f"{label}: " + ", ".join(f"{name} {fmt(values.get(k, 0))}{unit}" for k, name, _ in series)
        for label, values in rows
    )
    return svg("hbars", width, height, title, desc, body)


def growth_line(actual, projection, *, title, width=960, height=240):
    """Cumulative studies by month, solid, and the projection on from the last month, dashed.

    `actual` and `projection`: [(date, value)]; the projection starts at the last actual point.
    """
    points = actual + projection
    if len(actual) < 2:
        return empty(title)
    left, bottom, top_pad = 52, 24, 8
    plot_w, plot_h = width - left - 8, height - bottom - top_pad
    start, end = points[0][0], points[-1][0]
    span = max((end - start).days, 1)
    top = nice_max(max(v for _, v in points))

    def xy(when, value):
        x = left + (when - start).days / span * plot_w
        return f"{x:.1f},{top_pad + plot_h * (1 - value / top):.1f}"

    body = [grid(left, top_pad, plot_h, top, width - 6)]
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
    body.append(text(left, height - 6, f"{start:%Y-%m}"))
    body.append(text(width - 8, height - 6, f"{end:%Y-%m}", "end"))
    desc = f"{actual[-1][1]} studies by {actual[-1][0]:%Y-%m}"
    if len(projection) > 1:
        desc += f"; projected {projection[-1][1]} by {projection[-1][0]:%Y-%m}"
    return svg("growth", width, height, title, desc, body)


def split_bar(segments, *, title, width=640, height=26):
    """One bar split into parts: segments = [(label, count, css class)]."""
    total = sum(count for _, count, _ in segments)
    if not total:
        return empty(title)
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
    return svg("coverage", width, height, title, desc, body)


def status_strip(samples, *, title, width=600, height=18):
    """One cell per sample, green when up, red when down: [(datetime, ok)] oldest first."""
    if not samples:
        return empty(title, "no checks yet")
    cell = width / len(samples)
    down = sum(1 for _, ok in samples if not ok)
    cells = "".join(
        f'<rect x="{i * cell:.1f}" y="0" width="{cell + 0.5:.1f}" height="{height}" '
        f'class="{"up" if ok else "down"}"><title>{at:%H:%M:%S} {"up" if ok else "down"}</title>'
        "</rect>"
        for i, (at, ok) in enumerate(samples)
    )
    return mark_safe(
        f'<svg class="strip" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        f'role="img" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f"<desc>{len(samples)} checks, {down} down</desc>{cells}</svg>"
    )
