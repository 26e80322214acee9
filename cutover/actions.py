"""State changes of the roadmap and cutover, each followed by its live event.

Topics: `roadmap` (activity feed of every roadmap), `roadmap.<id>` (one roadmap's summary:
go-live date, critical tasks), `cutover.plan.<id>` (a cutover plan), `cutover.readiness`
(the go/no-go screen). Events are published after commit by `core.events`.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from core import egress
from core.alerts import raise_alert
from core.events import publish
from cutover import binding, csvio, planning, probes, readiness, schedule, stages, template
from cutover.models import (
    Baseline,
    BaselineTask,
    ChecklistItem,
    CloudViewer,
    CutoverPlan,
    Dependency,
    Probe,
    ProbeResult,
    ReadinessSetting,
    Roadmap,
    Stage,
    Task,
    ViewerTestCase,
    Workstream,
)

SCHEDULED = [
    "early_start",
    "early_finish",
    "late_start",
    "late_finish",
    "total_slack",
    "free_slack",
    "critical",
]
EDITABLE = [
    "name",
    "workstream",
    "kind",
    "owner",
    "duration",
    "start_no_earlier",
    "deadline",
    "percent_complete",
    "status",
    "notes",
    "measure",
    "measure_params",
]


def announce(roadmap, text, user=None):
    """One line in the roadmap activity feed, and the roadmap's summary for its page."""
    who = user.get_username() if user is not None else "system"
    line = {"roadmap": roadmap.pk, "text": text, "by": who, "at": timezone.now()}
    html = render_to_string("cutover/_activity.html", {"line": line, "roadmap": roadmap})
    publish("roadmap", line, html=html)
    summary = roadmap_summary(roadmap)
    publish(f"roadmap.{roadmap.pk}", {**summary, "text": text}, html=_summary_html(summary))


def roadmap_summary(roadmap):
    go_live = Task.objects.filter(pk=roadmap.go_live_id).first()
    tasks = roadmap.tasks.all()
    return {
        "roadmap": roadmap.pk,
        "go_live": go_live.early_start if go_live else None,
        "go_live_deadline": go_live.deadline if go_live else None,
        "go_live_slack": go_live.total_slack if go_live else None,
        "critical": tasks.filter(critical=True).count(),
        "late": tasks.filter(total_slack__lt=0).count(),
        "tasks": tasks.count(),
    }


def _summary_html(summary):
    return render_to_string("cutover/_summary.html", {"summary": summary})


def reschedule(roadmap):
    """Compute every task's dates and slack and store them (no audit row per computed date)."""
    plan = planning.load(roadmap)
    result = planning.timings(plan)
    tasks = list(plan.tasks.values())
    for task in tasks:
        for field, value in planning.dated(plan.calendar, result[task.pk]).items():
            setattr(task, field, value)
    Task.objects.bulk_update(tasks, SCHEDULED, batch_size=500)
    return result


def _next_code(roadmap, prefix="T"):
    used = set(roadmap.tasks.values_list("code", flat=True))
    n = len(used) + 1
    while f"{prefix}{n}" in used:
        n += 1
    return f"{prefix}{n}"


@transaction.atomic
def create_roadmap(name, start_date, user=None, description=""):
    roadmap = Roadmap.objects.create(
        name=name, start_date=start_date, description=description, created_by=user
    )
    announce(roadmap, f"created roadmap {name}", user)
    return roadmap


@transaction.atomic
def create_from_template(name, start_date, user=None):
    """The standard PACS-to-cloud roadmap (cutover.template), scheduled from `start_date`."""
    roadmap = Roadmap.objects.create(
        name=name, start_date=start_date, created_by=user, description=template.NAME
    )
    calendar = planning.calendar_for(roadmap)
    by_code, pending = {}, []
    for ws_order, (ws_name, tasks) in enumerate(template.WORKSTREAMS):
        stream = Workstream.objects.create(roadmap=roadmap, name=ws_name, order=ws_order)
        for order, spec in enumerate(tasks):
            deadline = spec.get("deadline_days")
            by_code[spec["code"]] = Task.objects.create(
                roadmap=roadmap,
                workstream=stream,
                order=order,
                code=spec["code"],
                name=spec["name"],
                kind=spec["kind"],
                owner=spec["owner"],
                duration=spec["duration"],
                measure=spec.get("measure", ""),
                deadline=None if deadline is None else calendar.day(deadline),
            )
            pending += [(spec["code"], text) for text in spec["after"]]
    _create_links(by_code, [(succ, *csvio.parse_dependency(t)) for succ, t in pending])
    roadmap.go_live = by_code[template.GO_LIVE]
    roadmap.save(update_fields=["go_live"])
    reschedule(roadmap)
    announce(roadmap, f"created roadmap {name} from the standard template", user)
    return Roadmap.objects.select_related("go_live").get(pk=roadmap.pk)


