"""The server-rendered Gantt chart: bars, diamonds, arrows, critical path, today, zoom."""

import itertools
import re
from datetime import date
from xml.etree import ElementTree

import pytest

from cutover import gantt, planning
from tests.cutover.factories import worked_example

pytestmark = pytest.mark.django_db
SVG = "{http://www.w3.org/2000/svg}"
NAMES = itertools.count()


def chart(zoom="week", today=date(2026, 3, 4)):
    roadmap = worked_example(name=f"chart {next(NAMES)}")
    rows, links = planning.gantt_data(roadmap, href=lambda t: f"/roadmap/tasks/{t.pk}/")
    return roadmap, gantt.render(rows, links, zoom=zoom, today=today, title="Worked example")


def test_the_chart_is_well_formed_svg_with_a_bar_per_task_and_a_diamond_per_milestone():
    _roadmap, svg = chart()
    root = ElementTree.fromstring(svg)
    bars = root.findall(f".//{SVG}a")
    assert len(bars) == 8
    kinds = {a.get("data-code"): a.get("data-kind") for a in bars}
    assert kinds["M"] == "milestone"
    milestone = next(a for a in bars if a.get("data-code") == "M")
    assert milestone.find(f"{SVG}polygon") is not None
    assert all(a.get("href").startswith("/roadmap/tasks/") for a in bars)


def test_the_critical_path_has_its_own_colour_on_bars_and_arrows():
    _roadmap, svg = chart()
    critical = re.findall(r'class="bar critical[^"]*" data-task="\d+" data-code="(\w)"', svg)
    assert set(critical) == {"A", "B", "D", "E", "F", "M"}
    assert svg.count('class="link critical"') == 6
    assert svg.count('class="link"') == 4
    assert gantt.COLOURS["critical"] in svg


def test_the_today_line_is_drawn_only_inside_the_chart():
    assert 'class="today"' in chart()[1]
    assert 'class="today"' not in chart(today=date(2030, 1, 1))[1]


def test_month_zoom_is_narrower_than_week_zoom():
    week = ElementTree.fromstring(chart("week")[1])
    month = ElementTree.fromstring(chart("month")[1])
    assert float(month.get("width")) < float(week.get("width"))
    assert month.get("data-zoom") == "month"


def test_an_unknown_zoom_is_refused():
    with pytest.raises(ValueError, match="zoom"):
        gantt.render([], [], zoom="decade")


def test_task_names_are_escaped():
    roadmap = worked_example()
    roadmap.tasks.filter(code="A").update(name="<script>alert(1)</script>")
    rows, links = planning.gantt_data(roadmap)
    svg = gantt.render(rows, links)
    assert "<script>" not in svg and "&lt;script&gt;" in svg
