from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.validators import RegexValidator
from django.utils import timezone

from core.access import ROLES
from core.egress import mask_url
from core.uploads import check_size
from training.catalog import FEEDBACK_STATUSES, KINDS, SEVERITIES, VIEWERS, choices
from training.models import Department, Highlight, Module, TrainingSession
from training.screenshots import (
    ALLOWED,
    SCREENSHOT_FORMATS,
    check_screenshot,
    human_size,
    max_bytes,
)

LOCAL = "%Y-%m-%dT%H:%M"


class FeedbackForm(forms.Form):
    viewer = forms.ChoiceField(label="Which viewer?", choices=choices(VIEWERS))
    kind = forms.ChoiceField(
        label="What kind of problem?", choices=choices(KINDS), widget=forms.RadioSelect
    )
    severity = forms.ChoiceField(
        label="How much does it affect you?",
        choices=[(k, f"{v['label']} ({v['hint']})") for k, v in SEVERITIES.items()],
        widget=forms.RadioSelect,
    )
    description = forms.CharField(
        label="What happened?",
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "What you did, what you saw"}),
        help_text="Please no patient names here; use the accession number field below.",
    )
    screenshot = forms.FileField(
        label="Screenshot (optional)",
        required=False,
        widget=forms.ClearableFileInput(
            attrs={"accept": ",".join(mime for _, mime in SCREENSHOT_FORMATS.values())}
        ),
    )
    accession_number = forms.CharField(
        label="Accession number (optional)",
        required=False,
        max_length=64,
        validators=[RegexValidator(r"^[A-Za-z0-9./_-]*$", "Use only letters, digits and . / _ -")],
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text="Only staff allowed to see patient data will see it.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["screenshot"].help_text = f"{ALLOWED}, up to {human_size(max_bytes())}."

    def clean_screenshot(self):
        upload = self.cleaned_data.get("screenshot")
        if upload:
            check_screenshot(upload)
        return upload

    def files_to_reselect(self):
        """A valid screenshot cannot survive a re-rendered form: say so."""
        return bool(self.files.get("screenshot")) and "screenshot" not in self.errors


class SessionForm(forms.ModelForm):
    virtual_link = forms.URLField(required=False, assume_scheme="https", max_length=200)

    class Meta:
        model = TrainingSession
        fields = [
            "module",
            "title",
            "starts_at",
            "ends_at",
            "location",
            "virtual_link",
            "trainer",
            "capacity",
            "audience_roles",
            "audience_departments",
            "notes",
        ]
        widgets = {
            "starts_at": forms.DateTimeInput(format=LOCAL, attrs={"type": "datetime-local"}),
            "ends_at": forms.DateTimeInput(format=LOCAL, attrs={"type": "datetime-local"}),
            "audience_roles": forms.CheckboxSelectMultiple,
            "audience_departments": forms.CheckboxSelectMultiple,
            "notes": forms.Textarea(attrs={"rows": 3}),
        }
        labels = {"audience_roles": "For roles", "audience_departments": "For departments"}
        help_texts = {"audience_roles": "Leave roles and departments empty to open it to all."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["audience_roles"].queryset = Group.objects.filter(name__in=ROLES)
        self.fields["audience_roles"].label_from_instance = lambda g: ROLES[g.name]
        self.fields["trainer"].queryset = get_user_model().objects.filter(is_active=True)

    def clean(self):
        data = super().clean()
        starts, ends = data.get("starts_at"), data.get("ends_at")
        if starts and ends and ends <= starts:
            self.add_error("ends_at", "The session must end after it starts.")
        if starts and starts <= timezone.now() and self.instance._state.adding:
            self.add_error("starts_at", "Schedule new sessions in the future.")
        if not data.get("location") and not data.get("virtual_link"):
            self.add_error("location", "Give a room, a virtual link, or both.")
        return data


class MaterialForm(forms.Form):
    title = forms.CharField(max_length=200)
    url = forms.URLField(label="Link", required=False, assume_scheme="https")
    file = forms.FileField(label="or a file", required=False)

    def clean_file(self):
        return check_size(self.cleaned_data.get("file"), "training_material")

    def clean_url(self):
        url = self.cleaned_data.get("url")
        if url and mask_url(url) != url:
            raise forms.ValidationError("A link may not carry a user name or password.")
        return url

    def clean(self):
        data = super().clean()
        if not data.get("url") and not data.get("file"):
            raise forms.ValidationError("Give a link or attach a file.")
        return data


class SignOffForm(forms.Form):
    clinician = forms.ModelChoiceField(queryset=get_user_model().objects.none())
    items = forms.MultipleChoiceField(
        label="Checklist", widget=forms.CheckboxSelectMultiple, required=False
    )
    note = forms.CharField(max_length=300, required=False)

    def __init__(self, *args, module, clinicians, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["clinician"].queryset = clinicians
        self.fields["items"].choices = [(item.pk, item.text) for item in module.items.all()]


class ProfileForm(forms.Form):
    department = forms.ModelChoiceField(
        queryset=Department.objects.all(), required=False, empty_label="(not set)"
    )
    contact = forms.CharField(max_length=120, required=False, label="Phone, pager or extension")


class PersonForm(ProfileForm):
    is_lead = forms.BooleanField(label="Lead user", required=False)


class DepartmentForm(forms.Form):
    name = forms.CharField(max_length=120, label="New department")


class ModuleForm(forms.Form):
    title = forms.CharField(max_length=200)
    summary = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    checklist = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 5}),
        help_text="One item per line, e.g. Open a study; Compare with priors; Measure.",
    )

    def clean_title(self):
        title = self.cleaned_data["title"].strip()
        if Module.objects.filter(title__iexact=title).exists():
            raise forms.ValidationError("There is already a module with this title.")
        return title

    def clean_checklist(self):
        items = [line.strip() for line in self.cleaned_data["checklist"].splitlines()]
        items = [item[:200] for item in items if item]
        if not items:
            raise forms.ValidationError("Give at least one checklist item.")
        return items


class HighlightForm(forms.ModelForm):
    class Meta:
        model = Highlight
        fields = ["title", "body", "pinned"]
        widgets = {"body": forms.Textarea(attrs={"rows": 6})}


class TriageForm(forms.Form):
    themes = forms.CharField(
        required=False,
        max_length=400,
        help_text="Comma-separated; new themes are created.",
        widget=forms.TextInput(attrs={"list": "theme-names", "autocomplete": "off"}),
    )
    status = forms.ChoiceField(choices=choices(FEEDBACK_STATUSES))

    def clean_themes(self):
        return [t.strip() for t in self.cleaned_data["themes"].split(",") if t.strip()]


class ReplyForm(forms.Form):
    reply = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=4000)
    status = forms.ChoiceField(
        choices=[("", "(keep status)"), *choices(FEEDBACK_STATUSES)], required=False
    )
