"""Synthetic DICOM studies: the test data of the whole project.

Everything here is a pure function of its arguments: the same seed and arguments give
byte-identical Part-10 files (no clocks, no random UIDs), so tests, demos and benchmarks
can regenerate a legacy PACS's content at will. UIDs are hashes of the seed and the
study/series/instance indexes under pydicom's UID root; a different seed gives
different UIDs. Patient names are non-ASCII on purpose, in the requested character set.

The "nasty cases" of a real migration (truncated files, missing required tags, one SOP
Instance UID with two different contents) are separate helpers that derive a broken
copy from a good dataset.
"""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom import dcmwrite
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    PYDICOM_ROOT_UID,
    UID,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    DigitalMammographyXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    MRImageStorage,
    MultiFrameGrayscaleByteSecondaryCaptureImageStorage,
    MultiFrameGrayscaleWordSecondaryCaptureImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)

TRANSFER_SYNTAXES = {
    "explicit": ExplicitVRLittleEndian,
    "implicit": ImplicitVRLittleEndian,
    "jpeg": JPEGBaseline8Bit,
    "jpeg2000": JPEG2000Lossless,
    "rle": RLELossless,
}
CHARSETS = ("ISO_IR 100", "ISO_IR 192")

IMPLEMENTATION_VERSION_NAME = "CC_SYNTHETIC_1"


@dataclass(frozen=True)
class ModalityProfile:
    sop_class: UID
    bits_stored: int
    study_description: str
    series_descriptions: tuple[str, ...]
    body_part: str = ""
    cross_sectional: bool = False


MODALITIES = {
    "CT": ModalityProfile(
        CTImageStorage, 12, "CT CHEST WITH CONTRAST",
        ("AXIAL 5mm", "AXIAL 1.25mm", "CORONAL MPR", "SCOUT"), "CHEST", True,
    ),
    "MR": ModalityProfile(
        MRImageStorage, 12, "MRI BRAIN WITHOUT CONTRAST",
        ("T1 AX", "T2 AX", "FLAIR AX", "DWI"), "BRAIN", True,
    ),
    "CR": ModalityProfile(
        ComputedRadiographyImageStorage, 12, "XR CHEST 2 VIEWS", ("PA", "LATERAL"), "CHEST"
    ),
    "DX": ModalityProfile(
        ComputedRadiographyImageStorage, 12, "XR KNEE 2 VIEWS", ("AP", "LATERAL"), "KNEE"
    ),
    "US": ModalityProfile(
        UltrasoundImageStorage, 8, "US ABDOMEN COMPLETE", ("LIVER", "KIDNEYS"), "ABDOMEN"
    ),
    "MG": ModalityProfile(
        DigitalMammographyXRayImageStorageForPresentation, 12, "MAMMO SCREENING BILATERAL",
        ("L CC", "L MLO", "R CC", "R MLO"), "BREAST",
    ),
    "OT": ModalityProfile(
        SecondaryCaptureImageStorage, 8, "OUTSIDE IMAGES", ("SCANNED DOCUMENT",)
    ),
}  # fmt: skip

# (PatientName, PatientSex); every name is non-ASCII so that charset bugs show.
_PATIENTS = {
    "ISO_IR 100": (
        ("Müller^Jörg", "M"), ("Åström^Ingrid", "F"), ("Núñez^José", "M"),
        ("Dubois^Hélène", "F"), ("Ødegård^Søren", "M"), ("Lefèvre^Anaïs", "F"),
        ("Björk^Björn", "M"), ("García Márquez^Inês", "F"),
    ),
    "ISO_IR 192": (
        ("Müller^Zoë", "F"), ("Παπαδόπουλος^Νίκος", "M"), ("Иванова^Ольга", "F"),
        ("Yamada^Tarou=山田^太郎=やまだ^たろう", "M"), ("Nguyễn^Thị Ánh", "F"),
        ("Kowalski^Łukasz", "M"), ("Wang^XiaoDong=王^小東", "M"), ("Çelik^Şule", "F"),
    ),
}  # fmt: skip
_SITE = {
    "ISO_IR 100": ("Universitätsklinikum Süd", ("Schröder^Anna^^Dr.", "Lindqvist^Pär^^Dr.")),
    "ISO_IR 192": ("Γενικό Νοσοκομείο Αθηνών", ("Σταύρου^Ελένη^^Dr.", "Smirnov^Пётр^^Dr.")),
}


