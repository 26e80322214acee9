"""Helpers for the migration tests: seeding a PACS, inventory rows, destinations, waiting."""

import time
from datetime import date

from devstack import synthetic
from inventory.models import PacsSource, Study
from migration.models import Destination

S3_KEY_ENV, S3_SECRET_ENV = "CC_SECRET_MIGTEST_S3_KEY", "CC_SECRET_MIGTEST_S3_SECRET"

# (modality, transfer syntax, charset, studies, instances, size): 50 studies in all.
MIX = (
    ("CT", "explicit", "ISO_IR 100", 10, 1, 16),
    ("MR", "implicit", "ISO_IR 192", 10, 2, 16),
    ("CR", "jpeg", "ISO_IR 100", 8, 1, 16),
    ("US", "rle", "ISO_IR 192", 8, 1, 16),
    ("MG", "jpeg2000", "ISO_IR 100", 7, 1, 32),
    ("OT", "explicit", "ISO_IR 192", 7, 2, 16),
)


def mixed_studies(seed=400, mix=MIX):
    """{StudyInstanceUID: [datasets]} over several modalities, syntaxes and charsets."""
    studies = {}
    for index, (modality, syntax, charset, count, instances, size) in enumerate(mix):
        for datasets in synthetic.iter_studies(
            studies=count, instances=instances, rows=size, cols=size, modality=modality,
            transfer_syntax=syntax, charset=charset, seed=seed + index,
            date_from=date(2010, 1, 1), date_to=date(2020, 12, 31),
        ):  # fmt: skip
            studies[str(datasets[0].StudyInstanceUID)] = datasets
    return studies


def upload(orthanc, studies):
    for datasets in studies.values():
        for ds in datasets:
            orthanc.upload(synthetic.dataset_bytes(ds))


def make_source(pacs, name="legacy", **fields):
    """A PacsSource for an Orthanc (`.dicom_port`) or a dcmqrscp (`.port`)."""
    fields.setdefault("calling_ae_title", "CCTEST")
    fields.setdefault("move_destination", "CCTEST")
    port = getattr(pacs, "dicom_port", None) or pacs.port
    return PacsSource.objects.create(
        name=name, ae_title=pacs.aet, host="127.0.0.1", port=port, **fields
    )


def make_inventory(source, studies):
    """One inventory Study row per seeded study, as a crawl would record it."""
    rows = []
    for uid, datasets in studies.items():
        first = datasets[0]
        rows.append(
            Study(
                source=source,
                study_uid=uid,
                patient_id=str(first.PatientID),
                patient_name=str(first.PatientName),
                accession_number=str(first.AccessionNumber),
                study_date=_date(first.get("StudyDate")),
                modalities=str(first.Modality),
                num_instances=len(datasets),
            )  # fmt: skip
        )
    return Study.objects.bulk_create(rows)


def _date(value):
    value = str(value or "")
    return date(int(value[:4]), int(value[4:6]), int(value[6:8])) if len(value) == 8 else None


def s3_destination(server, bucket, name="cloud", **fields):
    return Destination.objects.create(
        name=name, kind="s3", bucket=bucket, endpoint_url=server.endpoint_url,
        region=server.region, access_key_env=S3_KEY_ENV, secret_key_env=S3_SECRET_ENV, **fields,
    )  # fmt: skip


def wait_for(condition, timeout=120, interval=0.2, message="condition"):
    """Poll `condition()` until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def listed_keys(client, bucket, prefix=""):
    keys = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    return keys
