"""The command center's configuration tables, seeded from the defaults in code."""

from django.db import migrations

from desk.priority import DEFAULT_MATRIX
from desk.sla import DEFAULT_TARGETS
from desk.workflow import DEFAULT_TRANSITIONS

POLICIES = [
    # (priority, name, repeat_times, repeat_after_minutes, [(order, after, condition, target)])
    (
        "P1",
        "P1: page the lead until acknowledged",
        3,
        15,
        [(1, 5, "unacknowledged", "lead"), (2, 120, "unresolved", "lead")],
    ),
    ("P2", "P2: tell the lead", 1, 30, [(1, 20, "unacknowledged", "lead")]),
]

MONITORS = [
    # (name, metric, comparison, threshold, impact, urgency)
    ("No Celery worker online", "workers_online", "below", 1, "high", "high"),
    ("Queue backlog", "queue_depth", "above", 1000, "medium", "medium"),
    ("Task failures", "failures_per_minute", "above", 10, "high", "medium"),
    ("Legacy PACS not answering", "pacs_down", "above", 0, "high", "high"),
    ("Legacy PACS slow", "pacs_response_ms", "above", 2000, "medium", "medium"),
    ("Destination errors", "destination_errors", "above", 0, "high", "medium"),
]


def seed(apps, schema_editor):
    model = apps.get_model
    for (impact, urgency), priority in DEFAULT_MATRIX.items():
        model("core", "PriorityRule").objects.get_or_create(
            impact=impact, urgency=urgency, defaults={"priority": priority}
        )
    for (source, target), rule in DEFAULT_TRANSITIONS.items():
        model("core", "Transition").objects.get_or_create(
            source=source, target=target, defaults={"rule": rule}
        )
    for priority, minutes in DEFAULT_TARGETS.items():
        model("core", "SlaTarget").objects.get_or_create(
            priority=priority,
            defaults={
                "acknowledge_minutes": minutes["acknowledge"],
                "resolve_minutes": minutes["resolve"],
            },
        )
    seed_policies(model)
    for name, metric, comparison, threshold, impact, urgency in MONITORS:
        model("core", "Monitor").objects.get_or_create(
            name=name,
            defaults={
                "metric": metric,
                "comparison": comparison,
                "threshold": threshold,
                "impact": impact,
                "urgency": urgency,
            },
        )


def seed_policies(model):
    for priority, name, repeat, every, steps in POLICIES:
        policy, created = model("core", "EscalationPolicy").objects.get_or_create(
            priority=priority,
            defaults={"name": name, "repeat_times": repeat, "repeat_after_minutes": every},
        )
        if created:
            for order, after, condition, target in steps:
                policy.steps.create(
                    order=order, after_minutes=after, condition=condition, target=target
                )


class Migration(migrations.Migration):
    replaces = [("commandcenter", "0004_command_center_defaults")]  # the app was called commandcenter before the split
    dependencies = [("core", "0003_command_center")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
