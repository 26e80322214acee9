"""Inventory fixtures: seeding helpers for capped Orthancs and dcmqrscp."""

from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest

from devstack import synthetic
from devstack.services.base import LOOPBACK
from devstack.services.dcmtk import DcmQrScp
from tests.fixtures_services import TEST_AET, start_service

MODALITIES = ("CT", "MR", "CR", "US", "MG")


def studies(count, seed, *, modalities=MODALITIES, undated=0, **shape):
    """`count` one-instance studies (16×16 pixels) spread over 2005–2024 and the modalities,
    `undated` of them without a StudyDate; as {StudyInstanceUID: Dataset}."""
    shape = {"rows": 16, "cols": 16, "date_from": date(2005, 1, 1), "date_to": date(2024, 12, 31)}
    found = {}
    per, extra = divmod(count, len(modalities))
    for index, modality in enumerate(modalities):
        n = per + (1 if index < extra else 0)
        if not n:
            continue
        gone = undated // len(modalities) + (1 if index < undated % len(modalities) else 0)
        for datasets in synthetic.iter_studies(
            studies=n, modality=modality, seed=seed * 100 + index, undated=min(gone, n), **shape
        ):
            found[str(datasets[0].StudyInstanceUID)] = datasets[0]
    return found


WHEN = ("StudyDate", "StudyTime", "SeriesDate", "SeriesTime", "ContentDate", "ContentTime")
KEYS = ("PatientID", "AccessionNumber", "PatientName")


def hidden(ds, keep=()):
    """A copy of `ds` with neither date nor time, nor those of PatientID, AccessionNumber
    and PatientName not kept: a study a capped universal C-FIND can hide."""
    gone = [*WHEN, *(key for key in KEYS if key not in keep)]
    return synthetic.without_tags(ds, *gone)


def upload(orthanc, datasets, threads=8):
    """POST every dataset to Orthanc's REST API in parallel (about 100 a second)."""
    blobs = [synthetic.dataset_bytes(ds) for ds in datasets]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(orthanc.upload, blobs))


def delete_study(orthanc, study_uid):
    found = orthanc._call("POST", "/tools/lookup", data=study_uid)
    for item in found:
        if item["Type"] == "Study":
            orthanc._call("DELETE", f"/studies/{item['ID']}")


def register(pacs_name, service, **options):
    from inventory import actions

    port = getattr(service, "dicom_port", None) or service.port
    source, _ = actions.register_source(
        pacs_name, service.aet, LOOPBACK, port, calling_ae_title=TEST_AET, **options
    )
    return source


@pytest.fixture(scope="module")
def dcmqrscp_factory():
    """Start dedicated dcmqrscp archives; they stop at the end of the module."""
    started = []

    def start(aet="INVQR"):
        archive = DcmQrScp(aet=aet)
        started.append(archive)
        return start_service(archive)

    yield start
    for archive in started:
        archive.stop()
