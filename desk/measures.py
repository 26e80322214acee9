"""Numbers other apps read from the command center: plain functions, plain values."""

from desk import triage


def open_ticket_counts():
    """{"P1": n, "P2": n, "P3": n, "P4": n}: open tickets per priority."""
    return triage.open_counts()["by_priority"]
