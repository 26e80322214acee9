from datetime import date

from django import forms

from core.uploads import check_size
from cutover import binding, readiness
from cutover.models import CloudViewer, Dependency, Probe, Task, ViewerTestCase, Workstream

DATE = forms.DateInput(attrs={"type": "date"})


class TemplateRoadmapForm(forms.Form):
    name = forms.CharField(max_length=120, initial="PACS-to-cloud migration")
    start_date = forms.DateField(widget=DATE, initial=date.today)


class RoadmapForm(forms.Form):
    name = forms.CharField(max_length=120)
    start_date = forms.DateField(widget=DATE, initial=date.today)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class TaskForm(forms.ModelForm):
    measure = forms.ChoiceField(choices=binding.CHOICES, required=False, label="Live measure")
    measure_params = forms.JSONField(
        required=False,
        label="Measure parameters",
        help_text='JSON, e.g. {"waves": [1, 2]} or {"department": "Radiology"}',
        widget=forms.TextInput(),
    )

    class Meta:
        model = Task
        fields = [
            "name",
            "workstream",
            "kind",
            "owner",
            "duration",
            "start_no_earlier",
            "deadline",
            "percent_complete",
            "status",
            "measure",
            "measure_params",
            "notes",
        ]
        widgets = {
            "start_no_earlier": DATE,
            "deadline": DATE,
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, roadmap, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["workstream"].queryset = Workstream.objects.filter(roadmap=roadmap)
        self.fields["duration"].help_text = "working days (milestones: 0)"

    def clean_measure_params(self):
        value = self.cleaned_data.get("measure_params")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError('parameters are a JSON object, e.g. {"waves": [1]}')
        return value

    def changes(self):
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class DependencyForm(forms.Form):
    predecessor = forms.ModelChoiceField(queryset=Task.objects.none())
    kind = forms.ChoiceField(choices=Dependency.Kind.choices, initial="FS")
    lag = forms.IntegerField(initial=0, min_value=-500, max_value=500, help_text="working days")

    def __init__(self, *args, task, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["predecessor"].queryset = task.roadmap.tasks.exclude(pk=task.pk)


class WorkstreamForm(forms.Form):
    name = forms.CharField(max_length=120)


class BaselineForm(forms.Form):
    name = forms.CharField(max_length=120)


class ImportForm(forms.Form):
    file = forms.FileField(help_text="CSV with columns code, workstream, name, … (as exported)")

    def clean_file(self):
        return check_size(self.cleaned_data.get("file"), "roadmap_csv")


class HolidaysForm(forms.Form):
    holidays = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 6}),
        required=False,
        help_text="one per line: 2026-12-25 Christmas Day",
    )

    def clean_holidays(self):
        days = {}
        for number, line in enumerate(self.cleaned_data["holidays"].splitlines(), start=1):
            if not line.strip():
                continue
            head, _, name = line.strip().partition(" ")
            try:
                days[date.fromisoformat(head)] = name.strip()[:120]
            except ValueError:
                raise forms.ValidationError(
                    f"line {number}: start with a date like 2026-12-25"
                ) from None
        return days


class ItemForm(forms.Form):
    text = forms.CharField(max_length=300)
    owner = forms.CharField(max_length=120, required=False)
    due_date = forms.DateField(widget=DATE, required=False)


class EvidenceForm(forms.Form):
    evidence_note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    evidence_file = forms.FileField(required=False)

    def clean_evidence_file(self):
        upload = self.cleaned_data.get("evidence_file")
        if upload and upload.size > EVIDENCE_MAX_BYTES:
            raise forms.ValidationError("evidence files may be at most 20 MB")
        return upload


EVIDENCE_MAX_BYTES = 20 * 1024 * 1024


class ProbeForm(forms.ModelForm):
    url = forms.URLField(
        assume_scheme="https", required=False, max_length=500, help_text="health or /metadata URL"
    )

    class Meta:
        model = Probe
        fields = ["name", "kind", "host", "port", "called_aet", "calling_aet", "timeout_s"]


class CloudViewerForm(forms.ModelForm):
    url = forms.URLField(assume_scheme="https", required=False)

    class Meta:
        model = CloudViewer
        fields = ["name", "vendor", "version"]


class CaseResultForm(forms.ModelForm):
    class Meta:
        model = ViewerTestCase
        fields = ["result", "notes", "screenshot", "gap_owner", "gap_solution", "gap_resolved"]
        widgets = {
            "notes": forms.Textarea(attrs={"rows": 2}),
            "gap_solution": forms.Textarea(attrs={"rows": 2}),
        }

    def clean(self):
        data = super().clean()
        if data.get("result") in ("fail", "gap") and not data.get("gap_owner"):
            self.add_error("gap_owner", "a failure or gap needs an owner")
        return data


class ThresholdForm(forms.Form):
    key = forms.ChoiceField(
        label="Criterion", choices=[(c["key"], c["label"]) for c in readiness.CRITERIA]
    )
    threshold = forms.FloatField(required=False, help_text="empty: the default")
    waived = forms.BooleanField(required=False, label="Waive (accept as a known risk)")
    reason = forms.CharField(max_length=300, required=False, label="Waiver reason")

    def clean(self):
        data = super().clean()
        if data.get("waived") and not (data.get("reason") or "").strip():
            self.add_error("reason", "a waiver needs its reason")
        return data
