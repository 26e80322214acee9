"""Live-bound tasks: a task names a measure (and its parameters) and its % complete
follows that measure. Registry as data; each entry turns a measure into a fraction 0..1.
"""

from cutover import measures as cutover_measures
from migration import measures as migration_measures
from training import readiness as training_readiness


def _share(part, whole):
    return None if not whole else max(0.0, min(1.0, part / whole))


def _waves(params):
    waves = params.get("waves") or None
    progress = migration_measures.wave_progress(waves)
    return _share(progress["done"], progress["total"])


def _validated(params):
    summary = migration_measures.validation_summary()
    return _share(summary["validated_waves"], summary["waves"])


def _trained(params):
    department = params.get("department")
    if not department:
        overall = training_readiness.overall_readiness()
        return _share(overall["trained"], overall["clinicians"])
    rows = training_readiness.readiness_by_department()
    row = next((r for r in rows if r["department"] == department), None)
    return None if row is None else _share(row["trained"], row["clinicians"])


def _stages(params):
    progress = cutover_measures.cutover_progress()
    return _share(progress["signed_stages"], progress["stages"])


MEASURES = {
    "migration.waves": {
        "label": "Share of studies migrated and verified (chosen waves; all when none)",
        "params": "waves: list of wave ids",
        "compute": _waves,
    },
    "validation.waves": {
        "label": "Share of validated waves",
        "params": "",
        "compute": _validated,
    },
    "training.clinicians": {
        "label": "Share of clinicians trained (one department, or all)",
        "params": "department: name",
        "compute": _trained,
    },
    "cutover.stages": {
        "label": "Integration cutover stages signed off",
        "params": "",
        "compute": _stages,
    },
}
CHOICES = [("", "— not bound —")] + [(key, m["label"]) for key, m in MEASURES.items()]


def percent(measure, params=None):
    """Whole percent for a bound task, or None when the measure is unknown or has nothing to
    count yet. A measure that raises is a bug and raises here."""
    entry = MEASURES.get(measure)
    if entry is None:
        return None
    share = entry["compute"](params or {})
    return None if share is None else int(share * 100 + 1e-9)