def _create_links(by_code, specs):
    Dependency.objects.bulk_create(
        Dependency(predecessor=by_code[pred], successor=by_code[succ], kind=kind, lag=lag)
        for succ, pred, kind, lag in specs
    )


def _clean_task(task):
    if task.kind == Task.Kind.MILESTONE:
        task.duration = 0
    task.full_clean(exclude=["roadmap", "workstream"])
    if task.measure and task.measure not in binding.MEASURES:
        raise ValidationError({"measure": f"unknown measure {task.measure!r}"})
    if task.workstream.roadmap_id != task.roadmap_id:
        raise ValidationError({"workstream": "belongs to another roadmap"})


def _shift(plan, changed):
    """Go-live shift of a change, or ValidationError naming the cycle it would create."""
    try:
        return planning.go_live_shift(plan, changed)
    except schedule.ScheduleError as exc:
        raise ValidationError(f"refused: {exc}") from exc


def preview_task_change(task, changes):
    """What saving `changes` ({field: value}) would do to go-live, without saving."""
    relevant = {k: v for k, v in changes.items() if k in planning.SCHEDULING_FIELDS}
    plan = planning.load(task.roadmap)
    if task.pk is None:
        return _shift(plan, plan)
    return _shift(plan, planning.with_changes(plan, {task.pk: relevant}))


@transaction.atomic
def save_task(task, changes, user=None):
    """Create or update a task from {field: value}; reschedules and reports the go-live
    shift as {"task", "shift", "message", ...}."""
    roadmap = task.roadmap
    plan = planning.load(roadmap)
    for field, value in changes.items():
        if field not in EDITABLE:
            raise ValidationError({field: "cannot be changed here"})
        setattr(task, field, value)
    if not task.code:
        task.code = _next_code(roadmap)
    _clean_task(task)
    creating = task.pk is None
    task.save()
    roadmap = Roadmap.objects.get(pk=roadmap.pk)
    reschedule(roadmap)
    shift = planning.go_live_shift(plan, planning.load(roadmap))
    verb = "added" if creating else "changed"
    text = f"{verb} {task.code} {task.name}"
    announce(roadmap, f"{text}: {shift['message']}" if shift["message"] else text, user)
    return shift


@transaction.atomic
def delete_task(task, user=None):
    roadmap = task.roadmap
    plan = planning.load(roadmap)
    label = str(task)
    if roadmap.go_live_id == task.pk:
        raise ValidationError("this is the go-live milestone; choose another one first")
    task.delete()
    reschedule(roadmap)
    shift = planning.go_live_shift(plan, planning.load(roadmap))
    announce(roadmap, f"removed {label}: {shift['message']}", user)


@transaction.atomic
def add_dependency(predecessor, successor, kind="FS", lag=0, user=None):
    """Link two tasks of one roadmap; a cycle is refused with a message naming it."""
    if predecessor.roadmap_id != successor.roadmap_id:
        raise ValidationError("both tasks must belong to the same roadmap")
    if predecessor.pk == successor.pk:
        raise ValidationError(f"{predecessor} cannot depend on itself")
    if kind not in Dependency.Kind.values:
        raise ValidationError(f"kind must be FS or SS, not {kind!r}")
    roadmap = predecessor.roadmap
    new = schedule.Link(predecessor.pk, successor.pk, kind, int(lag))
    plan = planning.load(roadmap)
    shift = _shift(plan, planning.with_changes(plan, add_links=[new]))
    dep, _ = Dependency.objects.update_or_create(
        predecessor=predecessor, successor=successor, defaults={"kind": kind, "lag": int(lag)}
    )
    reschedule(roadmap)
    announce(roadmap, f"linked {dep}: {shift['message']}", user)
    return dep, shift


