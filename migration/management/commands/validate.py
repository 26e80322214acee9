"""`manage.py validate reconcile WAVE [--json]`, `validate spotcheck WAVE [--sample N]
[--seed K] [--json]` and `validate availability [--sample N]`: run a validation here (no
worker needed), record its discrepancies, print a summary; `--json` prints one JSON
object last. Progress goes to stderr."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder
from tqdm import tqdm

from migration import availability, discrepancies
from migration.actions import ActionError
from migration.models import ValidationRun, Wave, WaveState

CONTRACT = ("study", "series", "instance", "kind", "detail")


class Command(BaseCommand):
    help = "Reconcile or spot-check a migrated wave; check the destinations' availability."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        reconcile = sub.add_parser("reconcile", help="every study: PACS vs destination counts")
        reconcile.add_argument("wave")
        reconcile.add_argument("--json", dest="as_json", action="store_true")
        spotcheck = sub.add_parser("spotcheck", help="compare a sample instance by instance")
        spotcheck.add_argument("wave")
        spotcheck.add_argument("--sample", type=int, default=None, help="studies (default: all "
                               "below 500, else 500 stratified by modality and year)")  # fmt: skip
        spotcheck.add_argument("--seed", type=int, default=None, help="for a reproducible sample")
        spotcheck.add_argument("--json", dest="as_json", action="store_true")
        check = sub.add_parser("availability", help="fetch a random sample from destinations")
        check.add_argument("--sample", type=int, default=None)
        check.add_argument("--slow-ms", type=float, default=None)
        check.add_argument("--json", dest="as_json", action="store_true")

    def handle(self, *args, action, as_json=False, **options):
        if action == "availability":
            run = availability.check(sample=options["sample"], slow_ms=options["slow_ms"])
            return self._availability(run, as_json)
        if options.get("sample") is not None and options["sample"] < 1:
            raise CommandError("--sample must be at least 1")
        wave = _wave(options["wave"])
        run = ValidationRun.objects.create(
            wave=wave, kind=action, sample_size=options.get("sample"), seed=options.get("seed")
        )
        result = self._execute(run)
        self._summary(action, result, discrepancies.wave_validation(wave))
        if as_json:
            self.stdout.write(json.dumps(_contract(result), cls=DjangoJSONEncoder, sort_keys=True))

    def _execute(self, run):
        bar = tqdm(desc=f"{run.kind} {run.wave.name}", unit="study", file=self.stderr._out)

        def show(done, total):
            bar.total, bar.n = total, done
            bar.refresh()

        try:
            return discrepancies.execute_run(run, on_progress=show)
        except ActionError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()

    def _summary(self, action, result, state):
        found = len(result["discrepancies"])
        if action == "reconcile":
            self.stdout.write(
                f"wave {result['wave']}: {result['complete']} of {result['studies']} studies "
                f"complete, {result['missing_instances']} instance(s) missing, "
                f"{result['extra_instances']} extra, "
                f"{result['transcoded_instances']} transcoded by the PACS, "
                f"{result['conflicted']} conflicted, "
                f"{result['quarantined']} quarantined; {found} discrepanc(ies)"
            )
        else:
            self.stdout.write(
                f"wave {result['wave']}: {result['instances_compared']} instance(s) of "
                f"{result['studies_sampled']} stud(ies) compared (seed {result['seed']}); "
                f"{found} discrepanc(ies), {len(result['errors'])} retrieval error(s)"
            )
        verdict = "validated" if state["validated"] else "not validated"
        self.stdout.write(f"wave {result['wave']}: {verdict}, {state['open']} open discrepancies")

    def _availability(self, run, as_json):
        totals = run.totals
        self.stdout.write(
            f"availability: {totals['fetched']} fetched, {totals['failed']} failed, "
            f"{totals['slow']} slow (median {totals['median_ms']} ms, max {totals['max_ms']} ms)"
        )
        if as_json:
            self.stdout.write(json.dumps(totals, cls=DjangoJSONEncoder, sort_keys=True))


def _contract(result):
    """The JSON object: the totals, and each discrepancy with the contract's keys."""
    body = {k: v for k, v in result.items() if k not in ("discrepancies", "ledger_ids")}
    body["discrepancies"] = [{k: item[k] for k in CONTRACT} for item in result["discrepancies"]]
    return body


def _wave(name):
    wave = Wave.objects.filter(name=name).first()
    if wave is None:
        raise CommandError(f"no wave named {name!r}")
    if wave.state in (WaveState.DRAFT, WaveState.CANCELLED):
        raise CommandError(f"wave {name} is {wave.state}: nothing was migrated to validate")
    return wave
