"""Small server-rendered SVG charts (no JavaScript, no chart library).

Every chart has a <title> and a text table next to it on the page, so it is readable
without the picture; values are also printed on the bars.
"""

from django.utils.html import escape
from django.utils.safestring import mark_safe

FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def hbar_chart(title, rows, series, *, max_value=None, unit="", label_width=150, width=560):
    """Horizontal bars, one group per row: rows = [(label, {key: value})], series =
    [(key, legend label, colour)]. Values are drawn as `value` + unit."""
    bar_h, gap = 14, 10
    group_h = bar_h * len(series) + gap
    top = 26
    height = top + group_h * len(rows) + 8
    top_value = max_value or max([v for _, vals in rows for v in vals.values()] + [1])
    plot = width - label_width - 60
    parts = [_open(title, width, height), _legend(series, label_width, 14)]
    for i, (label, values) in enumerate(rows):
        y = top + i * group_h
        parts.append(_text(label_width - 8, y + bar_h, label, anchor="end"))
        for j, (key, legend, colour) in enumerate(series):
            value = values.get(key, 0)
            w = plot * value / top_value if top_value else 0
            by = y + j * bar_h
            if max_value:  # a track shows the whole scale, so 0% reads as empty, not missing
                parts.append(
                    f'<rect x="{label_width}" y="{by}" width="{plot}" height="{bar_h - 2}" '
                    'fill="#eef1f4"/>'
                )
            parts.append(
                f'<rect x="{label_width}" y="{by}" width="{w:.1f}" height="{bar_h - 2}" '
                f'fill="{colour}"><title>{escape(label)}, {escape(legend)}: '
                f"{_fmt(value)}{unit}</title></rect>"
            )
            parts.append(_text(label_width + w + 4, by + bar_h - 3, f"{_fmt(value)}{unit}"))
    parts.append("</svg>")
    return mark_safe("".join(parts))


def hbar_stacked(title, rows, series, *, label_width=190, width=560):
    """One horizontal bar per row, split into its series: rows = [(label, {key: count})]."""
    bar_h, top = 18, 26
    height = top + (bar_h + 6) * len(rows) + 8
    total = max([sum(vals.values()) for _, vals in rows] + [1])
    plot = width - label_width - 40
    parts = [_open(title, width, height), _legend(series, label_width, 14)]
    for i, (label, values) in enumerate(rows):
        y, x = top + i * (bar_h + 6), label_width
        parts.append(_text(label_width - 8, y + bar_h - 5, label, anchor="end"))
        for _key, legend, colour in series:
            w = plot * values.get(_key, 0) / total
            if w:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}">'
                    f"<title>{escape(label)}, {escape(legend)}: {values[_key]}</title></rect>"
                )
            x += w
        if sum(values.values()):
            parts.append(_text(x + 4, y + bar_h - 5, str(sum(values.values()))))
    parts.append("</svg>")
    return mark_safe("".join(parts))


def stacked_columns(title, buckets, series, *, width=560, height=220):
    """Stacked columns: buckets = [(label, {key: count})], one column per bucket."""
    left, top, bottom = 34, 26, 34
    plot_h = height - top - bottom
    total = max([sum(vals.values()) for _, vals in buckets] + [1])
    step = (width - left - 8) / max(len(buckets), 1)
    parts = [
        _open(title, width, height),
        _legend(series, left, 14),
        _axis(left, top, plot_h, total),
    ]
    for i, (label, values) in enumerate(buckets):
        x, y = left + i * step + 3, top + plot_h
        for key, legend, colour in series:
            h = plot_h * values.get(key, 0) / total
            y -= h
            if h:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{step - 6:.1f}" height="{h:.1f}" '
                    f'fill="{colour}"><title>{escape(label)}, {escape(legend)}: '
                    f"{values.get(key, 0)}</title></rect>"
                )
        parts.append(_text(x + (step - 6) / 2, height - bottom + 14, label, anchor="middle"))
    parts.append("</svg>")
    return mark_safe("".join(parts))


def _open(title, width, height):
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(title)}" class="chart" {FONT}>'
        f"<title>{escape(title)}</title>"
    )


def _legend(series, x, y):
    parts = []
    for _key, legend, colour in series:
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(x + 14, y, legend))
        x += 24 + 7 * len(legend)
    return "".join(parts)


def _axis(left, top, plot_h, total):
    return (
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#9aa5b1"/>'
        + _text(left - 4, top + 8, str(total), anchor="end")
        + _text(left - 4, top + plot_h, "0", anchor="end")
    )


def _text(x, y, text, anchor="start"):
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="#1c2430">{escape(text)}</text>'
    )


def _fmt(value):
    return f"{value:.0f}" if isinstance(value, float) else str(value)
