"""Upload size caps, per kind of file (settings UPLOAD_CAPS_MB, from the environment).

Django's DATA_UPLOAD_MAX_MEMORY_SIZE bounds a request's non-file body; files stream to
disk past FILE_UPLOAD_MAX_MEMORY_SIZE, so each form field checks its own cap here."""

from django.conf import settings
from django.core.exceptions import ValidationError


def cap_bytes(kind):
    return int(settings.UPLOAD_CAPS_MB[kind] * 1024 * 1024)


def check_size(upload, kind):
    """Raise ValidationError when `upload` is larger than the cap of `kind`."""
    if upload is not None and upload.size > cap_bytes(kind):
        raise ValidationError(f"the file is larger than {settings.UPLOAD_CAPS_MB[kind]:g} MB")
    return upload


def check_count(values, kind):
    """Raise ValidationError when a list sent to the API has more items than allowed."""
    limit = settings.UPLOAD_LIST_MAX_ITEMS
    if values is not None and len(values) > limit:
        raise ValidationError(f"at most {limit} {kind} per request")
    return values
