"""A ledger with a measured history, for the forecast's page and browser tests."""

from datetime import timedelta

from django.utils import timezone

from inventory.models import PacsSource, Study
from migration.models import Destination, StudyState, Wave, WaveStudy


def wave_with_history(studies=12, done=6, instances=6, size=6_000_000):
    """A wave of `studies` CT studies of `size` bytes, `done` of them finished one after
    another at 1 MB/s (6 s each for 6 MB) on host h1; the last finished a minute ago."""
    source = PacsSource.objects.create(name="legacy", ae_title="LEGACY", host="127.0.0.1", port=104)
    folder = Destination.objects.create(name="folder", kind="filesystem", path="/tmp/cc-none")
    wave = Wave.objects.create(name="ct", source=source, destination=folder)
    seconds = size / 1_000_000
    start = timezone.now() - timedelta(seconds=60 + seconds * done)
    for n in range(studies):
        study = Study.objects.create(
            source=source, study_uid=f"1.2.3.{n}", modalities="CT", num_instances=instances
        )
        fields = {}
        if n < done:
            fields = {
                "state": StudyState.DONE,
                "started_at": start + timedelta(seconds=seconds * n),
                "finished_at": start + timedelta(seconds=seconds * (n + 1)),
                "host": "h1",
                "bytes_stored": size,
                "instances_stored": instances,
            }
        WaveStudy.objects.create(wave=wave, study=study, **fields)
    return wave
