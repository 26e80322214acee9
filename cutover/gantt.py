"""Server-rendered Gantt chart (SVG): bars grouped by workstream, milestones as diamonds,
dependency arrows, the critical path in its own colour, a today line, baseline ghost bars,
and a week or month scale. Plain data in, one SVG string out; no JavaScript needed to
read it, and it prints (it scales with its viewBox).

Row: {"id", "code", "name", "workstream", "kind", "start", "finish", "critical",
"percent", "total_slack", "baseline_start", "baseline_finish", "href"}.
Link: {"pred", "succ", "kind" ("FS"|"SS"), "critical"}.
"""

from datetime import date, timedelta
from html import escape

ZOOMS = {"week": 22, "month": 6}  # pixels per calendar day
LABEL_W = 300
ROW_H = 26
HEAD_H = 46
COLOURS = {"task": "#2f6db3", "buffer": "#b7791f", "critical": "#c62828", "milestone": "#37474f"}
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


class _Scale:
    def __init__(self, first, last, ppd):
        self.origin = first - timedelta(days=first.weekday() + 7)
        self.end = last + timedelta(days=14)
        self.ppd = ppd

    def x(self, day):
        return LABEL_W + (day - self.origin).days * self.ppd

    @property
    def width(self):
        return self.x(self.end) + 10

    def days(self):
        day = self.origin
        while day < self.end:
            yield day
            day += timedelta(days=1)


def _fmt(number):
    return f"{number:.1f}".rstrip("0").rstrip(".")


def _header(scale, zoom, height):
    parts = ['<g class="scale" font-size="11" fill="#444">']
    for day in scale.days():
        x = _fmt(scale.x(day))
        first_label = day == scale.origin and day.day < 24
        if day.day == 1 or first_label:
            parts.append(
                f'<text x="{_fmt(scale.x(day) + 3)}" y="16">'
                f"{MONTHS[day.month - 1]} {day.year}</text>"
            )
            parts.append(f'<line x1="{x}" y1="2" x2="{x}" y2="{height}" stroke="#bbb"/>')
        if zoom == "week" and day.weekday() >= 5:
            parts.append(
                f'<rect x="{x}" y="{HEAD_H}" width="{scale.ppd}" height="{height - HEAD_H}" '
                'fill="#f3f3f3"/>'
            )
        if day.weekday() == 0:
            parts.append(f'<line x1="{x}" y1="24" x2="{x}" y2="{height}" stroke="#e4e4e4"/>')
            parts.append(f'<text x="{_fmt(scale.x(day) + 2)}" y="38">{day.day}</text>')
    parts.append(f'<line x1="0" y1="{HEAD_H}" x2="{scale.width}" y2="{HEAD_H}" stroke="#999"/>')
    parts.append("</g>")
    return parts


def _colour(row):
    if row["critical"]:
        return COLOURS["critical"]
    return COLOURS.get(row["kind"], COLOURS["task"])


