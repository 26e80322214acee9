"""Thumbnails for the render review: every transfer syntax the PACS holds decodes, the
window comes from the object or the modality, MONOCHROME1 is inverted, colour stays
colour, frames can be chosen, and damaged objects say so with RenderError."""

import io

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import ExplicitVRLittleEndian

from devstack import synthetic
from migration import render
from migration.models import StudyState
from tests.migration import validation_support as vs


def one_instance(modality="CT", transfer_syntax="explicit", size=32, **kwargs):
    studies = synthetic.iter_studies(
        rows=size, cols=size, modality=modality, transfer_syntax=transfer_syntax, **kwargs
    )
    return next(studies)[0]


def decoded(png):
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return image, np.asarray(image)


@pytest.mark.parametrize(
    "modality, transfer_syntax",
    [("CT", "explicit"), ("CR", "jpeg"), ("MG", "jpeg2000"), ("US", "rle"), ("MR", "implicit")],
)
def test_a_thumbnail_of_each_transfer_syntax_is_a_grey_png_of_the_phantom(
    modality, transfer_syntax
):
    ds = one_instance(modality, transfer_syntax)

    image, pixels = decoded(render.thumbnail(synthetic.dataset_bytes(ds)))

    assert image.mode == "L" and image.size == (32, 32)
    assert pixels[0, 0] < 20, "the corner outside the body is dark"
    assert pixels[16, 16] > pixels[0, 0] + 40, "the body is brighter than the air around it"
    assert pixels.std() > 10


def test_lossless_syntaxes_give_the_very_same_thumbnail_and_lossy_jpeg_a_close_one():
    shapes = {
        syntax: decoded(render.thumbnail(synthetic.dataset_bytes(one_instance("US", syntax))))[1]
        for syntax in ("explicit", "rle", "jpeg2000", "jpeg")
    }

    assert np.array_equal(shapes["explicit"], shapes["rle"])
    assert np.array_equal(shapes["explicit"], shapes["jpeg2000"])
    difference = np.abs(shapes["explicit"].astype(int) - shapes["jpeg"].astype(int))
    assert 0 < difference.mean() < 8


def test_large_images_shrink_to_the_maximum_edge_keeping_their_aspect():
    ds = next(synthetic.iter_studies(rows=48, cols=96, modality="CT"))[0]

    image, _pixels = decoded(render.thumbnail(synthetic.dataset_bytes(ds), max_edge=32))

    assert image.size == (32, 16)


def test_the_object_window_is_used_after_the_rescale_and_a_ct_without_one_gets_soft_tissue():
    ds = one_instance("CT", "explicit", size=16)
    ds.RescaleSlope, ds.RescaleIntercept = "1", "-1024"
    raw = np.zeros((16, 16), dtype=np.uint16)
    raw[:, 8:] = 1024 + 40  # 40 HU: the centre of the soft-tissue window
    ds.PixelData = raw.tobytes()
    ds.WindowCenter, ds.WindowWidth = ["40", "80"], ["400", "800"]  # first value counts

    _image, with_window = decoded(render.thumbnail(synthetic.dataset_bytes(ds)))
    del ds.WindowCenter, ds.WindowWidth
    _image, default = decoded(render.thumbnail(synthetic.dataset_bytes(ds)))

    assert with_window[0, 0] == 0, "-1024 HU is below any soft-tissue window"
    assert with_window[0, 15] == 128, "40 HU is the window centre: mid grey"
    assert np.array_equal(with_window, default), "CT default is 40/400"


def test_an_object_without_window_or_known_modality_is_shown_min_to_max():
    ds = one_instance("OT", "explicit", size=16)
    del ds.WindowCenter, ds.WindowWidth

    _image, pixels = decoded(render.thumbnail(synthetic.dataset_bytes(ds)))

    assert pixels.min() == 0 and pixels.max() == 255


def test_monochrome1_is_inverted():
    ds = one_instance("CR", "explicit", size=16)
    _image, normal = decoded(render.thumbnail(synthetic.dataset_bytes(ds)))
    ds.PhotometricInterpretation = "MONOCHROME1"

    _image, inverted = decoded(render.thumbnail(synthetic.dataset_bytes(ds)))

    assert np.array_equal(inverted, 255 - normal)


def test_an_rgb_object_stays_in_colour():
    ds = one_instance("OT", "explicit", size=16)
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    rgb[..., 0] = 200  # red everywhere, a green square in one corner
    rgb[:4, :4] = (0, 180, 0)
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = rgb.tobytes()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian

    image, pixels = decoded(render.thumbnail(synthetic.dataset_bytes(ds)))

    assert image.mode == "RGB"
    assert tuple(pixels[10, 10]) == (200, 0, 0) and tuple(pixels[0, 0]) == (0, 180, 0)


def test_each_frame_of_a_multiframe_object_can_be_chosen_and_a_missing_one_is_refused():
    ds = one_instance("OT", "rle", size=16, multiframe=3)
    data = synthetic.dataset_bytes(ds)

    frames = [decoded(render.thumbnail(data, frame=n))[1] for n in range(3)]

    assert all(frame.shape == (16, 16) for frame in frames)
    assert not np.array_equal(frames[0], frames[2]), "the phantom changes along the series"
    with pytest.raises(render.RenderError, match="frame 3 does not exist"):
        render.thumbnail(data, frame=3)


@pytest.mark.filterwarnings("ignore:End of file reached before delimiter:UserWarning")
@pytest.mark.parametrize("syntax", ["explicit", "jpeg", "jpeg2000"])
def test_a_truncated_object_raises_render_error(syntax):
    ds = one_instance("CR" if syntax == "jpeg" else "CT", syntax, size=32)

    with pytest.raises(render.RenderError):
        render.thumbnail(synthetic.truncated_bytes(ds, keep=0.6))


def test_an_object_without_pixels_or_not_dicom_at_all_raises_render_error():
    ds = one_instance("CT", "explicit", size=16)
    del ds.PixelData

    with pytest.raises(render.RenderError, match="no pixel data"):
        render.thumbnail(synthetic.dataset_bytes(ds))
    with pytest.raises(render.RenderError):
        render.thumbnail(b"\x00\x01not dicom")


def test_the_thumbnail_carries_no_text_chunks():
    image, _pixels = decoded(render.thumbnail(synthetic.dataset_bytes(one_instance())))

    assert not image.info.get("text") and "Müller" not in str(image.info)


@pytest.mark.django_db(transaction=True)
def test_render_pair_reads_both_sides_of_migrated_compressed_studies(
    mixed_pacs, migration_s3, bucket
):
    orthanc, studies = mixed_pacs
    chosen = vs.one_of_each(studies, vs.COMPRESSED)
    wave = vs.migrate_in_process(vs.new_wave("rendered", orthanc, chosen, migration_s3, bucket))
    assert {row.state for row in wave.ledger.all()} == {StudyState.DONE}

    for row in wave.ledger.select_related("study", "wave__source", "wave__destination"):
        sop = str(chosen[row.study.study_uid][0].SOPInstanceUID)
        pair = render.render_pair(row, sop)
        source_image, source_pixels = decoded(pair["source"])
        _image, destination_pixels = decoded(pair["destination"])
        assert source_image.size == (source_pixels.shape[1], source_pixels.shape[0])
        assert np.array_equal(source_pixels, destination_pixels), row.study.modalities
        assert source_pixels.std() > 10
        missing = render.render_pair(row, "1.2.3.4.5")
        assert all(isinstance(side, render.RenderError) for side in missing.values())
