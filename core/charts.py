"""Small server-rendered SVG charts (no JavaScript, no CDN): lines, stacked bars, strips.

Each chart is an accessible image: a <title> and a <desc> that states the latest values,
so a screen reader gets the numbers the picture shows.
"""

from django.utils.html import escape
from django.utils.safestring import mark_safe

PALETTE = ["#0b5cad", "#b25e00", "#1b7f3b", "#b3261e", "#6b3fa0", "#00796b", "#5b6776"]
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 44, 8, 10, 22


def _nice_max(value):
    if value <= 0:
        return 1
    step = 10 ** (len(str(int(value))) - 1)
    return ((int(value) // step) + 1) * step


def _frame(width, height, title, desc, body, top_value, left_label, right_label, unit):
    y0 = height - PAD_BOTTOM
    return mark_safe(
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'preserveAspectRatio="none" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>"
        f'<line x1="{PAD_LEFT}" y1="{y0}" x2="{width - PAD_RIGHT}" y2="{y0}" class="axis"/>'
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{y0}" class="axis"/>'
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 8}" text-anchor="end" class="tick">'
        f"{top_value:g}{escape(unit)}</text>"
        f'<text x="{PAD_LEFT - 4}" y="{y0}" text-anchor="end" class="tick">0</text>'
        f'<text x="{PAD_LEFT}" y="{height - 6}" class="tick">{escape(left_label)}</text>'
        f'<text x="{width - PAD_RIGHT}" y="{height - 6}" text-anchor="end" class="tick">'
        f"{escape(right_label)}</text>{body}</svg>"
    )


def line_chart(series, *, title, unit="", width=600, height=160, time_format="%H:%M"):
    """`series`: [{"name", "points": [(datetime, value|None), ...]}] sharing one time axis."""
    times = [t for s in series for t, v in s["points"] if v is not None]
    values = [v for s in series for t, v in s["points"] if v is not None]
    if not times:
        return mark_safe(f'<p class="muted chart-empty">{escape(title)}: no data yet.</p>')
    start, end = min(times), max(times)
    span = max((end - start).total_seconds(), 1)
    top = _nice_max(max(values))
    plot_w, plot_h = width - PAD_LEFT - PAD_RIGHT, height - PAD_TOP - PAD_BOTTOM
    body, latest = [], []
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
    desc = f"{title}, latest: " + "; ".join(latest)
    return _frame(
        width,
        height,
        title,
        desc,
        "".join(body),
        top,
        start.strftime(time_format),
        end.strftime(time_format),
        unit,
    )


def stacked_bars(labels, stacks, *, title, width=600, height=180, colors=None):
    """`stacks`: {name: [value per label]} drawn as one stacked bar per label."""
    totals = [sum(values[i] for values in stacks.values()) for i in range(len(labels))]
    if not labels or not any(totals):
        return mark_safe(f'<p class="muted chart-empty">{escape(title)}: nothing to show.</p>')
    top = _nice_max(max(totals))
    plot_w, plot_h = width - PAD_LEFT - PAD_RIGHT, height - PAD_TOP - PAD_BOTTOM
    slot = plot_w / len(labels)
    colors = colors or {}
    body = []
    for i, label in enumerate(labels):
        y = PAD_TOP + plot_h
        for index, (name, values) in enumerate(stacks.items()):
            h = values[i] / top * plot_h
            if h <= 0:
                continue
            y -= h
            color = colors.get(name, PALETTE[index % len(PALETTE)])
            body.append(
                f'<rect x="{PAD_LEFT + i * slot + slot * 0.15:.1f}" y="{y:.1f}" '
                f'width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{color}">'
                f"<title>{escape(label)} · {escape(name)}: {values[i]}</title></rect>"
            )
    desc = f"{title}: " + "; ".join(
        f"{label}: {n}" for label, n in zip(labels, totals, strict=True)
    )
    return _frame(width, height, title, desc, "".join(body), top, labels[0], labels[-1], "")


def status_strip(samples, *, title, width=600, height=18):
    """One cell per sample, green when up, red when down: [(datetime, ok)] oldest first."""
    if not samples:
        return mark_safe(f'<p class="muted chart-empty">{escape(title)}: no checks yet.</p>')
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
