"""Saving a model instance from validated fields, the model's rules checked first."""


def save_fields(instance, fields):
    """Set `fields` ({name: value}) on `instance`, check the model's rules (field
    validators, clean(), constraints; ValidationError if broken) and save it."""
    for name, value in fields.items():
        setattr(instance, name, value)
    instance.full_clean()
    instance.save()
    return instance
