"""The vocabulary of tickets, as data: categories, teams, impact/urgency levels, sources.

Categories are the ones command centers triage by during a PACS go-live; each has the
team that owns it, so a breach lands on a team's list.
"""

CATEGORIES = {
    "viewer": "Viewer",
    "image_access": "Image access",
    "missing_images": "Missing/incorrect images",
    "integration": "Integration",
    "performance": "Performance",
    "training": "Training/how-to",
    "other": "Other",
}

TEAMS = {
    "service_desk": "Service desk",
    "pacs": "PACS & viewers",
    "migration": "Migration",
    "integration": "Integration",
    "infrastructure": "Infrastructure",
    "training": "Training",
}

CATEGORY_TEAM = {
    "viewer": "pacs",
    "image_access": "pacs",
    "missing_images": "migration",
    "integration": "integration",
    "performance": "infrastructure",
    "training": "training",
    "other": "service_desk",
}

# Alert sources that open tickets by themselves go to the team that can act on them.
SOURCE_TEAM = {
    "migration": "migration",
    "validation": "migration",
    "monitoring": "infrastructure",
    "integration": "integration",
    "inventory": "migration",
    "feedback": "pacs",
}

LEVELS = {"high": "High", "medium": "Medium", "low": "Low"}

SOURCES = {
    "staff": "Staff form",
    "api": "API",
    "migration": "Migration engine",
    "validation": "Validation",
    "monitoring": "Monitoring",
    "feedback": "Clinician feedback",
    "integration": "Integration",
    "inventory": "Inventory",
}

LINK_KINDS = {
    "study": "Study",
    "wave": "Wave",
    "integration": "Integration",
    "training_session": "Training session",
    "feedback": "Feedback",
}


def category_code(value):
    """A category code from a code or its label ("missing/incorrect images"); else "other"."""
    text = str(value or "").strip().lower()
    if text in CATEGORIES:
        return text
    for code, label in CATEGORIES.items():
        if label.lower() == text or label.lower().split("/")[0] == text:
            return code
    return "other"
