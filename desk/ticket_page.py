"""The ticket page and its live parts.

Everything that changes on a ticket (header, details, status buttons, comments,
screenshots, escalations, history) is a part of `_ticket_part.html`, with nothing per
viewer in it (no forms, no token). The page includes each part in its place; every
change renders all of them once (`_ticket_live.html`) and publishes them on
`board.ticket.<id>`, where each open page swaps every part for its new twin. Status
buttons carry the access rule they need; the page hides those its viewer does not hold.
"""

from django.db import transaction
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from core import events
from core.access import RULES, has_rule
from desk import catalog, sla, workflow
from desk.models import Ticket

PARTS = ("head", "details", "status", "comments", "attachments", "escalations", "history")


def topic(ticket_id):
    return f"board.ticket.{ticket_id}"


def links(ticket):
    """The ticket's links, with a URL where the owning app has a page for them."""
    shown = []
    for kind, value in (ticket.links or {}).items():
        url = None
        for name in (f"{kind.split('_')[0]}:{kind}", f"migration:{kind}", f"inventory:{kind}"):
            try:
                url = reverse(name, args=[value])
                break
            except NoReverseMatch:
                continue
        shown.append({"kind": catalog.LINK_KINDS.get(kind, kind), "value": value, "url": url})
    return shown


def status_targets(status, viewer=None):
    """[{"status", "label", "rule"}] of the moves out of `status`; only the viewer's
    when given (a published part has every move, each marked with its rule)."""
    table = workflow.transitions()
    return [
        {"status": target, "label": label, "rule": table[(status, target)]}
        for target, label in workflow.STATUSES.items()
        if (status, target) in table
        and (viewer is None or has_rule(viewer, table[(status, target)]))
    ]


def live_context(ticket, now=None, viewer=None):
    return {
        "t": ticket,
        "sla": sla.display(ticket, now or timezone.now()),
        "links": links(ticket),
        "targets": status_targets(ticket.status, viewer),
        "history": ticket.history.select_related("actor"),
        "comments": ticket.comments.select_related("author"),
        "attachments": ticket.attachments.select_related("uploaded_by"),
        "escalation_log": ticket.escalation_log.all(),
        "parts": PARTS,
    }


def viewer_rules(user):
    """The rules a viewer holds, for the page to hide the status buttons it may not use."""
    return " ".join(sorted(rule for rule in RULES if has_rule(user, rule)))


def render_live(ticket, now=None):
    return render_to_string("desk/_ticket_live.html", live_context(ticket, now))


def publish(ticket_id):
    """After the commit (and after the board's card): the ticket's parts, rendered once."""

    def send():
        ticket = Ticket.objects.select_related("assignee", "reporter").filter(pk=ticket_id).first()
        if ticket is None:
            return
        payload = {"id": ticket.pk, "status": ticket.status, "updated_at": ticket.updated_at}
        events.publish(topic(ticket.pk), payload, html=render_live(ticket))

    transaction.on_commit(send, robust=True)
