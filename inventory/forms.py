from django import forms
from django.utils.text import slugify

from core.uploads import check_size
from inventory.models import (
    AccessRole,
    AuditLogLocation,
    Integration,
    PacsSource,
    SharingWorkflow,
    Viewer,
    ViewerCapability,
)


class PacsSourceForm(forms.ModelForm):
    class Meta:
        model = PacsSource
        fields = list(PacsSource.SETTINGS)
        labels = {"calling_ae_title": "Calling AE title (ours)", "find_cap": "Known C-FIND cap"}


class CrawlForm(forms.Form):
    since = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="only studies dated from this day on (leave empty for everything)",
    )
    with_series = forms.BooleanField(
        required=False, initial=True, label="Also query series and sample instances"
    )


class StudyFilterForm(forms.Form):
    source = forms.ModelChoiceField(PacsSource.objects.all(), required=False, empty_label="all")
    modality = forms.CharField(required=False, max_length=16)
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    undated = forms.BooleanField(required=False, label="only studies without a usable date")
    problems = forms.BooleanField(required=False, label="only studies with problems")
    vanished = forms.BooleanField(required=False, label="only vanished studies")
    uid = forms.CharField(required=False, max_length=64, label="Study Instance UID")
    accession = forms.CharField(required=False, max_length=16, label="Accession number")
    patient_id = forms.CharField(required=False, max_length=64, label="Patient ID")

    def clean_modality(self):
        return self.cleaned_data["modality"].strip().upper()


class IntegrationForm(forms.ModelForm):
    class Meta:
        model = Integration
        fields = [
            "name",
            "kind",
            "protocol",
            "direction",
            "owner",
            "endpoint",
            "state",
            "source",
            "notes",
        ]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}


class SharingWorkflowForm(forms.ModelForm):
    class Meta:
        model = SharingWorkflow
        fields = [
            "name",
            "mechanism",
            "from_party",
            "to_party",
            "monthly_volume",
            "owner",
            "integrations",
            "notes",
        ]
        widgets = {
            "integrations": forms.CheckboxSelectMultiple,
            "notes": forms.Textarea(attrs={"rows": 3}),
        }


class ViewerForm(forms.ModelForm):
    other_capabilities = forms.CharField(
        required=False,
        max_length=500,
        help_text="capabilities not in the checklist, separated by semicolons",
    )

    class Meta:
        model = Viewer
        fields = ["name", "vendor", "version", "kind", "users", "capabilities", "notes"]
        widgets = {
            "capabilities": forms.CheckboxSelectMultiple,
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["capabilities"].required = False
        if self.instance.pk:
            free = self.instance.capabilities.filter(standard=False)
            self.fields["capabilities"].queryset = ViewerCapability.objects.filter(standard=True)
            self.initial["other_capabilities"] = "; ".join(c.name for c in free)
        else:
            self.fields["capabilities"].queryset = ViewerCapability.objects.filter(standard=True)

    def clean_other_capabilities(self):
        names = [n.strip() for n in self.cleaned_data["other_capabilities"].split(";")]
        for name in names:
            if len(name) > 100:
                raise forms.ValidationError("a capability name is at most 100 characters")
        return [n for n in names if n]

    def save(self, commit=True):
        viewer = super().save(commit=commit)
        if commit:
            extra = [free_capability(name) for name in self.cleaned_data["other_capabilities"]]
            viewer.capabilities.add(*extra)
        return viewer


def free_capability(name):
    """The capability named `name` (case-insensitive), created as a free entry if new."""
    found = ViewerCapability.objects.filter(name__iexact=name).first()
    if found:
        return found
    code = slugify(name)[:60] or "capability"
    base, n = code, 1
    while ViewerCapability.objects.filter(code=code).exists():
        n += 1
        code = f"{base[:55]}-{n}"
    return ViewerCapability.objects.create(code=code, name=name, standard=False)


class AccessRoleForm(forms.ModelForm):
    class Meta:
        model = AccessRole
        fields = ["system", "name", "user_count", "permissions", "source", "viewer"]


class AuditLogLocationForm(forms.ModelForm):
    class Meta:
        model = AuditLogLocation
        fields = [
            "system",
            "location",
            "log_format",
            "retention_days",
            "owner",
            "source",
            "integration",
            "notes",
        ]
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}


class CsvImportForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="UTF-8, first line the column names")

    def clean_file(self):
        return check_size(self.cleaned_data.get("file"), "catalogue_csv")
