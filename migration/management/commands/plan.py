"""`manage.py plan [--json]`: the migration forecast (finish dates with their band, the
link and hosts a target date needs, cost per month) for scripts and tests."""

import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from migration import planning


def _date(value):
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--target-date: {value!r} is not a date like 2027-06-30") from None


class Command(BaseCommand):
    help = "Forecast the migration: finish, link and hosts needed, monthly cost."

    def add_arguments(self, parser):
        parser.add_argument("--json", dest="as_json", action="store_true")
        parser.add_argument("--hosts", type=int, help="what if this many worker hosts")
        parser.add_argument("--link-mbps", type=float, help="what if this link")
        parser.add_argument("--hours-per-day", type=float, help="what if this daily window")
        parser.add_argument("--target-date", type=_date, help="finish by this day")

    def handle(self, *args, as_json=False, **options):
        overrides = {
            k: options[k]
            for k in ("hosts", "link_mbps", "hours_per_day", "target_date")
            if options.get(k) is not None
        }
        result = planning.plan(**overrides)
        if as_json:
            self.stdout.write(json.dumps(result, default=str))
            return
        self.stdout.write(
            f"finish {result['finish_date'] or 'unknown (no measured throughput yet)'}"
            f" (p10 {result['finish_p10']}, p90 {result['finish_p90']});"
            f" {result['remaining_bytes'] / 1e12:.3f} TB to move"
        )
        for wave in result["waves"]:
            self.stdout.write(f"  wave {wave['name']}: {wave['finish_date']}")
        if result["target_date"]:
            self.stdout.write(
                f"by {result['target_date']}: {result['required_mbps']} Mbps, "
                f"{result['hosts_needed']} host(s), {result['slots_needed']} association(s)"
            )
        for row in result["monthly_cost"]:
            self.stdout.write(
                f"  {row['month']}: {row['total']:.2f} {result['prices']['currency']}"
            )
