"""The 24/7 shift roster: who is on call at any instant, handoffs and their notes.

A rotation's members take turns in fixed shifts from its first handoff; an override
puts someone else on call for a while. Every function takes `at`/`now` for tests.
"""

import math
from datetime import timedelta

from django.core.cache import cache
from django.db.models import Max
from django.template.loader import render_to_string
from django.utils import timezone

from core import events
from desk.models import HandoffNote, Override, Rotation, RotationMember


class RosterError(ValueError):
    """A roster action that is not allowed (e.g. acknowledging a handoff too early)."""


def shift_start(rotation, at):
    """Start of the shift that contains `at` (None before the rotation begins)."""
    if at < rotation.starts_at:
        return None
    length = timedelta(hours=rotation.shift_hours)
    index = math.floor((at - rotation.starts_at) / length)
    return rotation.starts_at + index * length


def scheduled_member(rotation, at, members=None):
    """The member whose turn it is at `at`, by the rotation alone (no overrides)."""
    start = shift_start(rotation, at)
    members = list(members if members is not None else rotation.members.all())
    if start is None or not members:
        return None
    index = round((start - rotation.starts_at) / timedelta(hours=rotation.shift_hours))
    return members[index % len(members)]


def active_override(rotation, at, overrides=None):
    overrides = overrides if overrides is not None else rotation.overrides.all()
    current = [o for o in overrides if o.starts_at <= at < o.ends_at]
    return max(current, key=lambda o: o.pk) if current else None


def on_call(rotation, at):
    """{"user", "contact", "override"} for `rotation` at `at`, or None if nobody."""
    members = list(rotation.members.all())
    override = active_override(rotation, at, list(rotation.overrides.all()))
    if override is not None:
        member = next((m for m in members if m.user_id == override.user_id), None)
        contact = member.contact if member and member.contact else override.user.email
        return {"user": override.user, "contact": contact, "override": True}
    member = scheduled_member(rotation, at, members)
    if member is None:
        return None
    return {"user": member.user, "contact": member.contact or member.user.email, "override": False}


def _rotations():
    return Rotation.objects.filter(active=True).prefetch_related("members__user", "overrides__user")


def on_call_now(at=None):
    """Who is on call at `at` (now): [{"name", "role", "contact"}], lead rotations first."""
    at = at or timezone.now()
    people = []
    for rotation in _rotations():
        current = on_call(rotation, at)
        if current is not None:
            user = current["user"]
            people.append(
                {
                    "name": user.get_full_name() or user.get_username(),
                    "role": rotation.role_label,
                    "contact": current["contact"],
                }
            )
    return people


def on_call_users(rotation, at):
    current = on_call(rotation, at)
    return [] if current is None else [current["user"]]


def lead_on_call(at):
    """The people on call in lead rotations."""
    users = []
    for rotation in _rotations().filter(is_lead=True):
        users += on_call_users(rotation, at)
    return users


def schedule(rotation, start, hours=48):
    """The shifts from the one containing `start` for `hours`: [{"start","end","user",...}]."""
    length = timedelta(hours=rotation.shift_hours)
    begin = shift_start(rotation, max(start, rotation.starts_at))
    shifts = []
    while begin is not None and begin < start + timedelta(hours=hours):
        current = on_call(rotation, begin)
        shifts.append(
            {
                "start": begin,
                "end": begin + length,
                "user": current and current["user"],
                "override": bool(current and current["override"]),
            }
        )
        begin += length
    return shifts


# --- Handoff notes --------------------------------------------------------------------------


def write_handoff(rotation, author, body, now=None):
    """The note of the shift running now (written again, it is replaced until acknowledged)."""
    now = now or timezone.now()
    start = shift_start(rotation, now)
    if start is None:
        raise RosterError("this rotation has not started yet")
    if not body.strip():
        raise RosterError("a handoff note needs some text")
    note, created = HandoffNote.objects.get_or_create(
        rotation=rotation,
        shift_start=start,
        defaults={"author": author, "body": body.strip(), "written_at": now},
    )
    if not created:
        if note.acknowledged_at is not None:
            raise RosterError("the next shift already acknowledged this note")
        note.author, note.body, note.written_at = author, body.strip(), now
        note.save()
    return note


def acknowledge_handoff(note, user, now=None, may_override=False):
    """The next shift acknowledges the note once its own shift has begun.

    Only the person on call in the next shift may, unless `may_override` (a lead).
    """
    now = now or timezone.now()
    next_start = note.shift_start + timedelta(hours=note.rotation.shift_hours)
    if now < next_start:
        raise RosterError(f"the next shift begins at {next_start:%Y-%m-%d %H:%M}")
    if note.acknowledged_at is not None:
        raise RosterError("this note is already acknowledged")
    incoming = on_call_users(note.rotation, next_start)
    if not may_override and user not in incoming:
        raise RosterError("only the person on call in the next shift acknowledges this note")
    note.acknowledged_by, note.acknowledged_at = user, now
    note.save(update_fields=["acknowledged_by", "acknowledged_at"])
    return note


def pending_handoffs(now=None):
    """Notes of finished shifts that nobody acknowledged yet."""
    now = now or timezone.now()
    notes = HandoffNote.objects.filter(acknowledged_at__isnull=True).select_related(
        "rotation", "author"
    )
    return [n for n in notes if n.shift_start + timedelta(hours=n.rotation.shift_hours) <= now]


# --- Live "on call now" ---------------------------------------------------------------------

CACHE_KEY = "commandcenter:on-call-now"


def publish_on_call(now=None, force=False):
    """Push "who is on call" to every command-center page when it changed (beat calls
    this every minute, and roster edits call it with force=True)."""
    people = on_call_now(now)
    if not force and cache.get(CACHE_KEY) == people:
        return people
    cache.set(CACHE_KEY, people, None)
    html = render_to_string("desk/_on_call.html", {"on_call": people})
    events.publish("oncall", {"on_call": people}, html=html)
    return people


def add_member(rotation, user, contact=""):
    last = rotation.members.aggregate(last=Max("position"))["last"] or 0
    return RotationMember.objects.create(
        rotation=rotation, user=user, position=last + 1, contact=contact
    )


def add_override(rotation, user, starts_at, ends_at, created_by=None, reason=""):
    if ends_at <= starts_at:
        raise RosterError("an override must end after it starts")
    override = Override.objects.create(
        rotation=rotation,
        user=user,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason,
        created_by=created_by,
    )
    publish_on_call(force=True)
    return override
