"""State changes of tickets: each one records its history and publishes the card once.

Views, API views, tasks and listeners call these; none of them touches a Ticket's
fields directly. `actor=None` means the system (an automatic ticket, an escalation),
which is not subject to access rules.
"""

import logging
import re

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core import events
from core.scrub import scrub_text
from desk import catalog, sla, ticket_page, triage, workflow
from desk.models import Comment, Ticket, TicketEvent
from desk.priority import priority_for

log = logging.getLogger(__name__)

EDITABLE = ("title", "description", "category", "team", "department", "impact", "urgency")
EDITABLE_ALL = (*EDITABLE, "assignee", "links")
# A DICOM person name (FAMILY^GIVEN) in free text is PHI whoever it belongs to.
PERSON_NAME = re.compile(r"\b[A-Za-z][A-Za-z'-]*\^[A-Za-z][A-Za-z'^ -]*")
REDACTED = "[redacted]"


def _label(field, value):
    if value is None or value == "":
        return "—"
    if field == "status":
        return workflow.STATUSES.get(value, value)
    if field == "category":
        return catalog.CATEGORIES.get(value, value)
    if field == "team":
        return catalog.TEAMS.get(value, value)
    if field == "assignee":
        return value.get_username()
    return str(value)[:300]


def record(ticket, actor, kind, now, field="", before=None, after=None, note=""):
    return TicketEvent.objects.create(
        ticket=ticket,
        actor=actor,
        kind=kind,
        at=now,
        field=field,
        before=_label(field, before) if field else "",
        after=_label(field, after) if field else "",
        note=note[:500],
    )


def publish(ticket, now=None):
    """Send the ticket's card to every board, once, after the commit; then its page parts
    to whoever has the ticket open (rendered after the card has gone)."""
    now = now or timezone.now()
    ticket = Ticket.objects.select_related("assignee").get(pk=ticket.pk)
    payload = {
        "action": "upsert",
        "id": ticket.pk,
        "status": ticket.status,
        "priority": ticket.priority,
        "counts": triage.open_counts(),
    }
    events.publish("board", payload, html=triage.render_card(ticket, now))
    ticket_page.publish(ticket.pk)


def publish_counts(now=None):
    """Counts only (breaches grow as time passes, with no change to publish): beat sends
    this every minute with the escalation run."""
    events.publish("board", {"action": "counts", "counts": triage.board_counts(now)})


def create_ticket(
    *,
    title,
    description="",
    category="other",
    impact="medium",
    urgency="medium",
    department="",
    reporter=None,
    assignee=None,
    links=None,
    source="staff",
    cause="",
    team=None,
    now=None,
):
    """Open a ticket: priority from the matrix, SLA deadlines from its priority."""
    now = now or timezone.now()
    priority = priority_for(impact, urgency)
    ack_due, resolve_due = sla.deadlines(now, priority)
    with transaction.atomic():
        ticket = Ticket.objects.create(
            title=title[:200],
            description=description,
            category=category,
            team=team or catalog.CATEGORY_TEAM.get(category, "service_desk"),
            department=department,
            reporter=reporter,
            assignee=assignee,
            impact=impact,
            urgency=urgency,
            priority=priority,
            source=source,
            cause=cause[:200],
            last_seen=now,
            links=dict(links or {}),
            opened_at=now,
            updated_at=now,
            ack_due=ack_due,
            resolve_due=resolve_due,
        )
        record(ticket, reporter, "created", now, note=f"opened as {priority} from {source}")
        publish(ticket, now)
    return ticket


def _locked(ticket):
    return Ticket.objects.select_for_update().get(pk=ticket.pk)


def update_ticket(ticket, actor=None, now=None, **changes):
    """Change fields (see EDITABLE_ALL); impact or urgency recompute priority and deadlines."""
    unknown = set(changes) - set(EDITABLE_ALL)
    if unknown:
        raise ValueError(f"cannot edit {', '.join(sorted(unknown))}")
    now = now or timezone.now()
    with transaction.atomic():
        ticket = _locked(ticket)
        changed = _apply_changes(ticket, actor, now, changes)
        if not changed:
            return ticket
        if {"impact", "urgency"} & changed:
            _reprioritise(ticket, actor, now)
        ticket.updated_at = now
        ticket.save()
        publish(ticket, now)
    return ticket


