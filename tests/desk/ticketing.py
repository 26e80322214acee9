"""Shared helpers for the command center's ticket tests: a fixed clock and a ticket maker."""

from datetime import UTC, datetime, timedelta

from desk import tickets

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def minutes(n):
    """T0 plus `n` minutes: tests move the clock by passing `now`, never by sleeping."""
    return T0 + timedelta(minutes=n)


def open_ticket(title="Viewer does not load priors", at=0, **fields):
    fields.setdefault("impact", "medium")
    fields.setdefault("urgency", "medium")
    return tickets.create_ticket(title=title, now=minutes(at), **fields)
