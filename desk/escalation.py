"""Escalation: after N minutes still unacknowledged (or unresolved), notify someone.

A policy (one per priority) has ordered steps; the whole policy repeats up to K times,
every `repeat_after_minutes`, while a step's condition holds, so a P1 that nobody
acknowledges keeps re-escalating. Time counts like the SLA clock (not while Waiting).
Beat calls `run()` every minute; each firing is recorded once on the ticket.
"""

import logging

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core.access import LEAD
from desk import roster, tickets, workflow
from desk.models import Escalation, EscalationPolicy, EscalationStep, Ticket
from desk.notifications import notify

log = logging.getLogger(__name__)


def elapsed_minutes(ticket, now):
    """Minutes the ticket's clock has run: since it opened, minus time spent Waiting."""
    until = ticket.paused_since or now
    return ((until - ticket.opened_at).total_seconds() - ticket.paused_seconds) / 60


def condition_holds(step, ticket):
    if step.condition == EscalationStep.Condition.UNACKNOWLEDGED:
        return ticket.acknowledged_at is None
    return ticket.resolved_at is None


def due_firings(ticket, policy, steps, fired, now):
    """[(step, cycle)] to fire now: per step, the latest due repetition not yet fired."""
    minutes = elapsed_minutes(ticket, now)
    due = []
    for step in steps:
        if not condition_holds(step, ticket):
            continue
        done = [cycle for (ticket_id, step_id, cycle) in fired if step_id == step.pk]
        reached = [
            cycle
            for cycle in range(policy.repeat_times + 1)
            if step.after_minutes + cycle * policy.repeat_after_minutes <= minutes
        ]
        if reached and (not done or max(reached) > max(done)):
            due.append((step, max(reached)))
    return due


def recipients(step, now):
    """Who a step notifies; nobody reachable means the leads."""
    if step.target == EscalationStep.Target.PERSON and step.person:
        people = [step.person]
    elif step.target == EscalationStep.Target.ON_CALL and step.rotation:
        people = roster.on_call_users(step.rotation, now)
    else:
        people = roster.lead_on_call(now)
    return people or list(get_user_model().objects.filter(groups__name=LEAD, is_active=True))


def fire(ticket, step, cycle, now):
    """Record one escalation and notify its people; None if it already fired elsewhere."""
    people = recipients(step, now)
    names = sorted(p.get_username() for p in people)
    repeat = f", repeat {cycle}" if cycle else ""
    summary = (
        f"{ticket.priority} {step.get_condition_display()} after {step.after_minutes} min "
        f"(step {step.order}{repeat}): notified {', '.join(names) or 'nobody'}"
    )
    try:
        with transaction.atomic():
            escalation = Escalation.objects.create(
                ticket=ticket, step=step, cycle=cycle, at=now, notified=names, summary=summary
            )
            Ticket.objects.filter(pk=ticket.pk).update(escalations=F("escalations") + 1)
            ticket.escalations += 1
            tickets.record(ticket, None, "escalated", now, note=summary)
            notify(
                people, f"Escalated #{ticket.pk} ({ticket.priority}): {ticket.title}", ticket, now
            )
            tickets.publish(ticket, now)
    except IntegrityError:
        return None
    return escalation


def run(now=None):
    """Fire every escalation that is due at `now`; returns the Escalations recorded."""
    now = now or timezone.now()
    policies = {
        p.priority: (p, list(p.steps.select_related("person", "rotation")))
        for p in EscalationPolicy.objects.filter(active=True)
    }
    open_tickets = Ticket.objects.filter(
        status__in=workflow.OPEN_STATUSES, priority__in=list(policies)
    )
    fired = {}
    for ticket_id, step_id, cycle in Escalation.objects.filter(ticket__in=open_tickets).values_list(
        "ticket_id", "step_id", "cycle"
    ):
        fired.setdefault(ticket_id, []).append((ticket_id, step_id, cycle))
    done = []
    for ticket in open_tickets:
        policy, steps = policies[ticket.priority]
        for step, cycle in due_firings(ticket, policy, steps, fired.get(ticket.pk, []), now):
            escalation = fire(ticket, step, cycle, now)
            if escalation is not None:
                done.append(escalation)
    return done


def save_policy(form, steps_formset):
    """Save a policy and its steps together (the lead's escalation form)."""
    with transaction.atomic():
        policy = form.save()
        steps_formset.instance = policy
        steps_formset.save()
    return policy