def _apply_changes(ticket, actor, now, changes):
    changed = set()
    for field, value in changes.items():
        before = getattr(ticket, field)
        if before == value:
            continue
        setattr(ticket, field, value)
        shown = "links" if field == "links" else field
        record(ticket, actor, "changed", now, field=shown, before=before, after=value)
        changed.add(field)
    return changed


def _reprioritise(ticket, actor, now):
    priority = priority_for(ticket.impact, ticket.urgency)
    if priority == ticket.priority:
        return
    record(ticket, actor, "changed", now, field="priority", before=ticket.priority, after=priority)
    ticket.priority = priority
    ticket.ack_due, ticket.resolve_due = sla.deadlines(
        ticket.opened_at, priority, ticket.paused_seconds
    )


def transition(ticket, target, actor=None, now=None, note=""):
    """Move a ticket to `target` if the workflow (and, for a person, their role) allows it.

    Raises workflow.TransitionRefused otherwise; nothing changes then.
    """
    now = now or timezone.now()
    with transaction.atomic():
        ticket = _locked(ticket)
        workflow.check(ticket.status, target, user=actor)
        before = ticket.status
        _apply_status(ticket, target, now)
        ticket.save()
        record(ticket, actor, "status", now, field="status", before=before, after=target, note=note)
        publish(ticket, now)
    return ticket


def _apply_status(ticket, target, now):
    if ticket.status in workflow.PAUSED_STATUSES and target not in workflow.PAUSED_STATUSES:
        sla.resume(ticket, now)
    if target in workflow.PAUSED_STATUSES:
        sla.pause(ticket, now)
    if target != "new" and ticket.acknowledged_at is None:
        ticket.acknowledged_at = now
    if target in triage.DONE_STATUSES:
        ticket.resolved_at = ticket.resolved_at or now
    else:
        ticket.resolved_at = None
    ticket.closed_at = now if target == "closed" else None
    ticket.status = target
    ticket.updated_at = now


def add_comment(ticket, author, body, now=None):
    now = now or timezone.now()
    body = body.strip()
    if not body:
        raise ValueError("a comment needs some text")
    with transaction.atomic():
        comment = Comment.objects.create(ticket=ticket, author=author, body=body, created_at=now)
        record(ticket, author, "comment", now, note=body[:200])
        Ticket.objects.filter(pk=ticket.pk).update(updated_at=now)
        publish(ticket, now)
    return comment


# --- Automatic tickets ----------------------------------------------------------------------


def scrub(text, links):
    """Remove PHI from an automatic ticket's text: DICOM person names, and the linked
    study's patient name, patient ID and accession number wherever they appear."""
    text = PERSON_NAME.sub(REDACTED, text)
    for value in _phi_of_linked_study(links):
        text = re.sub(re.escape(value), REDACTED, text, flags=re.IGNORECASE)
    return text


def _phi_of_linked_study(links):
    study_id = (links or {}).get("study")
    if not str(study_id or "").isdigit():
        return []
    from inventory.models import Study

    study = Study.objects.filter(pk=int(study_id)).first()
    if study is None:
        return []
    parts = [study.patient_id, study.accession_number, study.patient_name]
    parts += [p for p in re.split(r"[\^= ]", study.patient_name) if len(p) >= 3]
    return sorted({p for p in parts if p}, key=len, reverse=True)


def ingest_alert(alert, now=None):
    """Turn an `alerts.<source>` payload into a ticket: one open ticket per cause, counting
    occurrences. Returns (ticket, created)."""
    now = now or timezone.now()
    cause = alert["cause"] or f"{alert['source']}.{alert['title']}"
    for _ in range(3):
        existing = Ticket.objects.filter(cause=cause, status__in=workflow.OPEN_STATUSES).first()
        if existing is not None:
            return _seen_again(existing, now), False
        try:
            return _open_from_alert(alert, cause, now), True
        except IntegrityError:  # another process opened it a moment ago: count on that one
            continue
    raise RuntimeError(f"could not record alert {cause!r}")


