"""Go/no-go readiness from live evidence: criteria as data, each with a threshold.

Each criterion reads one measure (this app's own, or another app's through
`cutover.measures.read`, imported lazily). A measure whose app is missing is shown as
"not available" and counts as not met; a measure with nothing to count yet (no studies,
no test cases) is "no evidence yet" and not met either. GO needs every criterion met.
Project managers may change thresholds (`ReadinessSetting`).
"""

from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from cutover.measures import MeasureUnavailableError, read


def _share(part, whole):
    return None if not whole else 100.0 * part / whole


def _migration():
    progress = read("migration.measures.wave_progress", None)
    note = f"{progress['done']} of {progress['total']} studies done"
    if progress.get("failed") or progress.get("quarantined"):
        note += (
            f", {progress.get('failed', 0)} failed, {progress.get('quarantined', 0)} quarantined"
        )
    return _share(progress["done"], progress["total"]), note


def _inventory():
    found = read("inventory.measures.completeness")
    if not found["sources"]:
        return None, "no legacy PACS registered and crawled yet"
    note = f"{found['complete']} of {found['sources']} PACS sources proven complete"
    for name, why in found["unproven"][:3]:
        note += f"; {name}: {why}"
    return _share(found["complete"], found["sources"]), note


def _validated_waves():
    summary = read("migration.measures.validation_summary")
    note = f"{summary['validated_waves']} of {summary['waves']} waves validated"
    return _share(summary["validated_waves"], summary["waves"]), note


def _discrepancies():
    summary = read("migration.measures.validation_summary")
    return summary["open_discrepancies"], f"{summary['open_discrepancies']} open"


def _conformance():
    summary = read("migration.measures.conformance_summary")
    failing = summary["failing"]
    note = f"{summary['conforming']} of {summary['destinations']} cloud destinations conform"
    if failing:
        note += "; not proven: " + ", ".join(failing[:5])
    return len(failing), note


def _viewer_pass_rate():
    from cutover.models import ViewerTestCase

    cases = ViewerTestCase.objects.all()
    passed = cases.filter(result=ViewerTestCase.Result.PASS).count()
    return _share(passed, cases.count()), f"{passed} of {cases.count()} test cases passed"


def _viewer_gaps():
    from cutover.models import ViewerTestCase

    gaps = ViewerTestCase.objects.filter(result__in=["fail", "gap"], gap_resolved=False).count()
    return gaps, f"{gaps} open"


def _stages_signed():
    progress = read("cutover.measures.cutover_progress")
    note = f"{progress['signed_stages']} of {progress['stages']} stages signed and opened"
    return _share(progress["signed_stages"], progress["stages"]), note


def _probes():
    from cutover.models import Probe

    probes = Probe.objects.all()
    passing = probes.filter(last_ok=True).count()
    failing = probes.filter(last_ok=False).values_list("name", flat=True)
    note = f"{passing} of {probes.count()} probes passed last time"
    if failing:
        note += "; failing: " + ", ".join(failing[:5])
    return _share(passing, probes.count()), note


def _training():
    rows = read("training.readiness.readiness_by_department")
    rows = [r for r in rows if r["clinicians"]]
    if not rows:
        return None, "no clinicians registered"
    shares = [
        (100.0 * r["trained"] / r["clinicians"], r["department"] or "Unassigned") for r in rows
    ]
    low, where = min(shares)
    detail = ", ".join(f"{name} {share:.0f}%" for share, name in sorted(shares, key=lambda s: s[1]))
    return low, f"lowest: {where} ({detail})"


def _tickets(priority):
    def measure():
        counts = read("desk.measures.open_ticket_counts")
        return counts.get(priority, 0), f"{counts.get(priority, 0)} open"

    return measure


