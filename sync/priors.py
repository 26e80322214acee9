"""Who is this patient on each legacy PACS, and which of their studies go first.

An HL7 message names the patient by identifiers with their assigning authority (PID-3).
On a PACS the patient is found by the same PatientID when the authorities agree (the
PACS's issuer is its sync setting; blank agrees with any), and by the legacy IDs that a
mapping profile's lookup table turns into this ID (the MRN changed at the move; the
profile's `issuer` rule names the new IDs' authority). Priors are ordered same modality
first, then most recent.
"""

from pydicom.tag import Tag

from inventory.models import PacsSource, Study
from migration import mapping
from migration.models import LookupTable, MappingProfile

PATIENT_ID = Tag(0x0010, 0x0020)


def find(appointment):
    """The patient's studies on every PACS, in the order they should be migrated."""
    identifiers = [(appointment.patient_id, appointment.issuer)]
    identifiers += [tuple(pair) for pair in appointment.other_ids if len(pair) == 2]
    studies = []
    for source in PacsSource.objects.all():
        legacy = set()
        for value, issuer in identifiers:
            legacy |= legacy_ids(source, value, issuer)
        if legacy:
            studies += Study.objects.filter(source=source, patient_id__in=legacy, vanished=False)
    return order(studies, appointment.modality)


def order(studies, modality=""):
    def key(study):
        same = bool(modality) and modality in study.modalities.split("\\")
        dated = study.study_date.toordinal() if study.study_date else 0
        return (not same, -dated, -study.pk)

    return sorted(studies, key=key)


def legacy_ids(source, value, issuer=""):
    """The PatientIDs this PACS may hold for (value, issuer)."""
    if not value:
        return set()
    found = set()
    own = getattr(getattr(source, "sync", None), "issuer", "")
    if not issuer or not own or issuer == own:
        found.add(value)
    for table, target_issuer in _tables(source):
        if issuer and target_issuer and issuer != target_issuer:
            continue
        found |= {legacy for legacy, new in table.items() if new == value}
    return found


def _tables(source):
    """[(lookup table entries, issuer of the mapped IDs)] of the profiles that map this
    PACS's PatientIDs (its sync profile and its waves')."""
    profiles = MappingProfile.objects.filter(waves__source=source)
    sync = getattr(source, "sync", None)
    ids = set(profiles.values_list("pk", flat=True))
    if sync is not None and sync.profile_id:
        ids.add(sync.profile_id)
    found = []
    for profile in MappingProfile.objects.filter(pk__in=ids):
        issuer = next((r["value"] for r in profile.rules if r.get("op") == "issuer"), "")
        for rule in profile.rules:
            if rule.get("op") == "map" and _is_patient_id(rule.get("tag", "")):
                table = LookupTable.objects.filter(name=rule.get("table")).first()
                if table is not None:
                    found.append((table.entries, str(issuer)))
    return found


def _is_patient_id(text):
    try:
        return mapping.parse_tag(text) == PATIENT_ID
    except Exception:
        return False