@transaction.atomic
def remove_dependency(dep, user=None):
    roadmap = dep.successor.roadmap
    label = str(dep)
    dep.delete()
    reschedule(roadmap)
    announce(roadmap, f"unlinked {label}", user)


@transaction.atomic
def save_baseline(roadmap, name, user=None):
    """Freeze today's schedule under `name` for later comparison."""
    reschedule(roadmap)
    baseline = Baseline.objects.create(roadmap=roadmap, name=name, created_by=user)
    BaselineTask.objects.bulk_create(
        BaselineTask(
            baseline=baseline,
            task=task,
            start=task.early_start,
            finish=task.early_finish,
            duration=task.duration,
        )
        for task in roadmap.tasks.all()
    )
    announce(roadmap, f"saved baseline {name}", user)
    return baseline


@transaction.atomic
def set_holidays(roadmap, days, user=None):
    """Replace the roadmap's holidays with {date: name}; reschedules."""
    roadmap.holidays.all().delete()
    roadmap.holidays.bulk_create(
        roadmap.holidays.model(roadmap=roadmap, day=d, name=n) for d, n in sorted(days.items())
    )
    reschedule(roadmap)
    announce(roadmap, f"set {len(days)} holidays", user)


@transaction.atomic
def import_tasks(roadmap, text, user=None):
    """Add or update tasks (matched by code) from CSV text. All or nothing: a bad line, an
    unknown dependency or a cycle rejects the whole file with the reasons."""
    existing = {t.code: t for t in roadmap.tasks.all()}
    rows = csvio.parse_rows(text, known_codes=existing, measures=binding.MEASURES)
    streams = {w.name: w for w in roadmap.workstreams.all()}
    by_code = dict(existing)
    for order, row in enumerate(rows):
        name = row["workstream"]
        if name not in streams:
            streams[name] = Workstream.objects.create(
                roadmap=roadmap, name=name, order=len(streams)
            )
        fields = {k: v for k, v in row.items() if k not in ("code", "depends_on")}
        fields.update(workstream=streams[name], roadmap=roadmap)
        task = by_code.get(row["code"]) or Task(code=row["code"], order=order)
        for key, value in fields.items():
            setattr(task, key, value)
        task.save()
        by_code[row["code"]] = task
    imported = {by_code[row["code"]].pk for row in rows}
    Dependency.objects.filter(successor_id__in=imported).delete()
    _create_links(by_code, [(row["code"], *dep) for row in rows for dep in row["depends_on"]])
    try:
        reschedule(roadmap)
    except schedule.CycleError as exc:
        raise csvio.CsvImportError([(0, f"refused: {exc}")]) from exc
    announce(roadmap, f"imported {len(rows)} tasks from CSV", user)
    return len(rows)


def refresh_live_tasks(roadmap=None):
    """Set % complete (and status) of every live-bound task from its measure; returns the
    number of tasks that changed."""
    tasks = Task.objects.exclude(measure="").select_related("roadmap")
    if roadmap is not None:
        tasks = tasks.filter(roadmap=roadmap)
    changed = {}
    for task in tasks:
        value = binding.percent(task.measure, task.measure_params)
        if value is None or value == task.percent_complete:
            continue
        _set_progress(task, value)
        changed.setdefault(task.roadmap, []).append(task)
    for rm, moved in changed.items():
        names = ", ".join(f"{t.code} {t.percent_complete}%" for t in moved)
        announce(rm, f"live progress: {names}")
    return sum(len(v) for v in changed.values())


def _set_progress(task, value):
    task.percent_complete = value
    if value >= 100:
        task.status = Task.Status.DONE
    elif value > 0 and task.status == Task.Status.NOT_STARTED:
        task.status = Task.Status.IN_PROGRESS
    task.save(update_fields=["percent_complete", "status"])


# -- integration cutover plans ----------------------------------------------------------------


class GateClosedError(ValidationError):
    """A go/no-go gate cannot open yet; the message says why."""


def _plan_event(plan, text, user=None):
    who = user.get_username() if user is not None else "system"
    publish(f"cutover.plan.{plan.pk}", {"plan": plan.pk, "text": text, "by": who})
    publish_readiness()