CRITERIA = [
    {
        "key": "inventory_complete",
        "group": "Migration",
        "label": "Legacy inventory proven complete",
        "op": ">=",
        "threshold": 100.0,
        "unit": "%",
        "measure": _inventory,
        "evidence": "inventory:sources",
    },
    {
        "key": "studies_migrated",
        "group": "Migration",
        "label": "Studies migrated and verified",
        "op": ">=",
        "threshold": 100.0,
        "unit": "%",
        "measure": _migration,
        "evidence": "migration:index",
    },
    {
        "key": "waves_validated",
        "group": "Migration",
        "label": "Waves validated",
        "op": ">=",
        "threshold": 100.0,
        "unit": "%",
        "measure": _validated_waves,
        "evidence": "migration:index",
    },
    {
        "key": "open_discrepancies",
        "group": "Migration",
        "label": "Open validation discrepancies",
        "op": "<=",
        "threshold": 0,
        "unit": "",
        "measure": _discrepancies,
        "evidence": "migration:index",
    },
    {
        "key": "destinations_conform",
        "group": "Migration",
        "label": "Cloud destinations not proven to conform to their design",
        "op": "<=",
        "threshold": 0,
        "unit": "",
        "measure": _conformance,
        "evidence": "migration:destinations",
    },
    {
        "key": "viewer_pass_rate",
        "group": "Viewers",
        "label": "Viewer test cases passed",
        "op": ">=",
        "threshold": 95.0,
        "unit": "%",
        "measure": _viewer_pass_rate,
        "evidence": "cutover:viewers",
    },
    {
        "key": "viewer_open_gaps",
        "group": "Viewers",
        "label": "Open viewer gaps and failures",
        "op": "<=",
        "threshold": 0,
        "unit": "",
        "measure": _viewer_gaps,
        "evidence": "cutover:viewers",
    },
    {
        "key": "stages_signed",
        "group": "Integrations",
        "label": "Integration cutover stages signed",
        "op": ">=",
        "threshold": 100.0,
        "unit": "%",
        "measure": _stages_signed,
        "evidence": "cutover:plans",
    },
    {
        "key": "probes_passing",
        "group": "Integrations",
        "label": "Connectivity probes passing",
        "op": ">=",
        "threshold": 100.0,
        "unit": "%",
        "measure": _probes,
        "evidence": "cutover:plans",
    },
    {
        "key": "clinicians_trained",
        "group": "Training",
        "label": "Clinicians trained (lowest department)",
        "op": ">=",
        "threshold": 90.0,
        "unit": "%",
        "measure": _training,
        "evidence": "training:index",
    },
    {
        "key": "open_p1",
        "group": "Support",
        "label": "Open P1 tickets",
        "op": "<=",
        "threshold": 0,
        "unit": "",
        "measure": _tickets("P1"),
        "evidence": "board",
    },
    {
        "key": "open_p2",
        "group": "Support",
        "label": "Open P2 tickets",
        "op": "<=",
        "threshold": 0,
        "unit": "",
        "measure": _tickets("P2"),
        "evidence": "board",
    },
]
BY_KEY = {c["key"]: c for c in CRITERIA}


def settings():
    """{key: (threshold, waiver reason or None)}: the defaults above, overridden by project
    managers' settings."""
    from cutover.models import ReadinessSetting

    values = {c["key"]: (c["threshold"], None) for c in CRITERIA}
    for row in ReadinessSetting.objects.filter(key__in=BY_KEY):
        threshold = BY_KEY[row.key]["threshold"] if row.threshold is None else row.threshold
        values[row.key] = (threshold, (row.waiver_reason or "waived") if row.waived else None)
    return values


def _met(value, op, threshold):
    return value >= threshold if op == ">=" else value <= threshold


def _evidence_url(name):
    try:
        return reverse(name)
    except NoReverseMatch:
        return ""


def _display(value, unit):
    if value is None:
        return ""
    return f"{value:.1f}%" if unit == "%" else f"{value:g}"


def evaluate_one(criterion, threshold, waiver=None):
    row = {k: criterion[k] for k in ("key", "group", "label", "op", "unit")}
    row.update(threshold=threshold, evidence_url=_evidence_url(criterion["evidence"]))
    row.update(waived=waiver is not None, waiver=waiver or "")
    try:
        value, note = criterion["measure"]()
    except MeasureUnavailableError as exc:
        value, note, available = None, str(exc), False
    else:
        available = True
    met = value is not None and _met(value, criterion["op"], threshold)
    if met:
        state = "met"
    elif waiver is not None:
        state = "waived"
    else:
        state = (
            "not available" if not available else "no evidence yet" if value is None else "not met"
        )
    row.update(value=value, available=available, met=met, note=note, state=state)
    row["ok"] = met or waiver is not None
    return row


def evaluate():
    """{"go", "criteria": [...], "reasons": [...], "checked_at"}."""
    limits = settings()
    rows = [evaluate_one(c, *limits[c["key"]]) for c in CRITERIA]
    for row in rows:
        row["display"] = _display(row["value"], row["unit"])
        row["threshold_display"] = f"{row['op']} {_display(row['threshold'], row['unit'])}"
    reasons = [
        f"{r['label']}: {r['state']}"
        + (f" ({r['display']}, needs {r['threshold_display']})" if r["value"] is not None else "")
        for r in rows
        if not r["ok"]
    ]
    waivers = [f"{r['label']}: {r['waiver']}" for r in rows if r["state"] == "waived"]
    return {
        "go": not reasons,
        "verdict": "GO" if not reasons else "NO-GO",
        "criteria": rows,
        "reasons": reasons,
        "waivers": waivers,
        "checked_at": timezone.now(),
    }
