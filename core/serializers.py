"""What the apps' REST serializers and generic views share."""

import copy

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from rest_framework import serializers
from rest_framework.settings import api_settings


# Mixin for a ModelSerializer: `validate` also runs the model's own rules (field
# validators, `clean()`, check constraints), so a page's form and the API enforce one rule,
# kept on the model. The instance being changed is not touched (a copy is checked); nested
# lists (steps, members) are left to their own serializers. (Comments, not docstrings, on
# these mixins: drf-spectacular would put a docstring into the API schema.)
class ModelRules:
    def validate(self, attrs):
        attrs = super().validate(attrs)
        model = self.Meta.model
        plain = {key: value for key, value in attrs.items() if not isinstance(value, list)}
        if self.instance is None:
            candidate = model(**plain)
            exclude = [f.name for f in model._meta.concrete_fields if f.name not in plain]
        else:
            candidate, exclude = copy.copy(self.instance), None
            for key, value in plain.items():
                setattr(candidate, key, value)
        try:
            candidate.full_clean(exclude=exclude, validate_unique=False)
        except ValidationError as exc:
            errors = serializers.as_serializer_error(exc)
            if NON_FIELD_ERRORS in errors:
                errors[api_settings.NON_FIELD_ERRORS_KEY] = errors.pop(NON_FIELD_ERRORS)
            raise serializers.ValidationError(errors) from None
        return attrs


# Mixin for a DRF generic view: create and update both call one action,
# `save_with(instance or None, fields, nested)`, where `nested` is the value of the
# serializer's list field named by `nested_field` (None when a PATCH leaves it out).
class SavedByAction:
    nested_field = ""

    def _save(self, serializer, instance):
        fields = dict(serializer.validated_data)
        nested = fields.pop(self.nested_field, None)
        serializer.instance = type(self).save_with(instance, fields, nested)

    def perform_create(self, serializer):
        self._save(serializer, None)

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)
