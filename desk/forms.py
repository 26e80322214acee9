"""Forms of the command center: intake, edits, comments, screenshots, escalation, roster."""

from django import forms
from django.contrib.auth import get_user_model

from core.access import ADMIN, LEAD, STAFF
from desk import catalog, tickets
from desk.models import EscalationPolicy, EscalationStep, Override, Ticket

LINK_FIELDS = ("study", "wave", "training_session")


def assignable_users():
    """People who work tickets: command-center staff, leads and administrators."""
    return (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=[STAFF, LEAD, ADMIN])
        .distinct()
        .order_by("username")
    )


class AssigneeField(forms.ModelChoiceField):
    def label_from_instance(self, user):
        return user.get_full_name() or user.get_username()


class TicketEditForm(forms.ModelForm):
    """What triage changes on a ticket (status moves go through the workflow instead).

    Each field also posts the value it was shown with, so `changed_data` names only what
    this person changed: a save from a page that others changed since (it updates live)
    does not put their values back."""

    track_changes = True

    class Meta:
        model = Ticket
        fields = [*tickets.EDITABLE, "assignee"]
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"] = AssigneeField(assignable_users(), required=False)
        for field in self.fields.values():
            field.show_hidden_initial = self.track_changes


class TicketForm(TicketEditForm):
    """The staff intake form: what happened, where, how bad, and what it concerns."""

    study = forms.IntegerField(label="Study (inventory id)", required=False, min_value=1)
    wave = forms.IntegerField(label="Migration wave id", required=False, min_value=1)
    integration = forms.CharField(label="Integration", required=False, max_length=100)
    training_session = forms.IntegerField(label="Training session id", required=False, min_value=1)
    screenshot = forms.ImageField(required=False, help_text="PNG, JPEG, GIF or WebP, up to 5 MB")

    track_changes = False

    class Meta(TicketEditForm.Meta):
        fields = [f for f in TicketEditForm.Meta.fields if f != "team"]

    def links(self):
        data = self.cleaned_data
        links = {name: data[name] for name in LINK_FIELDS if data.get(name)}
        if data.get("integration"):
            links["integration"] = data["integration"].strip()
        return links


class CommentForm(forms.Form):
    body = forms.CharField(label="Comment", widget=forms.Textarea(attrs={"rows": 3}))


class ScreenshotForm(forms.Form):
    file = forms.FileField(label="Screenshot", help_text="PNG, JPEG, GIF or WebP, up to 5 MB")


class BoardFilterForm(forms.Form):
    priority = forms.ChoiceField(
        choices=[("", "Any")] + [(p, p) for p in ("P1", "P2", "P3", "P4")], required=False
    )
    category = forms.ChoiceField(
        choices=[("", "Any")] + list(catalog.CATEGORIES.items()), required=False
    )
    assignee = forms.ChoiceField(required=False)
    mine = forms.BooleanField(label="Mine", required=False)
    breached = forms.BooleanField(label="Breached", required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = [("", "Anyone")] + [
            (str(u.pk), u.get_full_name() or u.get_username()) for u in assignable_users()
        ]


class PolicyForm(forms.ModelForm):
    class Meta:
        model = EscalationPolicy
        fields = ["name", "priority", "active", "repeat_times", "repeat_after_minutes"]


class StepForm(forms.ModelForm):
    class Meta:
        model = EscalationStep
        fields = ["order", "after_minutes", "condition", "target", "person", "rotation"]

    def clean(self):
        data = super().clean()
        if data.get("target") == EscalationStep.Target.PERSON and not data.get("person"):
            self.add_error("person", "Choose the person this step notifies.")
        if data.get("target") == EscalationStep.Target.ON_CALL and not data.get("rotation"):
            self.add_error("rotation", "Choose the rotation whose on-call this step notifies.")
        return data


StepFormSet = forms.inlineformset_factory(
    EscalationPolicy, EscalationStep, form=StepForm, extra=1, can_delete=True
)


class HandoffForm(forms.Form):
    body = forms.CharField(label="Handoff note", widget=forms.Textarea(attrs={"rows": 4}))


class OverrideForm(forms.ModelForm):
    class Meta:
        model = Override
        fields = ["rotation", "user", "starts_at", "ends_at", "reason"]
        widgets = {
            "starts_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
            "ends_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"] = AssigneeField(assignable_users())

    def clean(self):
        data = super().clean()
        if data.get("starts_at") and data.get("ends_at") and data["ends_at"] <= data["starts_at"]:
            self.add_error("ends_at", "An override must end after it starts.")
        return data
