"""Routing rules of the hybrid period, as data: in which cutover stage an integration of a
legacy PACS still needs the studies that reach the cloud first.

A plan's current stage is its first stage whose go/no-go gate is still closed (a gate
opens when its stage is done). While any integration of the PACS is in one of
FORWARD_STAGES, the PACS's bridges forward; before (prepare: nothing reads from the cloud
yet, new studies still arrive at the legacy PACS) and after (disable_legacy: legacy
consumers are being switched off) they do not.

Loops: a study the legacy PACS already holds (in the inventory) came from there and is
never sent back; a study forwarded once has its row in the forward ledger and is never
forwarded again (the unique constraint says so too).
"""

from cutover.stages import label
from hybrid.models import Forward
from inventory.models import Integration, Study

FORWARD_STAGES = {
    "parallel_run": "legacy and cloud consumers read side by side",
    "switch": "consumers are being re-pointed; the legacy side must stay complete",
    "verify": "the bidirectional flow is being verified (the round-trip probe needs it)",
}


def current_stage(plan):
    """The kind of the plan's first stage with a closed gate (None: every gate is open)."""
    stage = plan.stages.filter(gate_opened_at__isnull=True).order_by("order").first()
    return stage.kind if stage else None


def consumers(source):
    """[(integration, stage kind)] of the PACS's integrations whose cutover stage needs
    forwarding."""
    found = []
    for integration in Integration.objects.filter(source=source).select_related("cutover_plan"):
        plan = getattr(integration, "cutover_plan", None)
        stage = current_stage(plan) if plan else None
        if stage in FORWARD_STAGES:
            found.append((integration, stage))
    return found


def route(bridge):
    """{"forward": bool, "why": words} for a bridge now."""
    if not bridge.enabled:
        return {"forward": False, "why": "the bridge is disabled"}
    needing = consumers(bridge.source)
    if not needing:
        return {
            "forward": False,
            "why": "no integration of this PACS is in "
            + ", ".join(label(kind) for kind in FORWARD_STAGES),
        }
    names = "; ".join(f"{i.name} ({label(kind)})" for i, kind in needing)
    return {"forward": True, "why": f"legacy consumers still need new studies: {names}"}


def came_from_legacy(source, study_uids):
    """The UIDs among `study_uids` that the legacy PACS holds already (its inventory)."""
    return set(
        Study.objects.filter(source=source, study_uid__in=list(study_uids)).values_list(
            "study_uid", flat=True
        )
    )


def came_from_cloud(study_uid):
    """Was this study forwarded from the cloud to a legacy PACS?"""
    return bool(forwarded_from_cloud([study_uid]))


def forwarded_from_cloud(study_uids):
    """Which of these studies the bridge forwarded from the cloud to a legacy PACS: the
    sync of that PACS finds them there and must not send them back (no loop)."""
    return set(Forward.objects.filter(study_uid__in=study_uids).values_list("study_uid", flat=True))
