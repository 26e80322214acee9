"""The desk's fixed vocabularies, which its models and its rules both read: ticket
statuses and priorities. (Which moves between statuses are allowed is `workflow`; which
priority an impact and an urgency give is `priority`: both are data in tables too.)"""

STATUSES = {
    "new": "New",
    "acknowledged": "Acknowledged",
    "in_progress": "In progress",
    "waiting": "Waiting",
    "resolved": "Resolved",
    "closed": "Closed",
}
OPEN_STATUSES = ("new", "acknowledged", "in_progress", "waiting")
PAUSED_STATUSES = ("waiting",)  # SLA clocks stop while a ticket waits on someone else
DEFAULT_RULE = "triage_tickets"  # the access rule a status change needs unless a row says

PRIORITIES = {
    "P1": "P1 · Critical",
    "P2": "P2 · High",
    "P3": "P3 · Moderate",
    "P4": "P4 · Low",
}
