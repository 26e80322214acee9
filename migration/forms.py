"""Forms of the migration pages; each rejects bad input with the reason."""

import json

from django import forms
from django.db import models

from core.uploads import check_size
from inventory.models import PacsSource
from migration import mapping, throttle
from migration.models import Conflict, Destination, LookupTable, MappingProfile

MAX_LIST_BYTES = 5 * 1024 * 1024


def _https_urls(field, **kwargs):
    if isinstance(field, models.URLField):
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


class DestinationForm(forms.ModelForm):
    class Meta:
        model = Destination
        formfield_callback = _https_urls
        fields = [
            "name", "kind", "bucket", "prefix", "region", "endpoint_url", "sse", "kms_key_id",
            "storage_class", "access_key_env", "secret_key_env", "url", "auth_header_env",
            "path", "max_object_mb",
        ]  # fmt: skip


class ProfileForm(forms.ModelForm):
    rules = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}),
        help_text='A JSON list, e.g. [{"op": "set", "tag": "InstitutionName", "value": "X"}]',
    )

    class Meta:
        model = MappingProfile
        fields = ["name", "description", "rules"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["rules"] = json.dumps(self.instance.rules, indent=2)
        elif not self.is_bound:
            self.initial["rules"] = "[]"

    def clean_rules(self):
        try:
            rules = json.loads(self.cleaned_data["rules"])
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc.msg} (line {exc.lineno})") from None
        problems = mapping.validate_rules(rules, LookupTable.objects.values_list("name", flat=True))
        if problems:
            raise forms.ValidationError(problems)
        return rules


class LookupTableForm(forms.Form):
    name = forms.SlugField(max_length=60)
    description = forms.CharField(max_length=200, required=False)
    file = forms.FileField(help_text="CSV: old value, new value (a header row is skipped)")

    def clean_file(self):
        return check_size(self.cleaned_data.get("file"), "lookup_csv")

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            try:
                data["entries"] = mapping.parse_lookup_csv(_text(upload))
            except ValueError as exc:
                self.add_error("file", str(exc))
        return data


class WaveForm(forms.Form):
    LIST_KINDS = [("accession_numbers", "Accession numbers"), ("patient_ids", "Patient IDs")]

    name = forms.SlugField(max_length=60)
    source = forms.ModelChoiceField(PacsSource.objects.all(), label="Legacy PACS")
    destination = forms.ModelChoiceField(Destination.objects.all())
    profile = forms.ModelChoiceField(
        MappingProfile.objects.all(), required=False, label="Mapping profile"
    )
    priority = forms.IntegerField(initial=0, help_text="higher runs first")
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    modalities = forms.CharField(required=False, help_text="comma-separated, e.g. CT, MR")
    list_file = forms.FileField(
        required=False,
        label="List of studies",
        help_text="one value per line (or first CSV column)",
    )
    list_kind = forms.ChoiceField(choices=LIST_KINDS, initial="accession_numbers", required=False)
    schedule = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="one rule a line: 'mon-fri 7-19=1' (at most 1 association on weekdays "
        "07:00–19:00), '* 0-6=4', 'sat,sun *=0' (paused). Empty: the PACS's own limit.",
    )

    def clean_modalities(self):
        return [m.strip().upper() for m in self.cleaned_data["modalities"].split(",") if m.strip()]

    def clean_schedule(self):
        try:
            return throttle.parse_schedule(self.cleaned_data["schedule"])
        except throttle.ScheduleError as exc:
            raise forms.ValidationError(str(exc)) from None

    def clean_list_file(self):
        upload = self.cleaned_data.get("list_file")
        if upload is None:
            return []
        if upload.size > MAX_LIST_BYTES:
            raise forms.ValidationError("the list is larger than 5 MB")
        values = [line.split(",")[0].strip() for line in _text(upload).splitlines()]
        values = [v for v in values if v]
        if not values:
            raise forms.ValidationError("the file holds no values")
        return values

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "must not be before the start date")
        return data

    def wave_fields(self):
        data = self.cleaned_data
        fields = {
            key: data[key]
            for key in ("name", "source", "destination", "profile", "priority", "date_from",
                        "date_to", "modalities", "schedule")
        }  # fmt: skip
        if data["list_file"]:
            fields[data["list_kind"] or "accession_numbers"] = data["list_file"]
        if not any(row is not None for day in fields["schedule"] for row in day):
            fields["schedule"] = []
        return fields


class ConflictDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[c for c in Conflict.Decision.choices if c[0]])
    note = forms.CharField(max_length=500, required=False)


def _text(upload):
    raw = upload.read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


class DesignForm(forms.ModelForm):
    required_tags = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text='A JSON object, e.g. {"project": "pacs-migration", "phi": "yes"}',
    )

    class Meta:
        from migration.models import DestinationDesign

        model = DestinationDesign
        fields = [
            "region", "encryption", "kms_key_id", "versioning", "object_lock", "retention_days",
            "retention_mode", "block_public_access", "tls_only_policy", "transition_days",
            "transition_class", "required_tags", "dicomweb_tls", "dicomweb_auth", "notes",
        ]  # fmt: skip

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["required_tags"] = json.dumps(self.instance.required_tags or {})

    def clean_required_tags(self):
        text = (self.cleaned_data.get("required_tags") or "").strip()
        try:
            tags = json.loads(text) if text else {}
        except ValueError as exc:
            raise forms.ValidationError(f"not JSON: {exc}") from None
        if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
            raise forms.ValidationError('write an object of strings: {"key": "value"}')
        return tags


class WaiverForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))


class AssumptionsForm(forms.ModelForm):
    class Meta:
        from migration.models import ForecastAssumptions

        model = ForecastAssumptions
        fields = [
            "link_mbps", "link_by_hour", "hosts", "hours_per_day", "target_date",
            "reads_per_month", "egress_share", "device_tb", "device_turnaround_days",
            "months_after", "price_list",
        ]  # fmt: skip
        widgets = {"target_date": forms.DateInput(attrs={"type": "date"})}


class PriceListForm(forms.ModelForm):
    prices = forms.CharField(widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}))

    class Meta:
        from migration.models import PriceList

        model = PriceList
        fields = ["name", "region", "currency", "taken_on", "source", "prices"]
        widgets = {"taken_on": forms.DateInput(attrs={"type": "date"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["prices"] = json.dumps(self.instance.prices, indent=1)

    def clean_prices(self):
        from migration.forecast import price_problem

        try:
            prices = json.loads(self.cleaned_data["prices"])
        except ValueError as exc:
            raise forms.ValidationError(f"not JSON: {exc}") from None
        if problem := price_problem(prices):
            raise forms.ValidationError(problem)
        return prices


class WhatIfForm(forms.Form):
    """The what-if sliders; empty values fall back to the saved assumptions."""

    hosts = forms.IntegerField(min_value=1, max_value=64, required=False)
    link_mbps = forms.FloatField(min_value=1, max_value=100_000, required=False)
    hours_per_day = forms.FloatField(
        min_value=0, max_value=24, required=False, help_text="0: the waves' own schedules"
    )
    target_date = forms.DateField(required=False)

    def overrides(self):
        return {k: v for k, v in self.cleaned_data.items() if v is not None}
