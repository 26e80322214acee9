"""`manage.py locate (--accession A | --patient-id P | --study UID) [--live] --json`: where
a study is. `--json` prints a list of objects whose keys `study`, `on_legacy`, `in_cloud`,
`verified`, `wave`, `state`, `discrepancies` are a contract (others follow). No patient
data are printed: the answer names studies by their UID."""

import json

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder

from hybrid import locate
from inventory.models import Study


class Command(BaseCommand):
    help = "Where is this study? On the legacy PACS, in the cloud, in which wave and state."

    def add_arguments(self, parser):
        key = parser.add_mutually_exclusive_group(required=True)
        key.add_argument("--accession", help="accession number")
        key.add_argument("--patient-id", help="patient ID")
        key.add_argument("--study", help="Study Instance UID")
        parser.add_argument("--live", action="store_true", help="also C-FIND the legacy PACS now")
        parser.add_argument("--json", dest="as_json", action="store_true")

    def handle(self, *args, accession=None, patient_id=None, study=None, live=False,
               as_json=False, **options):  # fmt: skip
        key, value = next(
            (k, v) for k, v in (("accession", accession), ("patient_id", patient_id),
                                ("study", study)) if v is not None
        )  # fmt: skip
        try:
            found = locate.contract(locate.locate(key, value))
        except locate.LocateError as exc:
            raise CommandError(str(exc)) from None
        if live:
            for answer in found:
                row = Study.objects.filter(study_uid=answer["study"]).select_related("source")
                if answer["inventory"] and row.exists():
                    answer["live"] = locate.live_find(row.first().source, answer["study"])
        if as_json:
            self.stdout.write(json.dumps(found, cls=DjangoJSONEncoder, indent=2))
            return
        if not found:
            self.stdout.write("no study found")
        for answer in found:
            self.stdout.write(
                f"{answer['study']}: {answer['state_label']} · legacy "
                f"{'yes' if answer['on_legacy'] else 'no'} · cloud "
                f"{'verified' if answer['verified'] else 'yes' if answer['in_cloud'] else 'no'} · "
                f"wave {answer['wave'] or '-'} · {len(answer['discrepancies'])} open discrepancies"
            )
