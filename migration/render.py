"""Thumbnails of DICOM instances, for the side-by-side render review.

A thumbnail is pixel data only: one decoded frame, windowed to 8 bits and resized, as a
PNG without text chunks, so no patient data travels with it (burned-in annotations aside,
which are part of the pixels the reviewer must see). Compressed objects decode through
pydicom's pixel handlers (pylibjpeg for JPEG, JPEG 2000 and RLE).
"""

import io

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, pixel_array

from migration import readback
from migration.dicom import RetrieveError
from migration.storage import DestinationError

MAX_EDGE = 256
MODALITY_WINDOWS = {"CT": (40.0, 400.0)}  # soft tissue (centre, width) in HU
SIDES = ("source", "destination")


class RenderError(ValueError):
    """The object cannot be turned into a picture; the message says why, without PHI."""


def thumbnail(data, frame=0, max_edge=MAX_EDGE):
    """PNG bytes of frame `frame` of the Part-10 object `data`, at most `max_edge` px."""
    ds = _parse(data)
    image = to_image(ds, decode_frame(ds, frame))
    image.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _parse(data):
    try:
        ds = dcmread(io.BytesIO(data), force=True)
    except (InvalidDicomError, EOFError, ValueError, KeyError, OSError) as exc:
        raise RenderError(f"not a readable DICOM object ({exc.__class__.__name__})") from exc
    if "PixelData" not in ds and "FloatPixelData" not in ds:
        raise RenderError("the object holds no pixel data")
    return ds


def frame_count(ds):
    return int(ds.get("NumberOfFrames") or 1)


def decode_frame(ds, frame=0):
    """One decoded frame (rows × cols, or rows × cols × 3 for colour, already RGB)."""
    if not 0 <= frame < frame_count(ds):
        raise RenderError(f"frame {frame} does not exist (the object has {frame_count(ds)})")
    try:
        return pixel_array(ds, index=frame if frame_count(ds) > 1 else None)
    except Exception as exc:  # each codec raises its own kinds for damaged data
        syntax = getattr(ds.get("file_meta", {}), "TransferSyntaxUID", "unknown syntax")
        raise RenderError(f"pixel data cannot be decoded ({syntax}): {exc}") from exc


def to_image(ds, pixels):
    """A Pillow image (8-bit grey or RGB) of one decoded frame."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        pixels = apply_color_lut(pixels, ds)
    if pixels.ndim == 3:
        return Image.fromarray(_to_uint8(pixels), mode="RGB")
    grey = window(ds, pixels)
    if photometric == "MONOCHROME1":
        grey = 255 - grey
    return Image.fromarray(grey, mode="L")


def _to_uint8(pixels):
    if pixels.dtype == np.uint8:
        return pixels
    top = float(pixels.max()) or 1.0
    return np.clip(pixels.astype(np.float64) * 255.0 / top, 0, 255).astype(np.uint8)


def window(ds, pixels):
    """Grey levels 0–255 from stored values: rescale to modality units, then the object's
    first window, else the modality's default window, else the frame's min–max."""
    values = pixels.astype(np.float64) * _number(ds, "RescaleSlope", 1.0) + _number(
        ds, "RescaleIntercept", 0.0
    )
    centre, width = (
        _object_window(ds)
        or MODALITY_WINDOWS.get(str(ds.get("Modality", "")))
        or (_min_max_window(values))
    )
    low = centre - width / 2.0
    scaled = (values - low) / max(width, 1e-6) * 255.0
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8)


def _object_window(ds):
    centre, width = _first(ds.get("WindowCenter")), _first(ds.get("WindowWidth"))
    if centre is None or width is None or width <= 0:
        return None
    return centre, width


def _min_max_window(values):
    low, high = float(values.min()), float(values.max())
    return (low + high) / 2.0, max(high - low, 1.0)


def _first(value):
    """The first value of a possibly multi-valued number (DS/IS), or None."""
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if len(value) else None
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def _number(ds, keyword, default):
    value = _first(ds.get(keyword))
    return default if value is None else value


def render_side(ledger_row, sop_uid, side, frame=0, max_edge=MAX_EDGE):
    """The thumbnail of one side ("source": re-retrieved from the PACS, "destination":
    read back from the cloud copy) of one migrated instance; RenderError if either the
    read or the decoding fails."""
    if side not in SIDES:
        raise RenderError(f"unknown side {side!r}")
    stored = readback.stored_instances(ledger_row).get(sop_uid)
    if stored is None:
        raise RenderError(f"instance {sop_uid} is not in the manifest of ledger {ledger_row.pk}")
    try:
        data = _read(ledger_row, stored, side)
    except (RetrieveError, DestinationError, OSError) as exc:
        raise RenderError(f"{side}: could not read instance {sop_uid}: {exc}") from exc
    return thumbnail(data, frame=frame, max_edge=max_edge)


def _read(ledger_row, stored, side):
    if side == "destination":
        return readback.destination_instance(stored)
    source = ledger_row.wave.source
    return readback.source_instance(
        source, ledger_row.study.study_uid, stored.series_uid, stored.sop_uid, stored.sop_class
    )


def render_pair(ledger_row, sop_uid, frame=0, max_edge=MAX_EDGE):
    """{"source": png bytes or RenderError, "destination": png bytes or RenderError}."""
    pair = {}
    for side in SIDES:
        try:
            pair[side] = render_side(ledger_row, sop_uid, side, frame=frame, max_edge=max_edge)
        except RenderError as exc:
            pair[side] = exc
    return pair
