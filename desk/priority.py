"""Impact × urgency → priority, from a matrix that is data.

The defaults follow the ITIL matrix; the live matrix is the `PriorityRule` table (seeded
from DEFAULT_MATRIX, editable in the admin), so a hospital can tune it without a release.
"""

PRIORITIES = {
    "P1": "P1 · Critical",
    "P2": "P2 · High",
    "P3": "P3 · Moderate",
    "P4": "P4 · Low",
}

DEFAULT_MATRIX = {
    ("high", "high"): "P1",
    ("high", "medium"): "P2",
    ("medium", "high"): "P2",
    ("high", "low"): "P3",
    ("medium", "medium"): "P3",
    ("low", "high"): "P3",
    ("medium", "low"): "P4",
    ("low", "medium"): "P4",
    ("low", "low"): "P4",
}


def matrix():
    """The configured matrix as {(impact, urgency): priority}, defaults where a cell is unset."""
    from desk.models import PriorityRule

    configured = {(r.impact, r.urgency): r.priority for r in PriorityRule.objects.all()}
    return {**DEFAULT_MATRIX, **configured}


def priority_for(impact, urgency, table=None):
    """The priority of an impact and an urgency ("high", "medium", "low")."""
    table = matrix() if table is None else table
    try:
        return table[(impact, urgency)]
    except KeyError:
        raise ValueError(f"no priority for impact {impact!r} and urgency {urgency!r}") from None


def rank(priority):
    """1 for P1 … 4 for P4: the board sorts by it."""
    return int(priority[1:])
