"""Helpers of the validation tests: a small migrated wave (run by the engine in this
process, or by a real worker), shared by a test module when its tests only read it, and
ways to damage the cloud copy the way real incidents do."""

import io
import os
from contextlib import contextmanager

from django.utils import timezone
from pydicom import dcmread, dcmwrite

from inventory.models import PacsSource, Study
from migration import actions, engine, ledger
from migration.models import Destination, MappingProfile, StoredInstance, Wave, WaveState
from tests.migration import support

# one study of each: explicit, implicit (2 instances), JPEG baseline, RLE, JPEG 2000
KINDS = ("CT", "MR", "CR", "US", "MG")
COMPRESSED = ("CR", "US", "MG")  # JPEG baseline, RLE, JPEG 2000


def one_of_each(studies, modalities=KINDS):
    """The first study of each modality, from support.mixed_studies()."""
    chosen = {}
    for uid, datasets in studies.items():
        modality = str(datasets[0].Modality)
        if modality in modalities and modality not in {str(d[0].Modality) for d in chosen.values()}:
            chosen[uid] = datasets
    return chosen


def migrate_in_process(wave):
    """Run every study of a wave here (no worker); the wave ends done."""
    Wave.objects.filter(pk=wave.pk).update(state=WaveState.RUNNING, started_at=timezone.now())
    while (row := ledger.claim_next([wave.pk], "validation-test")) is not None:
        engine.migrate_study(row, "validation-test")
    Wave.objects.filter(pk=wave.pk).update(state=WaveState.DONE, finished_at=timezone.now())
    wave.refresh_from_db()
    return wave


def new_wave(name, orthanc, studies, migration_s3, bucket, profile_rules=None):
    """A source, inventory, S3 destination and wave of these studies, not yet run."""
    source = support.make_source(orthanc, name=f"{name}-pacs", max_associations=2)
    support.make_inventory(source, studies)
    destination = support.s3_destination(migration_s3, bucket, name=f"{name}-s3", prefix=name)
    profile = None
    if profile_rules:
        profile = MappingProfile.objects.create(name=f"{name}-profile", rules=profile_rules)
    wave, _info = actions.create_wave(
        name=name, source=source, destination=destination, profile=profile
    )
    return wave


def migrated_wave(name, orthanc, studies, migration_s3, profile_rules=None):
    bucket = f"val-{name}-{os.urandom(3).hex()}"
    migration_s3.create_bucket(bucket)
    wave = new_wave(name, orthanc, studies, migration_s3, bucket, profile_rules)
    return migrate_in_process(wave)


def delete_wave(wave):
    """Remove a module's wave and everything it made (module fixtures commit their rows);
    a transactional test of the module may have flushed them already."""
    wave = Wave.objects.filter(pk=wave.pk).first()
    if wave is None:
        return
    source, destination, profile = wave.source, wave.destination, wave.profile
    Wave.objects.filter(pk=wave.pk).delete()
    Study.objects.filter(source=source).delete()
    PacsSource.objects.filter(pk=source.pk).delete()
    Destination.objects.filter(pk=destination.pk).delete()
    if profile is not None:
        MappingProfile.objects.filter(pk=profile.pk).delete()


@contextmanager
def shared_wave(django_db_blocker, name, orthanc, studies, migration_s3, profile_rules=None):
    with django_db_blocker.unblock():
        wave = migrated_wave(name, orthanc, studies, migration_s3, profile_rules)
    try:
        yield wave
    finally:
        with django_db_blocker.unblock():
            delete_wave(wave)


# --- damage -------------------------------------------------------------------------------


def stored(wave, modality, index=0):
    """The manifest row of the `index`-th instance of the wave's study of `modality`."""
    rows = StoredInstance.objects.filter(
        ledger__wave=wave, ledger__study__modalities=modality, role="stored"
    ).order_by("sop_uid")
    return rows[index]


def s3_object(migration_s3, wave, key):
    client = migration_s3.client()
    return client.get_object(Bucket=wave.destination.bucket, Key=key)["Body"].read()


def put_object(migration_s3, wave, key, data):
    migration_s3.client().put_object(Bucket=wave.destination.bucket, Key=key, Body=data)


def delete_object(migration_s3, wave, key):
    migration_s3.client().delete_object(Bucket=wave.destination.bucket, Key=key)


def with_tag(data, keyword, value):
    """The instance's bytes with one tag changed (re-encoded as stored)."""
    ds = dcmread(io.BytesIO(data))
    setattr(ds, keyword, value)
    out = io.BytesIO()
    dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue()


def with_pixel_flipped(data, offset=7):
    """The instance's bytes with one byte of its (uncompressed) pixel data inverted."""
    ds = dcmread(io.BytesIO(data))
    pixels = bytearray(ds.PixelData)
    pixels[offset] ^= 0xFF
    ds.PixelData = bytes(pixels)
    out = io.BytesIO()
    dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue()
