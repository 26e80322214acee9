"""What this app measures for others: `cutover_progress()`, read by the go/no-go screen and
the live-bound roadmap tasks (cutover/readiness.py, cutover/binding.py)."""


def cutover_progress():
    """{"stages", "signed_stages"}: integration cutover stages, and those whose gate is open
    (every checklist item signed and the go/no-go gate opened)."""
    from cutover.models import Stage

    return {
        "stages": Stage.objects.count(),
        "signed_stages": Stage.objects.filter(gate_opened_at__isnull=False).count(),
    }