@dataclass(frozen=True)
class _Spec:
    """The arguments of one generation run, checked by `_validate`."""

    studies: int
    series: int
    instances: int
    rows: int
    cols: int
    modality: str
    seed: int
    transfer_syntax: str
    charset: str
    date_from: date
    date_to: date
    undated: int
    multiframe: int

    @property
    def profile(self) -> ModalityProfile:
        return MODALITIES[self.modality]

    @property
    def syntax(self) -> UID:
        return TRANSFER_SYNTAXES[self.transfer_syntax]

    @property
    def bits_stored(self) -> int:
        return 8 if self.syntax == JPEGBaseline8Bit else self.profile.bits_stored

    @property
    def bits_allocated(self) -> int:
        return 8 if self.bits_stored <= 8 else 16


def iter_studies(
    studies: int = 1,
    series: int = 1,
    instances: int = 1,
    rows: int = 64,
    cols: int = 64,
    modality: str = "CT",
    seed: int = 0,
    transfer_syntax: str = "explicit",
    charset: str = "ISO_IR 100",
    date_from: date = date(2005, 1, 1),
    date_to: date = date(2024, 12, 31),
    undated: int = 0,
    multiframe: int = 1,
) -> Iterator[list[FileDataset]]:
    """Yield, study by study, every instance of that study as a ready-to-write FileDataset.

    Arguments are validated eagerly (ValueError), before the first study is built.
    `undated` studies carry no StudyDate; the others are spread evenly over
    [date_from, date_to]. `multiframe` > 1 makes every instance a multi-frame object.
    """
    spec = _Spec(
        studies, series, instances, rows, cols, str(modality).upper(), seed,
        transfer_syntax, charset, date_from, date_to, undated, multiframe,
    )  # fmt: skip
    _validate(spec)
    return _iter_studies(spec)


def generate(outdir: str | Path, **kwargs) -> list[Path]:
    """Write `iter_studies(**kwargs)` under `outdir`; return the paths written."""
    paths = []
    for index, datasets in enumerate(iter_studies(**kwargs)):
        paths.extend(write_study(outdir, index, datasets))
    return paths


