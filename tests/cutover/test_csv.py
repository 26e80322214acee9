"""CSV export and import of tasks: round trip, all-or-nothing validation, cycles refused."""

import csv
import io

import pytest

from cutover import actions, csvio
from cutover.models import Dependency, Roadmap
from tests.cutover.factories import START, task, worked_example

pytestmark = pytest.mark.django_db

HEADER = "code,workstream,name,kind,duration,depends_on,deadline\n"


def rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_export_lists_every_task_with_dependencies_and_computed_dates():
    roadmap = worked_example()
    exported = {r["code"]: r for r in rows(csvio.export_tasks(roadmap))}
    assert set(exported) == set("ABCDEFGM")
    assert exported["B"]["depends_on"] == "A FS+2"
    assert exported["C"]["depends_on"] == "A SS+1"
    assert set(exported["M"]["depends_on"].split("; ")) == {"E", "F", "G"}
    assert exported["M"]["early_start"] == "2026-03-20" and exported["M"]["critical"] == "True"


def test_an_exported_roadmap_imports_into_an_empty_one_with_the_same_schedule(cast):
    source = worked_example()
    target = actions.create_roadmap("Copy", START, cast.pm)
    actions.set_holidays(target, {h.day: h.name for h in source.holidays.all()})
    assert actions.import_tasks(target, csvio.export_tasks(source), cast.pm) == 8
    for code in "ABCDEFGM":
        assert task(target, code).early_start == task(source, code).early_start
        assert task(target, code).total_slack == task(source, code).total_slack
    assert Dependency.objects.filter(successor__roadmap=target).count() == 10


def test_import_updates_existing_tasks_by_code(cast):
    roadmap = worked_example()
    text = HEADER + "B,Work,Task B longer,task,6,A FS+2,\n"
    actions.import_tasks(roadmap, text, cast.pm)
    assert task(roadmap, "B").duration == 6 and task(roadmap, "B").name == "Task B longer"
    assert task(roadmap, "M").early_start.isoformat() == "2026-03-25"


def test_a_bad_file_is_refused_whole_with_every_bad_line_named(cast):
    roadmap = worked_example()
    text = (
        HEADER
        + "B,Work,Task B,task,6,A,\n"  # fine, but must not be saved
        + "X1,Work,,task,2,,\n"  # no name
        + "X2,Work,Two,task,-3,,\n"  # negative duration
        + "X3,Work,Three,task,2,NOPE,\n"  # unknown dependency
        + "X4,Work,Four,task,2,,31/12/2026\n"  # bad date
        + "X5,Work,Five,hammock,2,,\n"  # bad kind
    )
    with pytest.raises(csvio.CsvImportError) as caught:
        actions.import_tasks(roadmap, text, cast.pm)
    lines = dict(caught.value.errors)
    assert lines[3] == "missing name"
    assert "duration must be between 0 and 2000" in lines[4]
    assert lines[5] == "depends on unknown task NOPE"
    assert "deadline must be a date like 2026-03-31" in lines[6]
    assert "kind must be one of" in lines[7]
    assert task(roadmap, "B").duration == 3, "nothing was saved"
    assert not roadmap.tasks.filter(code__startswith="X").exists()


def test_an_import_that_would_create_a_cycle_is_refused_and_saves_nothing(cast):
    roadmap = worked_example()
    text = HEADER + "A,Work,Task A,task,4,M,\n"
    with pytest.raises(csvio.CsvImportError, match="dependency cycle"):
        actions.import_tasks(roadmap, text, cast.pm)
    roadmap = Roadmap.objects.get(pk=roadmap.pk)
    assert not Dependency.objects.filter(successor__code="A", successor__roadmap=roadmap).exists()
    assert task(roadmap, "M").early_start.isoformat() == "2026-03-20"


def test_a_file_without_the_required_columns_is_refused(cast):
    roadmap = worked_example()
    with pytest.raises(csvio.CsvImportError, match="header needs the columns"):
        actions.import_tasks(roadmap, "name,duration\nx,1\n", cast.pm)


def test_dependency_notation_parses_kinds_and_lags():
    assert csvio.parse_dependencies("AS2; AS3 SS+2;MG2 fs-5") == [
        ("AS2", "FS", 0),
        ("AS3", "SS", 2),
        ("MG2", "FS", -5),
    ]
    with pytest.raises(ValueError, match="bad dependency"):
        csvio.parse_dependency("AS2 after lunch")
