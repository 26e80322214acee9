"""Screenshot checks: size first (cheap), then Pillow decides whether it is an image at all."""

import warnings

from django.conf import settings
from django.core.exceptions import ValidationError
from PIL import Image, UnidentifiedImageError

from training.catalog import SCREENSHOT_FORMATS, SCREENSHOT_MAX_BYTES, SCREENSHOT_MAX_PIXELS

ALLOWED = ", ".join(sorted(SCREENSHOT_FORMATS))


def max_bytes():
    return getattr(settings, "TRAINING_SCREENSHOT_MAX_BYTES", SCREENSHOT_MAX_BYTES)


def human_size(n):
    for unit in ("bytes", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024


def check_screenshot(upload):
    """Return the image's content type, or raise ValidationError with a message a clinician
    understands. Leaves the file positioned at its start."""
    limit = max_bytes()
    if upload.size > limit:
        raise ValidationError(
            f"The screenshot is too large ({human_size(upload.size)}); the limit is "
            f"{human_size(limit)}. Crop it or choose a smaller one.",
            code="too_large",
        )
    try:
        fmt = _verified_format(upload)
    finally:
        upload.seek(0)
    if fmt not in SCREENSHOT_FORMATS:
        raise ValidationError(
            f"Screenshots must be {ALLOWED} images; this file is {fmt or 'not an image'}.",
            code="bad_type",
        )
    return SCREENSHOT_FORMATS[fmt][1]


def _verified_format(upload):
    upload.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload) as img:
                fmt, (width, height) = img.format, img.size
                img.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        width = height = SCREENSHOT_MAX_PIXELS
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None
    if width * height > SCREENSHOT_MAX_PIXELS:
        raise ValidationError(
            "The screenshot has too many pixels; take a smaller one.", code="too_large"
        )
    return fmt