def write_study(outdir: str | Path, study_index: int, datasets: list[Dataset]) -> list[Path]:
    """Write one study as `outdir/<study>/<series>/<instance>.dcm` (0-based, no PHI)."""
    paths = []
    for ds in datasets:
        path = Path(
            outdir, str(study_index), str(ds.SeriesNumber - 1), f"{ds.InstanceNumber - 1}.dcm"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(dataset_bytes(ds))
        paths.append(path)
    return paths


def dataset_bytes(ds: Dataset) -> bytes:
    """Serialise `ds` as a DICOM Part-10 file (preamble, file meta, dataset) in memory."""
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


# -- the nasty cases ------------------------------------------------------------------


def truncated_bytes(ds: Dataset, keep: float = 0.5) -> bytes:
    """Return `ds` as a Part-10 file cut off inside its pixel data.

    `keep` is the fraction of the Pixel Data element that survives, as when a transfer
    or a disk dies mid-file.
    """
    if "PixelData" not in ds:
        raise ValueError("dataset has no PixelData to truncate")
    if not 0 <= keep < 1:
        raise ValueError(f"keep must be in [0, 1), got {keep!r}")
    full = dataset_bytes(ds)
    head = copy.deepcopy(ds)
    del head.PixelData
    implicit = ds.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    value_start = len(dataset_bytes(head)) + (8 if implicit else 12)
    return full[: value_start + int((len(full) - value_start) * keep)]


def without_tags(ds: Dataset, *keywords: str) -> Dataset:
    """Return a copy of `ds` without the given elements (e.g. "StudyInstanceUID")."""
    clone = copy.deepcopy(ds)
    for keyword in keywords:
        if tag_for_keyword(keyword) is None:
            raise ValueError(f"unknown DICOM keyword: {keyword!r}")
        if keyword in clone:
            delattr(clone, keyword)
    return clone


def duplicate_sop_different_content(ds: Dataset) -> Dataset:
    """Return a copy of `ds` with the same SOP Instance UID and inverted pixels.

    The copy keeps the original transfer syntax: the pixels are decoded, inverted and
    encoded again, so both objects are valid yet their Pixel Data differ.
    """
    clone = copy.deepcopy(ds)
    pixels = ds.pixel_array.reshape(-1, ds.Rows, ds.Columns)
    inverted = (2**ds.BitsStored - 1) - pixels
    _set_pixel_data(clone, inverted.astype(pixels.dtype), ds.file_meta.TransferSyntaxUID)
    return clone


# -- building studies -----------------------------------------------------------------


def _validate(spec: _Spec) -> None:
    for name in ("studies", "series", "instances", "multiframe", "rows", "cols"):
        value = getattr(spec, name)
        _require(isinstance(value, int) and value >= 1, f"{name} must be >= 1, got {value!r}")
    _require(max(spec.rows, spec.cols) <= 65535, "rows and cols must be at most 65535")
    _require(isinstance(spec.seed, int) and spec.seed >= 0, f"seed must be >= 0, got {spec.seed!r}")
    _require(0 <= spec.undated <= spec.studies, f"undated must be 0..{spec.studies} (studies)")
    _require(spec.date_from <= spec.date_to, f"date_from {spec.date_from} is after date_to")
    _require(
        spec.modality in MODALITIES,
        f"unknown modality {spec.modality!r}; use one of {', '.join(MODALITIES)}",
    )
    _require(
        spec.transfer_syntax in TRANSFER_SYNTAXES,
        f"unknown transfer syntax {spec.transfer_syntax!r}; "
        f"use one of {', '.join(TRANSFER_SYNTAXES)}",
    )
    _require(spec.charset in CHARSETS, f"unknown charset {spec.charset!r}; use one of {CHARSETS}")
    _require(
        spec.transfer_syntax != "jpeg2000" or min(spec.rows, spec.cols) >= 32,
        "jpeg2000 needs rows and cols >= 32 (the encoder always uses 6 DWT resolutions)",
    )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _iter_studies(spec: _Spec) -> Iterator[list[FileDataset]]:
    dates = _study_dates(spec)
    for study in range(spec.studies):
        yield _study(spec, study, dates[study])


def _study_dates(spec: _Spec) -> list[date | None]:
    """StudyDate per study: `undated` seeded picks get None, the rest spread evenly."""
    rng = np.random.default_rng([spec.seed, 1])
    undated = set(rng.choice(spec.studies, size=spec.undated, replace=False).tolist())
    dated = [index for index in range(spec.studies) if index not in undated]
    span = (spec.date_to - spec.date_from).days
    dates: list[date | None] = [None] * spec.studies
    for rank, index in enumerate(dated):
        fraction = rank / (len(dated) - 1) if len(dated) > 1 else 0.0
        dates[index] = spec.date_from + timedelta(days=round(span * fraction))
    return dates


def _study(spec: _Spec, study: int, when: date | None) -> list[FileDataset]:
    base = Dataset()
    base.SpecificCharacterSet = spec.charset
    _add_patient(base, spec, study % max(1, (spec.studies + 1) // 2))
    _add_study(base, spec, study, when)
    instances = []
    for series in range(spec.series):
        _add_series(base, spec, study, series)
        for instance in range(spec.instances):
            instances.append(_instance(base, spec, (study, series, instance)))
    return instances


def _uid(spec: _Spec, *parts) -> UID:
    """A deterministic UID; the '/' separators keep e.g. (1, 23) and (12, 3) apart."""
    return generate_uid(PYDICOM_ROOT_UID, ["/".join(map(str, (spec.seed, *parts)))])


def _add_patient(ds: Dataset, spec: _Spec, patient: int) -> None:
    """Half as many patients as studies, so that patients have prior studies."""
    rng = np.random.default_rng([spec.seed, 2, patient])
    names = _PATIENTS[spec.charset]
    name, sex = names[(patient + int(rng.integers(len(names)))) % len(names)]
    ds.PatientName = name
    ds.PatientID = f"SYN{spec.seed}-{patient + 1:06d}"
    birth = spec.date_from - timedelta(days=int(rng.integers(18 * 365, 90 * 365)))
    ds.PatientBirthDate = birth.strftime("%Y%m%d")
    ds.PatientSex = sex


def _add_study(ds: Dataset, spec: _Spec, study: int, when: date | None) -> None:
    rng = np.random.default_rng([spec.seed, 3, study])
    institution, referrers = _SITE[spec.charset]
    ds.StudyInstanceUID = _uid(spec, "study", study)
    ds.StudyID = str(study + 1)
    ds.AccessionNumber = f"A{spec.seed % 10000:04d}{study + 1:07d}"
    ds.StudyDescription = spec.profile.study_description
    ds.ReferringPhysicianName = referrers[int(rng.integers(len(referrers)))]
    ds.InstitutionName = institution
    ds.Manufacturer = "Synthetic"
    ds.ManufacturerModelName = "devstack.synthetic"
    ds.StudyTime = (
        f"{int(rng.integers(7, 20)):02d}{int(rng.integers(60)):02d}{int(rng.integers(60)):02d}"
    )
    _add_dates(ds, spec, study, when)


def _add_dates(ds: Dataset, spec: _Spec, study: int, when: date | None) -> None:
    """Undated studies alternate between an empty StudyDate and none at all."""
    if when is not None:
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = when.strftime("%Y%m%d")
    elif study % 2 == 0:
        ds.StudyDate = ""


def _add_series(ds: Dataset, spec: _Spec, study: int, series: int) -> None:
    profile = spec.profile
    ds.Modality = spec.modality
    ds.SeriesInstanceUID = _uid(spec, "series", study, series)
    ds.SeriesNumber = series + 1
    ds.SeriesDescription = profile.series_descriptions[series % len(profile.series_descriptions)]
    ds.SeriesTime = ds.ContentTime = ds.StudyTime
    if profile.body_part:
        ds.BodyPartExamined = profile.body_part
    if profile.cross_sectional:
        ds.FrameOfReferenceUID = _uid(spec, "frame-of-reference", study, series)
        ds.PositionReferenceIndicator = ""


def _instance(base: Dataset, spec: _Spec, index: tuple[int, int, int]) -> FileDataset:
    ds = copy.deepcopy(base)
    ds.SOPClassUID = _sop_class(spec)
    ds.SOPInstanceUID = _uid(spec, "instance", *index)
    ds.InstanceNumber = index[2] + 1
    _add_modality_tags(ds, spec, index[2])
    _add_image_pixel_tags(ds, spec)
    frames = _quantised(_frames(spec, index), spec.bits_stored, spec.bits_allocated)
    file_ds = _file_dataset(ds)
    _set_pixel_data(file_ds, frames, spec.syntax)
    return file_ds


def _sop_class(spec: _Spec) -> UID:
    """Single-frame IODs of CT/MR/CR/MG cannot hold frames: multi-frame ones become SC."""
    if spec.multiframe == 1:
        return spec.profile.sop_class
    if spec.modality == "US":
        return UltrasoundMultiFrameImageStorage
    if spec.bits_allocated == 8:
        return MultiFrameGrayscaleByteSecondaryCaptureImageStorage
    return MultiFrameGrayscaleWordSecondaryCaptureImageStorage


def _add_modality_tags(ds: Dataset, spec: _Spec, instance: int) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL" if spec.modality == "CT" else "OTHER"]
    if spec.profile.cross_sectional:
        _add_geometry(ds, spec, instance)
    if spec.modality == "CT":
        ds.KVP = "120"
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "-1024", "1", "HU"
        if spec.bits_stored == 8:
            ds.RescaleSlope = "16"
    elif spec.modality == "MR":
        ds.ScanningSequence, ds.SequenceVariant, ds.MRAcquisitionType = "SE", "NONE", "2D"
        ds.RepetitionTime, ds.EchoTime, ds.MagneticFieldStrength = "500", "15", "1.5"
    elif spec.modality in ("CR", "DX", "MG"):
        _add_projection_tags(ds, spec)
    if "Secondary Capture" in ds.SOPClassUID.name:
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.ConversionType = "WSD"


def _add_geometry(ds: Dataset, spec: _Spec, instance: int) -> None:
    """Axial slices over a 350 mm field of view, stacked along -Z."""
    spacing = 350 / max(spec.rows, spec.cols)
    thickness = 1.25 if ds.SeriesDescription.endswith("1.25mm") else 5.0
    z = -instance * thickness * spec.multiframe
    ds.PixelSpacing = [_ds(spacing), _ds(spacing)]
    ds.SliceThickness = _ds(thickness)
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.ImagePositionPatient = [_ds(-spacing * spec.cols / 2), _ds(-spacing * spec.rows / 2), _ds(z)]
    ds.SliceLocation = _ds(z)


def _add_projection_tags(ds: Dataset, spec: _Spec) -> None:
    ds.ImagerPixelSpacing = [_ds(430 / spec.rows), _ds(430 / spec.cols)]
    ds.ViewPosition = ds.SeriesDescription.split()[-1][:16]
    if spec.modality == "MG":
        ds.ImageType = ["ORIGINAL", "PRIMARY", ""]
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.ImageLaterality = ds.SeriesDescription[0]
        ds.BurnedInAnnotation = "NO"


def _ds(value: float) -> str:
    """A Decimal String with a fixed, short spelling (DS is at most 16 characters)."""
    return f"{value:.6g}"


def _add_image_pixel_tags(ds: Dataset, spec: _Spec) -> None:
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = spec.rows, spec.cols
    ds.BitsAllocated = spec.bits_allocated
    ds.BitsStored = spec.bits_stored
    ds.HighBit = spec.bits_stored - 1
    ds.PixelRepresentation = 0
    if spec.multiframe > 1:
        ds.NumberOfFrames = spec.multiframe
        ds.FrameTime = "33.3"
        ds.FrameIncrementPointer = 0x00181063
    intercept, slope = float(ds.get("RescaleIntercept", 0)), float(ds.get("RescaleSlope", 1))
    top = intercept + slope * (2**spec.bits_stored - 1)
    ds.WindowCenter, ds.WindowWidth = _ds((intercept + top) / 2), _ds(top - intercept)


def _frames(spec: _Spec, index: tuple[int, int, int]) -> np.ndarray:
    """Float frames in [0, 1]: one phantom per series, sliced along the series' extent."""
    study, series, instance = index
    organs = np.random.default_rng([spec.seed, 4, study, series]).uniform(
        [-0.5, -0.5, 0.1, 0.1], [0.5, 0.5, 0.3, 0.25], size=(3, 4)
    )
    noise = np.random.default_rng([spec.seed, 5, study, series, instance])
    total = spec.instances * spec.multiframe
    frames = []
    for frame in range(spec.multiframe):
        position = (instance * spec.multiframe + frame) / (total - 1) if total > 1 else 0.5
        frames.append(_phantom(spec.rows, spec.cols, organs, position, noise))
    return np.stack(frames)


def _phantom(rows: int, cols: int, organs: np.ndarray, position: float, rng) -> np.ndarray:
    """An elliptic body with a left-right gradient and round organs that grow and shrink
    from one end of the series (`position` 0) to the other (1), plus Gaussian noise."""
    y, x = np.mgrid[-1 : 1 : rows * 1j, -1 : 1 : cols * 1j]
    image = 0.3 * ((x / 0.9) ** 2 + (y / 0.75) ** 2 <= 1) + 0.1 * (x + 1) / 2
    scale = np.sqrt(1 - 0.75 * (2 * position - 1) ** 2)
    for cx, cy, radius, level in organs:
        image += level * ((x - cx) ** 2 + (y - cy) ** 2 <= (radius * scale) ** 2)
    image += rng.normal(0, 0.02, size=(rows, cols))
    return np.clip(image, 0, 1)


def _quantised(frames: np.ndarray, bits_stored: int, bits_allocated: int) -> np.ndarray:
    dtype = np.uint8 if bits_allocated == 8 else np.uint16
    return np.round(frames * (2**bits_stored - 1)).astype(dtype)


def _file_dataset(ds: Dataset) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    return FileDataset("", ds, file_meta=meta, preamble=b"\x00" * 128)


def _set_pixel_data(ds: FileDataset, frames: np.ndarray, transfer_syntax: UID) -> None:
    """Store `frames` (frames × rows × cols) in `ds`, encoded in `transfer_syntax`.

    pydicom encodes RLE and JPEG 2000 itself; it has no JPEG Baseline encoder, so those
    frames go through Pillow and are encapsulated here.
    """
    if transfer_syntax == JPEGBaseline8Bit:
        ds.PixelData = encapsulate([_jpeg(frame) for frame in frames])
        ds["PixelData"].VR = "OB"
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        ds.file_meta.TransferSyntaxUID = transfer_syntax
        _match_encoding(ds)
        return
    native = frames.astype(frames.dtype.newbyteorder("<"))
    ds.PixelData = native.tobytes()
    ds["PixelData"].VR = "OB" if ds.BitsAllocated == 8 else "OW"
    ds.file_meta.TransferSyntaxUID = (
        ExplicitVRLittleEndian if transfer_syntax.is_compressed else transfer_syntax
    )
    if transfer_syntax.is_compressed:
        ds.compress(transfer_syntax, generate_instance_uid=False)
    _match_encoding(ds)


def _match_encoding(ds: FileDataset) -> None:
    """Make the in-memory encoding agree with the file meta, as a dataset read from disk
    would; DICOM network peers (pynetdicom) check that the two agree."""
    syntax = ds.file_meta.TransferSyntaxUID
    ds.set_original_encoding(syntax.is_implicit_VR, syntax.is_little_endian)


def _jpeg(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame.astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()
