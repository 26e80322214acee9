"""`manage.py wave create|start|pause|resume|cancel|retry|status|list`: plan and run
migration waves from the shell. `wave status NAME --json` prints one JSON object last."""

import argparse
import json
import time
from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder
from tqdm import tqdm

from inventory.models import PacsSource
from migration import actions, dispatch, measures, throttle
from migration.models import Destination, MappingProfile, Wave, WaveState

FINAL = (WaveState.DONE, WaveState.CANCELLED)


def _date(value):
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _lines(path):
    """Values of an uploaded list: one per line (or the first CSV column), blanks skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {path}: {exc.strerror}") from None
    return [line.split(",")[0].strip() for line in text.splitlines() if line.strip()]


class Command(BaseCommand):
    help = "Create, run and watch migration waves."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="a new wave (draft) from the inventory")
        create.add_argument("name")
        create.add_argument("--pacs", required=True, help="PACS source name")
        create.add_argument("--destination", required=True)
        create.add_argument("--profile", help="mapping profile name")
        create.add_argument("--from", dest="date_from", type=_date, help="YYYY-MM-DD")
        create.add_argument("--to", dest="date_to", type=_date, help="YYYY-MM-DD")
        create.add_argument("--modality", action="append", default=[], type=str.upper)
        create.add_argument("--accessions", type=_lines, metavar="FILE", default=[],
                            help="file of accession numbers, one per line")  # fmt: skip
        create.add_argument("--patient-ids", type=_lines, metavar="FILE", default=[],
                            help="file of patient IDs, one per line")  # fmt: skip
        create.add_argument("--priority", type=int, default=0)
        create.add_argument("--schedule", default="", help="e.g. 'mon-fri 7-19=1; sat,sun *=4'")
        start = sub.add_parser("start", help="start a wave")
        start.add_argument("name")
        start.add_argument("--wait", action="store_true", help="show progress until it ends")
        start.add_argument("--timeout", type=float, default=None, help="seconds to wait at most")
        for verb in ("pause", "resume", "cancel", "retry"):
            sub.add_parser(verb, help=f"{verb} a wave").add_argument("name")
        status = sub.add_parser("status", help="counts per state, instances, bytes, rate, ETA")
        status.add_argument("name")
        status.add_argument("--json", dest="as_json", action="store_true")
        sub.add_parser("list", help="list waves")

    def handle(self, *args, action, **options):
        getattr(self, f"do_{action}")(**options)

    def do_create(self, name, pacs, destination, profile=None, schedule="", **options):
        fields = {key: options[key] for key in ("date_from", "date_to", "priority")}
        fields.update(
            modalities=options["modality"],
            accession_numbers=options["accessions"],
            patient_ids=options["patient_ids"],
        )
        try:
            fields["schedule"] = throttle.parse_schedule(schedule) if schedule else []
            fields["profile"] = _get(MappingProfile, profile) if profile else None
            wave, info = actions.create_wave(
                name=name,
                source=_get(PacsSource, pacs),
                destination=_get(Destination, destination),
                **fields,
            )
        except (actions.ActionError, throttle.ScheduleError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"created wave {wave.name}: {info['studies']} studies")
        if info["unmatched"]:
            self.stdout.write(
                f"{info['unmatched']} listed value(s) match no study in the inventory"
            )

    def do_start(self, name, wait=False, timeout=None, **options):
        wave = self._change(name, "start")
        if wait:
            self._wait(wave, timeout)

    def do_pause(self, name, **options):
        self._change(name, "pause")

    def do_resume(self, name, **options):
        self._change(name, "resume")

    def do_cancel(self, name, **options):
        self._change(name, "cancel")

    def do_retry(self, name, **options):
        count = actions.retry_quarantined(_get(Wave, name))
        self.stdout.write(f"wave {name}: {count} quarantined stud(ies) queued again")

    def _change(self, name, verb):
        try:
            wave = actions.change_wave(_get(Wave, name), verb)
        except actions.ActionError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"wave {wave.name}: {wave.get_state_display().lower()}")
        return wave

    def _wait(self, wave, timeout):
        """Follow the wave with a progress bar, ticking the engine now and then (so no
        beat is needed) until it is done, cancelled, or `timeout` passes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = tqdm(total=wave.ledger.count(), desc=wave.name, unit="study", file=self.stderr._out)
        last_tick = 0.0
        try:
            while True:
                wave.refresh_from_db()
                progress = measures.wave_progress([wave.pk])
                bar.n = progress["done"] + progress["quarantined"]
                bar.set_postfix(
                    failed=progress["failed"], active=progress["in_progress"], refresh=False
                )
                bar.refresh()
                if wave.state in FINAL:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    raise CommandError(f"wave {wave.name} still {wave.state} after {timeout:.0f}s")
                if time.monotonic() - last_tick > 5:
                    dispatch.tick()
                    last_tick = time.monotonic()
                time.sleep(0.5)
        finally:
            bar.close()
        self._summary(measures.wave_status(wave))

    def do_status(self, name, as_json=False, **options):
        status = measures.wave_status(_get(Wave, name))
        self._summary(status)
        if as_json:
            status.pop("per_minute")
            self.stdout.write(json.dumps(status, cls=DjangoJSONEncoder, sort_keys=True))

    def _summary(self, status):
        counts = ", ".join(f"{state} {n}" for state, n in status["counts"].items() if n)
        eta = "—" if status["eta_seconds"] is None else f"{status['eta_seconds']} s"
        self.stdout.write(
            f"wave {status['wave']} ({status['state']}): {status['percent']} % of "
            f"{status['total']} studies finished ({counts or 'empty'})"
        )
        self.stdout.write(
            f"instances stored {status['instances_stored']} of {status['instances_reported']} "
            f"reported, {status['bytes_stored']} bytes; now {status['rate_now']['instances_s']} "
            f"instances/s, {status['rate_now']['mb_s']} MB/s; ETA {eta}"
        )

    def do_list(self, **options):
        for wave in Wave.objects.select_related("source", "destination"):
            progress = measures.wave_progress([wave.pk])
            self.stdout.write(
                f"{wave.name:24} {wave.state:10} {wave.source.name} → {wave.destination.name} "
                f"{progress['done']}/{progress['total']} done"
            )


def _get(model, name):
    try:
        return model.objects.get(name=name)
    except model.DoesNotExist:
        raise CommandError(f"no {model._meta.verbose_name} named {name!r}") from None
