"""Competency sign-off: who may sign off whom, the checklist, and the audit trail."""

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from tests.conftest import make_user
from training import actions
from training.actions import TrainingError
from training.models import SignOff


def all_items(module):
    return list(module.items.values_list("pk", flat=True))


@pytest.fixture
def radiology(clinician_in):
    """A lead user and a colleague in Radiology, and a clinician in Cardiology."""

    class People:
        lead = clinician_in("Radiology", "rad_lead", lead=True)
        colleague = clinician_in("Radiology", "rad_colleague")
        elsewhere = clinician_in("Cardiology", "cardio")

    return People


def test_a_lead_user_signs_off_a_colleague_in_their_department(radiology, module):
    record = actions.sign_off(module.pk, radiology.colleague, radiology.lead, all_items(module))
    assert record.signed_by == radiology.lead
    assert set(record.items.all()) == set(module.items.all())


def test_a_lead_user_may_not_sign_off_another_department(radiology, module):
    with pytest.raises(PermissionDenied):
        actions.sign_off(module.pk, radiology.elsewhere, radiology.lead, all_items(module))


def test_nobody_signs_themselves_off(radiology, cast, module):
    with pytest.raises(PermissionDenied):
        actions.sign_off(module.pk, radiology.lead, radiology.lead, all_items(module))
    with pytest.raises(PermissionDenied):
        actions.sign_off(module.pk, cast.pm, cast.pm, all_items(module))


def test_a_trainer_of_the_module_signs_off_anyone(radiology, new_session, module):
    trainer = make_user("trainer", "clinician")
    new_session(trainer=trainer)
    actions.sign_off(module.pk, radiology.elsewhere, trainer, all_items(module))
    assert SignOff.objects.filter(clinician=radiology.elsewhere).exists()


@pytest.mark.parametrize("role", ["clinician", "staff", "engineer", "nobody"])
def test_other_roles_may_not_sign_off(radiology, cast, module, role):
    with pytest.raises(PermissionDenied):
        actions.sign_off(module.pk, radiology.colleague, getattr(cast, role), all_items(module))


@pytest.mark.parametrize("role", ["pm", "lead", "admin"])
def test_the_project_team_signs_off_anyone(radiology, cast, module, role):
    actions.sign_off(module.pk, radiology.elsewhere, getattr(cast, role), all_items(module))


def test_every_checklist_item_must_be_ticked(radiology, module):
    with pytest.raises(TrainingError, match="Compare with priors"):
        actions.sign_off(module.pk, radiology.colleague, radiology.lead, all_items(module)[:1])
    assert not SignOff.objects.exists()


def test_a_second_sign_off_is_refused(radiology, cast, module):
    actions.sign_off(module.pk, radiology.colleague, radiology.lead, all_items(module))
    with pytest.raises(TrainingError, match="already signed off"):
        actions.sign_off(module.pk, radiology.colleague, cast.pm, all_items(module))


def test_a_sign_off_is_in_the_audit_log_with_who_signed(radiology, module):
    record = actions.sign_off(module.pk, radiology.colleague, radiology.lead, all_items(module))
    entry = LogEntry.objects.get_for_object(record).get(action=LogEntry.Action.CREATE)
    assert entry.changes_dict["signed_by"][1] == str(radiology.lead.pk)


def test_the_sign_off_page_lists_only_colleagues_a_lead_may_sign_off(radiology, module, client_for):
    page = client_for(radiology.lead).get(reverse("training:sign_off", args=[module.pk]))
    choices = page.context["form"].fields["clinician"].queryset
    assert [user.username for user in choices] == ["rad_colleague"]


def test_the_sign_off_page_refuses_plain_clinicians(radiology, module, client_for):
    page = client_for(radiology.colleague).get(reverse("training:sign_off", args=[module.pk]))
    assert page.status_code == 403


def test_an_unticked_checklist_on_the_page_explains_and_keeps_the_choice(
    radiology, module, client_for
):
    response = client_for(radiology.lead).post(
        reverse("training:sign_off", args=[module.pk]),
        {"clinician": radiology.colleague.pk, "items": all_items(module)[:2], "note": "good"},
    )
    html = response.content.decode()
    assert "Tick every item on the checklist first" in html
    assert 'value="good"' in html
    assert f'value="{radiology.colleague.pk}" selected' in html
