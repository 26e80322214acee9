"""Integration cutover plans: stages, signed checklists, gates, rollback, probes."""

import pytest
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError

from cutover import actions, stages
from cutover.measures import cutover_progress
from cutover.models import ChecklistItem, Probe, ProbeResult
from tests.cutover.mllp import MllpListener

pytestmark = pytest.mark.django_db


def sign_all(stage, user):
    for item in stage.items.all():
        actions.sign_item(item, user)


def test_a_new_plan_has_every_stage_with_its_checklist_rollback_and_a_probe(integration, cast):
    plan = actions.create_plan(integration, cast.pm)
    kinds = list(plan.stages.values_list("kind", flat=True))
    assert kinds == ["prepare", "parallel_run", "switch", "verify", "disable_legacy"]
    for stage in plan.stages.all():
        assert stage.items.count() == len(stages.CHECKLISTS[stage.kind])
        assert stage.rollback_steps == stages.ROLLBACK[stage.kind]
        assert not stage.gate_open
    probe = plan.probes.get()
    assert (probe.kind, probe.host, probe.port) == ("hl7", "127.0.0.1", 2575)


def test_a_gate_refuses_to_open_while_items_are_unsigned(integration, cast):
    plan = actions.create_plan(integration, cast.pm)
    prepare = plan.stages.get(kind="prepare")
    first, *rest = prepare.items.all()
    actions.sign_item(first, cast.pm)
    with pytest.raises(actions.GateClosedError) as caught:
        actions.open_gate(prepare, cast.pm)
    message = caught.value.messages[0]
    assert message.startswith("the Prepare gate stays closed: 3 unsigned:")
    assert rest[0].text in message and first.text not in message
    prepare.refresh_from_db()
    assert not prepare.gate_open


def test_a_gate_opens_when_every_item_is_signed_and_the_stage_before_is_open(integration, cast):
    plan = actions.create_plan(integration, cast.pm)
    prepare, parallel = plan.stages.get(kind="prepare"), plan.stages.get(kind="parallel_run")
    sign_all(parallel, cast.pm)
    with pytest.raises(actions.GateClosedError, match="open the gates before it first: Prepare"):
        actions.open_gate(parallel, cast.pm)
    sign_all(prepare, cast.pm)
    assert actions.open_gate(prepare, cast.pm, "all good").gate_open
    stage = actions.open_gate(parallel, cast.pm)
    assert stage.gate_open and stage.gate_opened_by == cast.pm
    assert cutover_progress() == {"stages": 5, "signed_stages": 2}


def test_a_signature_records_name_and_time_and_is_audited(integration, cast):
    cast.pm.first_name, cast.pm.last_name = "Pat", "Manager"
    cast.pm.save()
    plan = actions.create_plan(integration, cast.pm)
    item = plan.stages.get(kind="prepare").items.first()
    actions.sign_item(item, cast.pm)
    item = ChecklistItem.objects.get(pk=item.pk)
    assert item.signed_by == cast.pm and item.signed_name == "Pat Manager"
    assert item.signed_at is not None
    entries = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(ChecklistItem), object_pk=str(item.pk)
    )
    assert any("signed_name" in (e.changes_dict or {}) for e in entries)


def test_an_item_cannot_be_signed_twice_nor_withdrawn_once_its_gate_is_open(integration, cast):
    plan = actions.create_plan(integration, cast.pm)
    prepare = plan.stages.get(kind="prepare")
    sign_all(prepare, cast.pm)
    item = prepare.items.first()
    with pytest.raises(ValidationError, match="already signed by pm"):
        actions.sign_item(item, cast.admin)
    actions.open_gate(prepare, cast.pm)
    with pytest.raises(actions.GateClosedError, match="close it first"):
        actions.unsign_item(item, cast.pm)


def test_closing_a_gate_is_a_rollback_refused_while_a_later_gate_is_open(integration, cast):
    plan = actions.create_plan(integration, cast.pm)
    prepare, parallel = plan.stages.get(kind="prepare"), plan.stages.get(kind="parallel_run")
    for stage in (prepare, parallel):
        sign_all(stage, cast.pm)
        actions.open_gate(stage, cast.pm)
    with pytest.raises(actions.GateClosedError, match="later gates first"):
        actions.close_gate(prepare, cast.pm, "oops")
    stage = actions.close_gate(parallel, cast.pm, "reconciliation failed")
    assert not stage.gate_open and stage.gate_note == "reconciliation failed"


def test_probe_defaults_follow_the_integration_protocol(integration):
    integration.protocol, integration.endpoint = "dicom", "RISAE@10.0.0.5:104"
    assert actions.probe_defaults(integration)["called_aet"] == "RISAE"
    integration.protocol, integration.endpoint = "fhir", "https://emr.example/fhir/"
    assert actions.probe_defaults(integration)["url"] == "https://emr.example/fhir/metadata"
    integration.protocol, integration.endpoint = "hl7v2", "not an address"
    assert actions.probe_defaults(integration) is None


def test_a_probe_run_keeps_its_history_and_a_failure_raises_a_ticket(
    integration, cast, published, django_capture_on_commit_callbacks
):
    plan = actions.create_plan(integration, cast.pm)
    probe = plan.probes.get()
    with MllpListener(["AA", "AE"]) as listener:
        probe.port = listener.port
        probe.save()
        with django_capture_on_commit_callbacks(execute=True):
            good = actions.run_probe(probe)
            bad = actions.run_probe(probe, trigger="schedule")
    assert good.ok and not bad.ok and "AE" in bad.detail
    assert list(ProbeResult.objects.filter(probe=probe).values_list("ok", flat=True)) == [
        False,
        True,
    ]
    probe = Probe.objects.get(pk=probe.pk)
    assert probe.last_ok is False and "AE" in probe.last_detail
    alerts = [m["data"] for t, m in published if t == "alerts.integration"]
    assert len(alerts) == 1
    assert alerts[0]["cause"] == f"integration.probe_failed.{probe.pk}"
    assert alerts[0]["links"] == {"integration": integration.pk}
    assert any(t == f"cutover.plan.{plan.pk}" for t, _m in published)


def test_a_probe_without_its_target_is_refused(integration, cast):
    plan = actions.create_plan(integration, cast.pm)
    with pytest.raises(ValidationError, match="needs a URL"):
        actions.save_probe(Probe(plan=plan), {"name": "FHIR", "kind": "http"})
    with pytest.raises(ValidationError, match="called AE title"):
        actions.save_probe(
            Probe(plan=plan), {"name": "echo", "kind": "dicom_echo", "host": "h", "port": 104}
        )


def test_the_integration_state_follows_its_cutover(integration, cast):
    from tests.cutover import world

    plan = actions.create_plan(integration, cast.pm)
    prepare = plan.stages.get(kind="prepare")
    sign_all(prepare, cast.pm)
    actions.open_gate(prepare, cast.pm)
    integration.refresh_from_db()
    assert integration.state == "cutting_over"
    world.cut_over(plan, cast.pm)
    integration.refresh_from_db()
    assert integration.state == "cut_over"
    actions.close_gate(plan.stages.get(kind="disable_legacy"), cast.pm, "legacy still needed")
    integration.refresh_from_db()
    assert integration.state == "cutting_over"