def _diamond(cx, cy, r, fill, extra=""):
    corners = [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    points = " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in corners)
    return f'<polygon points="{points}" {fill} {extra}/>'


def _ghost(row, scale, y):
    start, finish = row.get("baseline_start"), row.get("baseline_finish")
    if not start or not finish:
        return ""
    if row["kind"] == "milestone":
        return _diamond(
            scale.x(start),
            y + ROW_H / 2,
            8,
            'fill="none" stroke="#888"',
            'class="ghost" stroke-dasharray="2 2"',
        )
    x1, x2 = scale.x(start), scale.x(finish) + scale.ppd
    return (
        f'<rect class="ghost" x="{_fmt(x1)}" y="{y + ROW_H - 7}" width="{_fmt(x2 - x1)}" '
        'height="4" fill="#9e9e9e" opacity="0.8"/>'
    )


def _label(row, y):
    text = escape(f"{row['code']}  {row['name']}")
    weight = ' font-weight="600"' if row["critical"] else ""
    return f'<text x="12" y="{y + 17}" font-size="12"{weight}>{text[:48]}</text>'


def _describe(row):
    slack = row.get("total_slack")
    when = (
        row["start"].isoformat()
        if row["kind"] == "milestone"
        else f"{row['start']} – {row['finish']}"
    )
    bits = [f"{row['code']} {row['name']}", when]
    if slack is not None:
        bits.append(f"total slack {slack} working days")
    if row["critical"]:
        bits.append("critical")
    if row.get("baseline_finish"):
        bits.append(f"baseline {row['baseline_start']} – {row['baseline_finish']}")
    return escape(", ".join(bits))


def _bar(row, scale, y):
    colour, title = _colour(row), _describe(row)
    cls = "bar critical" if row["critical"] else "bar"
    attrs = (
        f'class="{cls} kind-{row["kind"]}" data-task="{row["id"]}" '
        f'data-code="{escape(row["code"])}" '
        f'data-start="{row["start"].isoformat()}" data-kind="{row["kind"]}"'
    )
    if row["kind"] == "milestone":
        shape = _diamond(scale.x(row["start"]), y + ROW_H / 2, 8, f'fill="{colour}"')
    else:
        x1, x2 = scale.x(row["start"]), scale.x(row["finish"]) + scale.ppd
        width, done = x2 - x1, (x2 - x1) * (row.get("percent") or 0) / 100
        shape = (
            f'<rect x="{_fmt(x1)}" y="{y + 5}" width="{_fmt(width)}" height="13" rx="2" '
            f'fill="{colour}" opacity="0.85"/>'
            f'<rect x="{_fmt(x1)}" y="{y + 15}" width="{_fmt(done)}" height="3" fill="#1b1b1b"/>'
        )
    href = escape(row.get("href") or "#")
    return f'<a href="{href}" {attrs} aria-label="{title}"><title>{title}</title>{shape}</a>'


def _ends(row, scale, y):
    mid = y + ROW_H / 2
    if row["kind"] == "milestone":
        x = scale.x(row["start"])
        return (x - 8, mid), (x + 8, mid)
    return (scale.x(row["start"]), mid), (scale.x(row["finish"]) + scale.ppd, mid)


def _arrow(link, pos):
    (p_start, p_end), (s_start, _s_end) = pos[link["pred"]], pos[link["succ"]]
    x1, y1 = p_end if link["kind"] == "FS" else p_start
    x2, y2 = s_start
    step = 6 if link["kind"] == "FS" else -6
    if (link["kind"] == "FS" and x2 >= x1 + 12) or (link["kind"] == "SS" and x2 >= x1):
        d = f"M{_fmt(x1)},{_fmt(y1)} h{step} V{_fmt(y2)} H{_fmt(x2 - 2)}"
    else:
        turn = y2 - ROW_H / 2 if y2 > y1 else y2 + ROW_H / 2
        d = (
            f"M{_fmt(x1)},{_fmt(y1)} h{step} V{_fmt(turn)} H{_fmt(x2 - 10)} "
            f"V{_fmt(y2)} H{_fmt(x2 - 2)}"
        )
    colour = COLOURS["critical"] if link["critical"] else "#607d8b"
    cls = "link critical" if link["critical"] else "link"
    marker = "arrow-critical" if link["critical"] else "arrow"
    return (
        f'<path class="{cls}" d="{d}" fill="none" stroke="{colour}" stroke-width="1.3" '
        f'marker-end="url(#{marker})"/>'
    )


def _defs():
    return (
        "<defs>"
        '<marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#607d8b"/></marker>'
        '<marker id="arrow-critical" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" '
        'markerHeight="7" orient="auto">'
        f'<path d="M0,0 L8,4 L0,8 z" fill="{COLOURS["critical"]}"/></marker>'
        "</defs>"
    )


def _legend(y):
    items = [
        (COLOURS["task"], "task"),
        (COLOURS["critical"], "critical path"),
        (COLOURS["buffer"], "buffer"),
        ("#9e9e9e", "baseline"),
    ]
    parts, x = ['<g class="legend" font-size="11">'], 12
    for colour, text in items:
        parts.append(f'<rect x="{x}" y="{y}" width="14" height="9" fill="{colour}"/>')
        parts.append(f'<text x="{x + 18}" y="{y + 9}">{text}</text>')
        x += 26 + 7 * len(text)
    parts.append(_diamond(x + 6, y + 5, 6, f'fill="{COLOURS["milestone"]}"'))
    parts.append(f'<text x="{x + 16}" y="{y + 9}">milestone</text></g>')
    return "".join(parts)


def render(rows, links, *, zoom="week", today=None, title="Roadmap"):
    """The SVG for `rows` (in display order) and `links`."""
    if zoom not in ZOOMS:
        raise ValueError(f"zoom must be one of {', '.join(ZOOMS)}")
    today = today or date.today()
    dated = [r for r in rows if r.get("start")]
    days = [r["start"] for r in dated] + [r["finish"] for r in dated]
    days += [r[k] for r in dated for k in ("baseline_start", "baseline_finish") if r.get(k)]
    scale = _Scale(min(days, default=today), max(days, default=today), ZOOMS[zoom])
    body, pos, y, stream = [], {}, HEAD_H, None
    for row in dated:
        if row["workstream"] != stream:
            stream = row["workstream"]
            body.append(
                f'<rect x="0" y="{y}" width="{scale.width}" height="{ROW_H}" fill="#eef2f7"/>'
            )
            body.append(
                f'<text class="workstream" x="6" y="{y + 17}" font-size="12" '
                f'font-weight="700">{escape(stream)}</text>'
            )
            y += ROW_H
        body += [_label(row, y), _ghost(row, scale, y), _bar(row, scale, y)]
        pos[row["id"]] = _ends(row, scale, y)
        y += ROW_H
    arrows = [_arrow(link, pos) for link in links if link["pred"] in pos and link["succ"] in pos]
    height = y + 30
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" class="gantt" role="img" '
        'aria-labelledby="gantt-title" '
        f'width="{scale.width}" height="{height}" viewBox="0 0 {scale.width} {height}" '
        f'data-zoom="{zoom}" data-px-per-day="{scale.ppd}" '
        f'data-origin="{scale.origin.isoformat()}" '
        'font-family="system-ui, sans-serif">',
        f'<title id="gantt-title">{escape(title)}</title>',
        _defs(),
        *_header(scale, zoom, height - 30),
        f'<line x1="{LABEL_W - 4}" y1="0" x2="{LABEL_W - 4}" y2="{height - 30}" stroke="#999"/>',
        *arrows,
        *body,
    ]
    if scale.origin <= today <= scale.end:
        x = _fmt(scale.x(today) + scale.ppd / 2)
        parts.append(
            f'<g class="today"><line x1="{x}" y1="{HEAD_H - 6}" x2="{x}" y2="{height - 30}" '
            f'stroke="#d81b60" stroke-dasharray="4 3"/>'
            f'<text x="{_fmt(scale.x(today) + scale.ppd + 3)}" '
            f'y="{height - 34}" font-size="10" fill="#d81b60">today</text></g>'
        )
    parts += [_legend(height - 20), "</svg>"]
    return "".join(parts)
