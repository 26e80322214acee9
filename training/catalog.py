"""The vocabularies of training and feedback, as data: viewers, kinds, severities, statuses.

Changing what a kind of feedback routes to, or which severity raises a ticket, is an
edit here, not in code.
"""

VIEWERS = {
    "cloud_diagnostic": "Cloud diagnostic viewer",
    "cloud_web": "Cloud web viewer (clinical)",
    "mobile": "Mobile viewer",
    "legacy": "Legacy PACS viewer",
    "other": "Other / not sure",
}

# category: the command center's ticket category; phrase: used in ticket titles (no PHI).
KINDS = {
    "image_quality": {"label": "Image quality", "category": "viewer", "phrase": "image quality"},
    "speed": {"label": "Speed", "category": "performance", "phrase": "slowness"},
    "missing": {
        "label": "Missing images or priors",
        "category": "missing/incorrect images",
        "phrase": "missing images or priors",
    },
    "tools": {"label": "Tools (measure, annotate…)", "category": "viewer", "phrase": "tools"},
    "hanging": {"label": "Hanging protocols", "category": "viewer", "phrase": "hanging protocols"},
    "access": {"label": "Access or login", "category": "image access", "phrase": "access"},
    "how_to": {
        "label": "How do I…?",
        "category": "training/how-to",
        "phrase": "a how-to question",
    },
    "other": {"label": "Something else", "category": "other", "phrase": "a problem"},
}

# ticket: raise an alert for the command center at once (impact/urgency set its priority).
SEVERITIES = {
    "blocks": {
        "label": "Blocks patient care",
        "hint": "I cannot read, report or treat without it",
        "ticket": True,
        "impact": "high",
        "urgency": "high",
    },
    "slows": {
        "label": "Slows me down",
        "hint": "I can work, but it costs time",
        "ticket": False,
    },
    "suggestion": {
        "label": "Suggestion",
        "hint": "An idea to make things better",
        "ticket": False,
    },
}

FEEDBACK_STATUSES = {
    "new": "Received",
    "triaged": "Triaged",
    "in_progress": "Being worked on",
    "resolved": "Resolved",
    "closed": "Closed",
}
# Which statuses a triager may move feedback to, from each status.
FEEDBACK_TRANSITIONS = {
    "new": {"triaged", "in_progress", "resolved", "closed"},
    "triaged": {"in_progress", "resolved", "closed"},
    "in_progress": {"triaged", "resolved", "closed"},
    "resolved": {"in_progress", "closed"},
    "closed": {"in_progress"},
}
OPEN_FEEDBACK = ("new", "triaged", "in_progress")

SCREENSHOT_FORMATS = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "GIF": ("gif", "image/gif"),
    "WEBP": ("webp", "image/webp"),
}
SCREENSHOT_MAX_BYTES = 5 * 1024 * 1024  # settings.TRAINING_SCREENSHOT_MAX_BYTES overrides
SCREENSHOT_MAX_PIXELS = 40_000_000

ENROLMENT_STATUSES = {
    "enrolled": "Enrolled",
    "waitlisted": "On the waitlist",
    "cancelled": "Cancelled",
}

SUPPORT_FALLBACK = {
    "name": "Command-center service desk",
    "role": "24/7 during cutover and go-live",
    "contact": "the service desk number on your department's go-live card",
}


def choices(table):
    """Django `choices` from a table: {key: label} or {key: {"label": ...}}."""
    return [
        (key, value["label"] if isinstance(value, dict) else value) for key, value in table.items()
    ]
