"""Go/no-go from live evidence: every criterion with its threshold, value and evidence."""

import pytest
from django.core.exceptions import ValidationError

from core.alerts import raise_alert
from cutover import actions, readiness
from cutover.measures import read
from cutover.models import CloudViewer
from tests.cutover import world

pytestmark = pytest.mark.django_db


def states(result):
    return {c["key"]: c["state"] for c in result["criteria"]}


def test_with_no_evidence_at_all_the_verdict_is_no_go_with_every_reason(cast):
    result = readiness.evaluate()
    assert result["verdict"] == "NO-GO" and not result["go"]
    assert states(result)["studies_migrated"] == "no evidence yet"
    assert states(result)["open_p1"] == "met"  # no tickets
    assert len(result["reasons"]) == 7
    assert states(result)["inventory_complete"] == "no evidence yet"
    assert "Studies migrated and verified: no evidence yet" in result["reasons"]


def test_a_criterion_whose_app_is_missing_is_not_available_and_not_met():
    criterion = {
        "key": "x",
        "group": "Elsewhere",
        "label": "From an app that is not built",
        "op": ">=",
        "unit": "%",
        "threshold": 1,
        "evidence": "no:such-page",
        "measure": lambda: (read("nosuchapp.measures.progress"), ""),
    }
    row = readiness.evaluate_one(criterion, 1)
    assert (row["available"], row["met"], row["state"]) == (False, False, "not available")
    assert row["note"] == "nosuchapp.measures is not available" and row["evidence_url"] == ""


def build_ready_world(cast, integration):
    """Everything a go-live needs, with real rows, except what the test then breaks."""
    wave, rows = world.migration_ledger(studies=3, done=3)
    world.inventory_proven()
    world.legacy_viewers()
    world.cloud_viewer_tested(cast.pm)
    session, _people = world.clinicians({"Radiology": 3}, {"Radiology": 3})
    world.train(session, [cast.clinician])
    plan = actions.create_plan(integration, cast.pm)
    plan.probes.update(last_ok=True)
    world.cut_over(plan, cast.pm)
    actions.waive_criterion("waves_validated", "spot-check validation runs after go-live", cast.pm)
    return plan


def test_when_every_criterion_is_met_or_waived_the_verdict_is_go(cast, integration):
    build_ready_world(cast, integration)
    result = readiness.evaluate()
    assert result["reasons"] == []
    assert result["verdict"] == "GO"
    assert result["waivers"] == ["Waves validated: spot-check validation runs after go-live"]
    values = {c["key"]: c["value"] for c in result["criteria"]}
    assert values["studies_migrated"] == 100.0 and values["viewer_pass_rate"] == 100.0
    assert values["clinicians_trained"] == 100.0 and values["stages_signed"] == 100.0


def test_an_open_p1_ticket_turns_go_into_no_go(
    cast, integration, django_capture_on_commit_callbacks
):
    build_ready_world(cast, integration)
    with django_capture_on_commit_callbacks(execute=True):
        raise_alert("monitoring", "test.outage", "Cloud viewer down", impact="high", urgency="high")
    result = readiness.evaluate()
    assert not result["go"]
    assert result["reasons"] == ["Open P1 tickets: not met (1, needs <= 0)"]


def test_a_failed_viewer_case_and_a_department_behind_each_block_go(cast, integration):
    build_ready_world(cast, integration)
    case = CloudViewer.objects.get().cases.first()
    actions.record_result(case, cast.pm, "gap", "no MPR", gap_owner="Vendor")
    world.clinicians({"Cardiology": 2}, {"Cardiology": 1})
    result = readiness.evaluate()
    assert set(states(result).items()) >= {
        ("viewer_pass_rate", "not met"),
        ("viewer_open_gaps", "not met"),
        ("clinicians_trained", "not met"),
    }
    trained = next(c for c in result["criteria"] if c["key"] == "clinicians_trained")
    assert trained["value"] == 50.0 and "Cardiology 50%" in trained["note"]


def test_a_project_manager_can_lower_a_threshold(cast, integration):
    build_ready_world(cast, integration)
    case = CloudViewer.objects.get().cases.first()
    actions.record_result(case, cast.pm, "fail", "slow", gap_owner="Vendor", gap_resolved=True)
    assert states(readiness.evaluate())["viewer_pass_rate"] == "not met"  # 3 of 4 = 75 %
    actions.set_threshold("viewer_pass_rate", 75, cast.pm)
    assert readiness.evaluate()["go"]


def test_a_waiver_needs_a_reason_and_a_known_criterion(cast):
    with pytest.raises(ValidationError, match="needs its reason"):
        actions.waive_criterion("open_p1", "  ", cast.pm)
    with pytest.raises(ValidationError, match="unknown criterion"):
        actions.waive_criterion("luck", "feeling lucky", cast.pm)


def test_publishing_readiness_pushes_the_rendered_screen(
    cast, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        actions.publish_readiness()
    topic, message = next((t, m) for t, m in published if t == "cutover.readiness")
    assert message["data"]["verdict"] == "NO-GO"
    assert 'id="verdict"' in message["html"] and "NO-GO" in message["html"]
