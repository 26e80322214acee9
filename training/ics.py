"""iCalendar (RFC 5545) files for training sessions: one per session, one per person.

Written by hand (it is a small format): CRLF line ends, lines folded at 75 octets without
splitting a UTF-8 character, TEXT values escaped, times in UTC. A person's calendar also
lists sessions they cancelled, as STATUS:CANCELLED with the same UID, so a calendar that
imported them before drops them.
"""

from datetime import UTC

from django.conf import settings
from django.utils import timezone

PRODID = "-//Migration Command Center//Training//EN"
STATUS = {"enrolled": "CONFIRMED", "waitlisted": "TENTATIVE", "cancelled": "CANCELLED"}


def session_calendar(session, *, url="", now=None):
    return _calendar(f"Training: {session.name}", [_event(session, url=url, now=now)])


def person_calendar(user, enrolments, *, url_for=lambda session: "", now=None):
    """`enrolments`: the person's enrolments (with sessions) to include."""
    events = [
        _event(e.session, status=e.status, url=url_for(e.session), now=now) for e in enrolments
    ]
    return _calendar(f"Training: {user.get_username()}", events)


def _calendar(name, events):
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape(name)}",
    ]
    for event in events:
        lines.extend(event)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)


def _event(session, *, status="enrolled", url="", now=None):
    summary = session.name + (" (waitlist)" if status == "waitlisted" else "")
    lines = [
        "BEGIN:VEVENT",
        f"UID:training-session-{session.pk}@{uid_domain()}",
        f"DTSTAMP:{utc(now or timezone.now())}",
        f"DTSTART:{utc(session.starts_at)}",
        f"DTEND:{utc(session.ends_at)}",
        f"SUMMARY:{escape(summary)}",
        f"STATUS:{STATUS[status]}",
    ]
    where = session.location or session.virtual_link
    if where:
        lines.append(f"LOCATION:{escape(where)}")
    if description := _description(session):
        lines.append(f"DESCRIPTION:{escape(description)}")
    if url:
        lines.append(f"URL:{url}")
    if session.trainer and session.trainer.email:
        cn = escape_param(session.trainer.get_full_name() or session.trainer.get_username())
        lines.append(f"ORGANIZER;CN={cn}:mailto:{session.trainer.email}")
    lines.append("END:VEVENT")
    return lines


def _description(session):
    parts = [session.module.summary, session.notes]
    if session.virtual_link:
        parts.append(f"Join online: {session.virtual_link}")
    parts.extend(f"{m.title}: {m.url}" for m in session.materials.all() if m.url)
    return "\n".join(p for p in parts if p)


def uid_domain():
    return getattr(settings, "CALENDAR_UID_DOMAIN", "training.command-center")


def utc(moment):
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def escape(text):
    """TEXT value escaping (RFC 5545 3.3.11)."""
    text = text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def escape_param(text):
    """A parameter value: quoted when it holds : ; or , (DQUOTE itself is not allowed)."""
    text = text.replace('"', "'")
    return f'"{text}"' if any(c in text for c in ":;,") else text


def fold(line, limit=75):
    """Fold a content line into chunks of at most `limit` octets (RFC 5545 3.1)."""
    out, current, size = [], "", 0
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > limit:
            out.append(current)
            current, size, limit = " ", 1, 75
        current += char
        size += width
    out.append(current)
    return "\r\n".join(out)
