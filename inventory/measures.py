"""What the inventory measures for other apps (the go/no-go screen, cutover/readiness.py)."""

from inventory.models import CrawlRun, PacsSource


def completeness():
    """{"sources", "complete", "unproven": [(source name, sentence)]}: each source judged by
    its last finished crawl; a source never crawled is not complete."""
    rows = {"sources": 0, "complete": 0, "unproven": []}
    for source in PacsSource.objects.order_by("name"):
        run = source.crawls.filter(status=CrawlRun.Status.DONE).order_by("-pk").first()
        rows["sources"] += 1
        if run is not None and run.complete:
            rows["complete"] += 1
        else:
            why = "never crawled to the end" if run is None else run.unproven or "not complete"
            rows["unproven"].append((source.name, why))
    return rows