def probe_defaults(integration):
    """A first probe for an integration, from its protocol and endpoint ("AE@host:port",
    "host:port" or a URL). Returns None when nothing sensible can be guessed."""
    kind = stages.PROBE_FOR_PROTOCOL.get(integration.protocol)
    endpoint = (integration.endpoint or "").strip()
    if kind is None or not endpoint:
        return None
    fields = {"name": f"{integration.name} {dict(Probe.Kind.choices)[kind]}", "kind": kind}
    if kind == "http":
        url = endpoint if "://" in endpoint else f"https://{endpoint}"
        return {**fields, "url": url.rstrip("/") + "/metadata"}
    aet, _, address = endpoint.rpartition("@")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return None
    return {**fields, "host": host, "port": int(port), "called_aet": aet[:16]}


@transaction.atomic
def create_plan(integration, user=None):
    """A cutover plan with every stage, its default checklist and rollback steps."""
    plan = CutoverPlan.objects.create(integration=integration, created_by=user)
    for order, (kind, _label) in enumerate(stages.STAGES):
        stage = Stage.objects.create(
            plan=plan, kind=kind, order=order, rollback_steps=stages.ROLLBACK.get(kind, "")
        )
        ChecklistItem.objects.bulk_create(
            ChecklistItem(stage=stage, text=text, order=n, owner=integration.owner)
            for n, text in enumerate(stages.CHECKLISTS.get(kind, []))
        )
    defaults = probe_defaults(integration)
    if defaults:
        Probe.objects.create(plan=plan, **defaults)
    _plan_event(plan, f"created the cutover plan for {integration}", user)
    return plan


@transaction.atomic
def add_item(stage, text, user=None, owner="", due_date=None):
    if stage.gate_open:
        raise GateClosedError(f"the {stage.get_kind_display()} gate is already open")
    item = ChecklistItem(stage=stage, text=text, owner=owner, due_date=due_date)
    item.order = stage.items.count()
    item.full_clean()
    item.save()
    _plan_event(stage.plan, f"added “{text}” to {stage.get_kind_display()}", user)
    return item


@transaction.atomic
def save_evidence(item, user=None, note=None, upload=None):
    if note is not None:
        item.evidence_note = note
    if upload is not None:
        item.evidence_file = upload
    item.save()
    _plan_event(item.stage.plan, f"added evidence to “{item.text}”", user)
    return item


@transaction.atomic
def sign_item(item, user):
    """Sign a checklist item by name and time (django-auditlog records the change)."""
    item = ChecklistItem.objects.select_for_update().select_related("stage__plan").get(pk=item.pk)
    if item.signed:
        raise ValidationError(f"“{item.text}” was already signed by {item.signed_name}")
    item.signed_by = user
    item.signed_name = (user.get_full_name() or user.get_username())[:150]
    item.signed_at = timezone.now()
    item.save(update_fields=["signed_by", "signed_name", "signed_at"])
    _plan_event(item.stage.plan, f"signed “{item.text}”", user)
    return item


@transaction.atomic
def unsign_item(item, user):
    item = ChecklistItem.objects.select_for_update().select_related("stage__plan").get(pk=item.pk)
    if item.stage.gate_open:
        raise GateClosedError(
            "the gate of this stage is open; close it first to withdraw a signature"
        )
    item.signed_by, item.signed_name, item.signed_at = None, "", None
    item.save(update_fields=["signed_by", "signed_name", "signed_at"])
    _plan_event(item.stage.plan, f"withdrew the signature of “{item.text}”", user)
    return item


def gate_blockers(stage):
    """Why the stage's gate cannot open (empty when it can)."""
    reasons = []
    items = list(stage.items.all())
    if not items:
        reasons.append("the stage has no checklist items")
    unsigned = [i.text for i in items if not i.signed]
    if unsigned:
        reasons.append(f"{len(unsigned)} unsigned: " + "; ".join(unsigned))
    before = stage.plan.stages.filter(order__lt=stage.order, gate_opened_at__isnull=True)
    if before.exists():
        reasons.append(
            "open the gates before it first: " + ", ".join(s.get_kind_display() for s in before)
        )
    return reasons


@transaction.atomic
def open_gate(stage, user, note=""):
    """Open a stage's go/no-go gate; refused while any item is unsigned."""
    stage = Stage.objects.select_for_update().select_related("plan__integration").get(pk=stage.pk)
    if stage.gate_open:
        return stage
    reasons = gate_blockers(stage)
    if reasons:
        raise GateClosedError(
            f"the {stage.get_kind_display()} gate stays closed: " + "; ".join(reasons)
        )
    stage.gate_opened_at, stage.gate_opened_by, stage.gate_note = timezone.now(), user, note[:300]
    stage.save(update_fields=["gate_opened_at", "gate_opened_by", "gate_note"])
    _follow_integration_state(stage.plan)
    _plan_event(stage.plan, f"opened the {stage.get_kind_display()} gate", user)
    return stage


