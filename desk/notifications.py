"""Notify people: a stored notification, a live toast and badge, and an e-mail."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from core import events
from core.scrub import scrub_text
from desk.models import Notification

log = logging.getLogger(__name__)


def unread_count(user):
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


def notify(users, text, ticket=None, now=None):
    """Tell each user `text`: stored, pushed live on `user.<id>`, and e-mailed after commit."""
    now = now or timezone.now()
    sent = []
    for user in {u.pk: u for u in users}.values():
        note = Notification.objects.create(
            user=user, ticket=ticket, text=text[:300], created_at=now
        )
        _push(note)
        if user.email:
            transaction.on_commit(lambda u=user: _email(u, text, ticket))
        sent.append(user)
    return sent


def _push(note):
    url = reverse("cc:ticket", args=[note.ticket_id]) if note.ticket_id else ""
    payload = {"id": note.pk, "text": note.text, "url": url, "unread": unread_count(note.user)}
    html = render_to_string("desk/_toast.html", {"note": note, "url": url})
    events.publish(f"user.{note.user_id}", payload, html=html)


def _email(user, text, ticket):
    text = scrub_text(text)
    subject = f"[Command center] {text}"[:150]
    body = text
    if ticket is not None:
        title = scrub_text(ticket.title)
        body += f"\n\nTicket #{ticket.pk}: {title}\n{reverse('cc:ticket', args=[ticket.pk])}"
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [user.email])
    except Exception as exc:  # the live notification stands; the mail server is logged
        log.warning("could not e-mail notification to user %s: %s", user.pk, exc)


def mark_read(user, now=None):
    now = now or timezone.now()
    count = Notification.objects.filter(user=user, read_at__isnull=True).update(read_at=now)
    events.publish(f"user.{user.pk}", {"unread": 0, "read": count})
    return count