def _open_from_alert(alert, cause, now):
    links = alert.get("links") or {}
    return create_ticket(
        title=scrub(alert["title"], links) or cause,
        description=scrub(alert.get("detail", ""), links),
        category=catalog.category_code(alert.get("category")),
        impact=alert.get("impact", "medium"),
        urgency=alert.get("urgency", "medium"),
        links=links,
        source=alert["source"],
        cause=cause,
        team=catalog.SOURCE_TEAM.get(alert["source"]),
        now=now,
    )


def _seen_again(ticket, now):
    """Count one more occurrence; the history keeps one running line for them.

    The counting UPDATE comes first in the transaction, so concurrent workers queue on
    the row (or, on SQLite, on the database) instead of deadlocking on a lock upgrade.
    """
    with transaction.atomic():
        Ticket.objects.filter(pk=ticket.pk).update(
            occurrences=F("occurrences") + 1, last_seen=now, updated_at=now
        )
        ticket = Ticket.objects.get(pk=ticket.pk)
        note = f"seen {ticket.occurrences} times, last at {now:%Y-%m-%d %H:%M:%S}"
        last = ticket.history.order_by("-at", "-pk").first()
        if last is not None and last.kind == "occurrence":
            TicketEvent.objects.filter(pk=last.pk).update(note=note, at=now)
        else:
            record(ticket, None, "occurrence", now, note=note)
        publish(ticket, now)
    return ticket


def open_causes(causes):
    """Which of these causes have an open automatic ticket."""
    rows = Ticket.objects.filter(cause__in=list(causes), status__in=workflow.OPEN_STATUSES)
    return set(rows.exclude(cause="").values_list("cause", flat=True))


def recover(alert, now=None):
    """The problem behind an automatic ticket is over: the system says so in a comment and
    moves the open ticket of that cause to Resolved. Returns the ticket, or None."""
    now = now or timezone.now()
    ticket = Ticket.objects.filter(cause=alert["cause"], status__in=workflow.OPEN_STATUSES)
    ticket = ticket.exclude(cause="").first()
    if ticket is None:
        return None
    detail = scrub(alert.get("detail") or "the check passes again", ticket.links)
    with transaction.atomic():
        add_comment(ticket, None, f"Recovered: {detail}", now)
        try:
            return transition(ticket, "resolved", None, now, note="recovered")
        except workflow.TransitionRefused as exc:  # the workflow table forbids it: say so only
            log.warning("recovered ticket %s stays open: %s", ticket.pk, exc)
            return ticket


# --- Screenshots ----------------------------------------------------------------------------

MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
IMAGE_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif", "WEBP": "image/webp"}


class AttachmentRefused(ValueError):  # noqa: N818 (reads as what happened)
    """Not a screenshot we keep: too big, or not a PNG, JPEG, GIF or WebP image."""


def check_screenshot(upload):
    """The upload's real content type, judged by decoding it, not by its name or header."""
    from PIL import Image

    if upload.size > MAX_ATTACHMENT_BYTES:
        raise AttachmentRefused(
            f"{upload.name} is {upload.size / 1e6:.1f} MB; screenshots may be at most "
            f"{MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB"
        )
    try:
        upload.seek(0)
        with Image.open(upload) as image:
            kind = image.format
            image.verify()
    except Exception as exc:
        raise AttachmentRefused(f"{upload.name} is not a readable image ({exc})") from None
    finally:
        upload.seek(0)
    if kind not in IMAGE_TYPES:
        raise AttachmentRefused(f"{upload.name} is a {kind} image; use PNG, JPEG, GIF or WebP")
    return IMAGE_TYPES[kind]


def add_attachment(ticket, upload, user, now=None):
    """Keep a checked screenshot on the ticket (AttachmentRefused otherwise, nothing kept)."""
    from desk.models import Attachment

    content_type = check_screenshot(upload)
    now = now or timezone.now()
    name = re.sub(r"[^\w.() -]", "_", scrub_text(upload.name))[:200] or "screenshot"
    attachment = Attachment(
        ticket=ticket,
        name=name,
        content_type=content_type,
        size=upload.size,
        uploaded_by=user,
        uploaded_at=now,
    )
    attachment.file.save(name, upload, save=False)
    try:
        with transaction.atomic():
            attachment.save()
            record(ticket, user, "attachment", now, note=name)
            Ticket.objects.filter(pk=ticket.pk).update(updated_at=now)
            publish(ticket, now)
    except Exception:
        attachment.file.delete(save=False)  # no file without its row
        raise
    return attachment