def _follow_integration_state(plan):
    """The inventory's integration says where its cutover stands: cutting over once a gate
    is open, cut over when the last one is."""
    integration = plan.integration
    opened = plan.stages.filter(gate_opened_at__isnull=False).count()
    if opened == 0:
        return
    state = "cut_over" if opened == plan.stages.count() else "cutting_over"
    if integration.state != state:
        integration.state = state
        integration.save(update_fields=["state"])


@transaction.atomic
def close_gate(stage, user, reason):
    """Close a gate again (a rollback); not while a later gate is open."""
    stage = Stage.objects.select_for_update().select_related("plan").get(pk=stage.pk)
    later = stage.plan.stages.filter(order__gt=stage.order, gate_opened_at__isnull=False)
    if later.exists():
        raise GateClosedError("close the later gates first")
    stage.gate_opened_at, stage.gate_opened_by, stage.gate_note = None, None, reason[:300]
    stage.save(update_fields=["gate_opened_at", "gate_opened_by", "gate_note"])
    _follow_integration_state(stage.plan)
    _plan_event(stage.plan, f"closed the {stage.get_kind_display()} gate: {reason}", user)
    return stage


@transaction.atomic
def save_rollback(stage, text, user=None):
    stage.rollback_steps = text
    stage.save(update_fields=["rollback_steps"])
    _plan_event(stage.plan, f"updated the rollback steps of {stage.get_kind_display()}", user)
    return stage


@transaction.atomic
def save_probe(probe, fields, user=None):
    for key, value in fields.items():
        setattr(probe, key, value)
    probe.full_clean()
    _check_probe_target(probe)
    probe.save()
    _plan_event(probe.plan, f"saved probe {probe.name}", user)
    return probe


def _check_probe_target(probe):
    if probe.kind == Probe.Kind.HTTP and not probe.url:
        raise ValidationError({"url": "an HTTP probe needs a URL"})
    if probe.kind != Probe.Kind.HTTP and not (probe.host and probe.port):
        raise ValidationError({"host": "this probe needs a host and a port"})
    if probe.kind in (Probe.Kind.DICOM_ECHO, Probe.Kind.DICOM_FIND) and not probe.called_aet:
        raise ValidationError({"called_aet": "a DICOM probe needs the called AE title"})
    _check_probe_egress(probe)


def _check_probe_egress(probe):
    """Refuse a target the egress policy does not allow (core/egress.py)."""
    policy = egress.current_policy()
    if probe.kind == Probe.Kind.HTTP:
        problem = egress.url_problem(probe.url, policy)
        field = "url"
    else:
        problem = egress.host_problem(probe.host, probe.port, policy)
        field = "host"
    if problem:
        raise ValidationError({field: problem})


def _outcome(probe):
    if probe.kind == Probe.Kind.DICOM_ECHO:
        return probes.dicom_echo(probe.host, probe.port, probe.called_aet, probe.calling_aet)
    if probe.kind == Probe.Kind.DICOM_FIND:
        return probes.dicom_find(probe.host, probe.port, probe.called_aet, probe.calling_aet)
    if probe.kind == Probe.Kind.HL7:
        return probes.hl7_mllp(probe.host, probe.port, timeout=probe.timeout_s)
    return probes.http_get(probe.url, timeout=probe.timeout_s)


def queue_probe(probe, trigger="on demand"):
    """Ask a worker to run the probe (the web process never connects to its target);
    the result arrives on the plan's page as an event and in the probe's history."""
    from cutover import tasks

    transaction.on_commit(lambda: tasks.run_probe.delay(probe.pk, trigger))
    return {"queued": True, "id": probe.pk}


