"""`manage.py inventory crawl NAME [--since YYYY-MM-DD] [--json]`: crawl a PACS here and now."""

import argparse
import json
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from inventory import actions
from inventory.management.commands.pacs import _source

SUMMARY_KEYS = ("studies", "series", "instances", "leaf_ranges", "complete")


class Command(BaseCommand):
    help = "Crawl a PACS source (study and series C-FIND) and print the summary."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        crawl = sub.add_parser("crawl", help="crawl a PACS source in this process")
        crawl.add_argument("name")
        crawl.add_argument("--since", type=_date, help="only studies dated from YYYY-MM-DD")
        crawl.add_argument("--no-series", action="store_true", help="study level only")
        crawl.add_argument(
            "--json", dest="as_json", action="store_true", help="print the summary as JSON last"
        )

    def handle(self, *args, action, name, since=None, no_series=False, as_json=False, **options):
        source = _source(name)
        try:
            run = actions.start_crawl(source, since=since, with_series=not no_series, enqueue=False)
        except actions.CrawlError as exc:
            raise CommandError(str(exc)) from None
        result = self._crawl(run)
        if result is None:
            raise CommandError(f"crawl {run.pk} was taken over by another worker")
        self._print(result, as_json)
        if result["status"] == "failed":
            raise CommandError(f"crawl {run.pk} failed: {result['error']}")

    def _crawl(self, run):
        bar = tqdm(desc=f"crawl {run.pk}", unit="range", file=self.stderr._out, dynamic_ncols=True)

        def progress(stats):
            series = stats["phase"] == "series"
            bar.set_description(f"crawl {run.pk} {'series' if series else 'ranges'}", False)
            bar.total = stats["series_todo"] if series else stats["ranges_total"]
            bar.n = stats["series_done"] if series else stats["ranges_done"]
            bar.set_postfix(studies=stats["studies_found"], refresh=False)
            bar.refresh()

        try:
            return actions.execute_crawl(run.pk, progress=progress)
        finally:
            bar.close()

    def _print(self, result, as_json):
        for key in SUMMARY_KEYS:
            self.stdout.write(f"{key}: {str(result[key]).lower()}")
        self.stdout.write(
            f"new: {result['new']}, vanished: {result['vanished']}, "
            f"problems: {result['problems']}, queries: {result['queries']}"
        )
        if as_json:
            self.stdout.write(json.dumps(result, sort_keys=True))


def _date(value):
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None
