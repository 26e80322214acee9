"""`manage.py inventory crawl|scan|import-listing|compare NAME …`: crawl a PACS here and
now, and check the crawl against a second witness (the PACS's storage or database)."""

import argparse
import json
import os
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from inventory import actions, engine, witness
from inventory.management.commands.pacs import _source

SUMMARY_KEYS = ("studies", "series", "instances", "leaf_ranges", "complete")


class Command(BaseCommand):
    help = "Crawl a PACS source, or compare its crawl with a scan of its storage or a listing."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        crawl = sub.add_parser("crawl", help="crawl a PACS source in this process")
        crawl.add_argument("name")
        crawl.add_argument("--since", type=_date, help="only studies dated from YYYY-MM-DD")
        crawl.add_argument("--no-series", action="store_true", help="study level only")
        scan = sub.add_parser("scan", help="read the PACS's storage folder (headers only)")
        scan.add_argument("name")
        scan.add_argument("path")
        scan.add_argument("--threads", type=int, default=os.cpu_count() or 2)
        listing = sub.add_parser("import-listing", help="a CSV export of the PACS database")
        listing.add_argument("name")
        listing.add_argument("file")
        compare = sub.add_parser("compare", help="the last crawl against the last witness")
        compare.add_argument("name")
        for parser_ in (crawl, scan, listing, compare):
            parser_.add_argument(
                "--json", dest="as_json", action="store_true", help="print the result as JSON last"
            )

    def handle(self, *args, action, name, as_json=False, **options):
        source = _source(name)
        handler = {
            "crawl": self._crawl_command,
            "scan": self._scan,
            "import-listing": self._listing,
            "compare": self._compare,
        }[action]
        handler(source, as_json, **options)

    def _crawl_command(self, source, as_json, since=None, no_series=False, **_options):
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
            return engine.execute_crawl(run.pk, progress=progress)
        finally:
            bar.close()

    def _print(self, result, as_json):
        for key in SUMMARY_KEYS:
            self.stdout.write(f"{key}: {str(result[key]).lower()}")
        if result.get("unproven"):
            self.stdout.write(f"unproven: {result['unproven']}")
        self.stdout.write(
            f"new: {result['new']}, vanished: {result['vanished']}, "
            f"problems: {result['problems']}, queries: {result['queries']}"
        )
        if as_json:
            self.stdout.write(json.dumps(result, sort_keys=True))

    def _scan(self, source, as_json, path, threads, **_options):
        bar = tqdm(desc="scan", unit="file", file=self.stderr._out, dynamic_ncols=True)

        def progress(done, total):
            bar.total, bar.n = total, done
            if done % 50 == 0 or done == total:
                bar.refresh()

        try:
            seen = witness.scan(path, workers=threads, progress=progress)
        except witness.ListingError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        actions.record_witness(source, "scan", os.path.abspath(path), seen)
        self._witnessed(seen.summary(), as_json)

    def _listing(self, source, as_json, file, **_options):
        try:
            with open(file, newline="", encoding="utf-8-sig") as lines:
                seen = witness.read_listing(lines)
        except (OSError, UnicodeDecodeError, witness.ListingError) as exc:
            raise CommandError(f"{file}: {exc}") from None
        actions.record_witness(source, "listing", os.path.abspath(file), seen)
        self._witnessed(seen.summary(), as_json)

    def _witnessed(self, summary, as_json):
        self.stdout.write(
            f"files: {summary['files']}, studies: {summary['studies']}, "
            f"instances: {summary['instances']}, unreadable: {len(summary['unreadable'])}"
        )
        for item in summary["unreadable"][:20]:
            self.stdout.write(f"  unreadable: {item['path']}: {item['reason']}")
        if as_json:
            self.stdout.write(json.dumps(summary, sort_keys=True))

    def _compare(self, source, as_json, **_options):
        try:
            result = actions.compare_witness(source)
        except actions.CrawlError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"crawled: {result['crawled_studies']}, witness: {result['witness_studies']}, "
            f"only in witness: {len(result['only_in_witness'])}, "
            f"only in crawl: {len(result['only_in_crawl'])}, agree: {str(result['agree']).lower()}"
        )
        if as_json:
            self.stdout.write(json.dumps(result, sort_keys=True))


def _date(value):
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None