def run_probe(probe, trigger="on demand"):
    """Run one probe, keep the result, and raise a ticket when it fails."""
    outcome = _outcome(probe)
    with transaction.atomic():
        result = ProbeResult.objects.create(
            probe=probe, ok=outcome.ok, detail=outcome.detail, ms=outcome.ms, trigger=trigger
        )
        probe.last_ok, probe.last_at, probe.last_detail = outcome.ok, result.at, outcome.detail
        Probe.objects.filter(pk=probe.pk).update(
            last_ok=outcome.ok, last_at=result.at, last_detail=outcome.detail
        )
        if not outcome.ok:
            _probe_alert(probe, outcome)
        verdict = "passed" if outcome.ok else "FAILED"
        _plan_event(probe.plan, f"probe {probe.name} {verdict}: {outcome.detail}")
    return result


def _probe_alert(probe, outcome):
    integration = probe.plan.integration
    raise_alert(
        "integration",
        f"integration.probe_failed.{probe.pk}",
        f"Connectivity probe failing: {probe.name}",
        category="integration",
        impact="high",
        urgency="high" if integration.state == "cut_over" else "medium",
        detail=f"{probe.get_kind_display()} for {integration}: {outcome.detail}",
        links={"integration": integration.pk},
    )


# -- viewer validation --------------------------------------------------------------------------


def legacy_capabilities():
    """Every capability that at least one legacy viewer of the inventory offers, with the
    names of those viewers: [(capability, [viewer names])]."""
    from inventory.models import Viewer

    found = {}
    for viewer in Viewer.objects.prefetch_related("capabilities"):
        for cap in viewer.capabilities.all():
            found.setdefault(cap, []).append(viewer.name)
    return sorted(found.items(), key=lambda item: (not item[0].standard, item[0].name))


@transaction.atomic
def create_cloud_viewer(fields, user=None):
    """A cloud viewer to validate, with its test plan generated from the legacy viewers."""
    viewer = CloudViewer(**fields)
    viewer.full_clean()
    viewer.save()
    generate_test_plan(viewer, user)
    return viewer


@transaction.atomic
def generate_test_plan(viewer, user=None):
    """Add a test case to `viewer` for every legacy capability it does not have yet."""
    existing = set(viewer.cases.values_list("capability_id", flat=True))
    new = [
        ViewerTestCase(viewer=viewer, capability=cap)
        for cap, _names in legacy_capabilities()
        if cap.pk not in existing
    ]
    ViewerTestCase.objects.bulk_create(new)
    publish("cutover.viewers", {"viewer": viewer.pk, "added": len(new)})
    publish_readiness()
    return len(new)


@transaction.atomic
def record_result(case, user, result, notes="", screenshot=None, **gap):
    """A tester's verdict on one capability; gaps and failures carry an owner and solution."""
    if result not in ViewerTestCase.Result.values:
        raise ValidationError({"result": f"unknown result {result!r}"})
    case.result, case.notes, case.tester, case.tested_at = result, notes, user, timezone.now()
    if screenshot is not None:
        case.screenshot = screenshot
    for field in ("gap_owner", "gap_solution", "gap_resolved"):
        if field in gap:
            setattr(case, field, gap[field])
    case.full_clean()
    case.save()
    publish("cutover.viewers", {"viewer": case.viewer_id, "case": case.pk, "result": result})
    publish_readiness()
    return case


# -- go/no-go readiness -------------------------------------------------------------------------


@transaction.atomic
def set_threshold(key, value, user=None):
    """A project manager's threshold for one criterion (None: back to the default)."""
    if key not in readiness.BY_KEY:
        raise ValidationError({"key": f"unknown criterion {key!r}"})
    ReadinessSetting.objects.update_or_create(
        key=key, defaults={"threshold": None if value is None else float(value), "updated_by": user}
    )
    publish_readiness()


@transaction.atomic
def waive_criterion(key, reason, user, waived=True):
    """Accept a criterion as a known risk (with its reason), or withdraw the waiver."""
    if key not in readiness.BY_KEY:
        raise ValidationError({"key": f"unknown criterion {key!r}"})
    if waived and not reason.strip():
        raise ValidationError({"reason": "a waiver needs its reason"})
    ReadinessSetting.objects.update_or_create(
        key=key,
        defaults={"waived": waived, "waiver_reason": reason.strip()[:300], "updated_by": user},
    )
    publish_readiness()


def publish_readiness():
    """Evaluate go/no-go and push it to every readiness screen (after commit)."""
    result = readiness.evaluate()
    html = render_to_string("cutover/_readiness.html", {"readiness": result})
    payload = {"go": result["go"], "verdict": result["verdict"], "reasons": result["reasons"]}
    publish("cutover.readiness", payload, html=html)
    return result
