""" "Where is this study?": one answer per study from the inventory, the migration ledger,
validation, the desk's tickets and the forward ledger, by indexed lookups only (Study by
accession number, patient ID or Study UID; everything else by foreign key), and a live
C-FIND on demand on the engine's C-FIND code.

`locate(...)` returns plain dicts; the keys of `CONTRACT` are what `manage.py locate
--json` promises. Patient data appear only under "patient", and only when asked for
(`phi=True`, for a user holding `view_phi`, whose view the caller records).
"""

import time

from django.conf import settings
from pydicom.dataset import Dataset

from desk.models import Ticket
from desk.workflow import OPEN_STATUSES
from hybrid.models import Forward, ForwardState
from inventory.dicom import FindSession, PacsError, Peer, as_dataset
from inventory.models import Study
from migration.models import ACTIVE_STATES, Discrepancy, StoredInstance, StudyState, WaveStudy

CONTRACT = ("study", "on_legacy", "in_cloud", "verified", "wave", "state", "discrepancies")
STATES = {
    "only_legacy": "Only on the legacy PACS",
    "queued": "Queued for migration",
    "in_flight": "In flight to the cloud",
    "in_cloud": "In the cloud, verified",
    "discrepant": "In the cloud, with open discrepancies",
    "failed": "Failing (will retry)",
    "quarantined": "Quarantined",
    "from_cloud": "Arrived in the cloud first",
}
LEDGER_STATES = {
    StudyState.QUEUED: "queued",
    StudyState.RETRIEVING: "in_flight",
    StudyState.UPLOADING: "in_flight",
    StudyState.VERIFYING: "in_flight",
    StudyState.DONE: "in_cloud",
    StudyState.FAILED: "failed",
    StudyState.QUARANTINED: "quarantined",
}
KEYS = {"accession": "accession_number", "patient_id": "patient_id", "study": "study_uid"}


class LocateError(ValueError):
    pass


def search(key, value, limit=None):
    """Inventory studies whose `key` ("accession", "patient_id" or "study") is `value`."""
    if key not in KEYS:
        raise LocateError(f"search by one of {', '.join(KEYS)}")
    value = (value or "").strip()
    if not value or len(value) > 64:
        raise LocateError("a search value is 1 to 64 characters")
    limit = limit or settings.HYBRID_LOCATE_LIMIT
    rows = Study.objects.filter(**{KEYS[key]: value}).select_related("source")
    return list(rows.order_by("-id")[:limit])


def locate(key, value, phi=False, limit=None):
    """The answer for every study found (and, for a Study UID the inventory does not
    hold, what the forward ledger knows of it)."""
    studies = search(key, value, limit)
    answers = describe(studies, phi=phi)
    if key == "study" and not studies:
        answers += [_from_cloud(row) for row in Forward.objects.filter(study_uid=value.strip())]
    return answers


def describe(studies, phi=False):
    ids = [s.pk for s in studies]
    rows = list(
        WaveStudy.objects.filter(study_id__in=ids)
        .select_related("wave__destination")
        .order_by("-pk")
    )
    ledger_ids = [r.pk for r in rows]
    open_issues = list(
        Discrepancy.objects.filter(ledger_id__in=ledger_ids, status__in=Discrepancy.OPEN_STATES)
    )
    forwards = list(Forward.objects.filter(study_uid__in=[s.study_uid for s in studies]))
    tickets = _tickets(ids)
    answers = []
    for study in studies:
        own = [r for r in rows if r.study_id == study.pk]
        mine = {r.pk for r in own}
        issues = [d for d in open_issues if d.ledger_id in mine]
        copies = [f for f in forwards if f.study_uid == study.study_uid]
        answers.append(_answer(study, own, issues, copies, tickets.get(study.pk, []), phi))
    return answers


def _tickets(study_ids):
    found = {}
    if not study_ids:
        return found
    for ticket in Ticket.objects.filter(status__in=OPEN_STATUSES, links__study__in=study_ids):
        found.setdefault(ticket.links.get("study"), []).append(
            {"id": ticket.pk, "title": ticket.title, "priority": ticket.priority,
             "status": ticket.status}
        )  # fmt: skip
    return found


def _current(rows):
    """The row that says where the study stands: the latest one not cancelled."""
    return next((r for r in rows if r.state != StudyState.CANCELLED), None)


def _state(current, done, issues):
    if issues:
        return "discrepant"
    if current is None:
        return "in_cloud" if done else "only_legacy"
    return LEDGER_STATES.get(current.state, "only_legacy")


def _answer(study, rows, issues, forwards, tickets, phi):
    current = _current(rows)
    done = next((r for r in rows if r.state == StudyState.DONE), None)
    state = _state(current, done, issues)
    answer = {
        "study": study.study_uid,
        "source": study.source.name,
        "on_legacy": not study.vanished,
        "in_cloud": done is not None or bool(current and current.instances_stored),
        "verified": done is not None,
        "wave": current.wave.name if current else (done.wave.name if done else None),
        "wave_id": current.wave_id if current else (done.wave_id if done else None),
        "state": state,
        "state_label": STATES[state],
        "ledger_state": current.state if current else None,
        "discrepancies": [_discrepancy(d) for d in issues],
        "tickets": tickets,
        "manifest": _manifest(done),
        "history": [_history(r) for r in rows],
        "forwards": [_forward(f) for f in forwards],
        "inventory": {
            "id": study.pk,
            "study_date": study.study_date,
            "modalities": study.modalities,
            "instances": study.num_instances,
            "first_seen": study.first_seen,
            "last_seen": study.last_seen,
        },
        "can_expedite": current is None or current.state in (StudyState.QUEUED, StudyState.FAILED),
    }
    if phi:
        answer["patient"] = {
            "patient_id": study.patient_id,
            "patient_name": study.patient_name,
            "accession_number": study.accession_number,
        }
    return answer


def _from_cloud(forward):
    verified = forward.state == ForwardState.DONE
    return {
        "study": forward.study_uid,
        "source": forward.bridge.source.name,
        "on_legacy": verified,
        "in_cloud": True,
        "verified": verified,
        "wave": None,
        "wave_id": None,
        "state": "from_cloud",
        "state_label": STATES["from_cloud"],
        "ledger_state": None,
        "discrepancies": [],
        "tickets": [],
        "manifest": None,
        "history": [],
        "forwards": [_forward(forward)],
        "inventory": None,
        "can_expedite": False,
    }


def _discrepancy(d):
    return {"id": d.pk, "kind": d.kind, "status": d.status, "detail": d.detail,
            "wave": d.wave_id}  # fmt: skip


def _manifest(row):
    if row is None:
        return None
    return {
        "destination": row.wave.destination.name,
        "key": row.manifest_key,
        "sha256": row.manifest_sha256,
        "instances": StoredInstance.objects.filter(ledger=row).count(),
        "bytes": row.bytes_stored,
        "verified_at": row.finished_at,
    }


def _history(row):
    return {
        "ledger": row.pk,
        "wave": row.wave.name,
        "state": row.state,
        "active": row.state in ACTIVE_STATES,
        "attempts": row.attempts,
        "started_at": row.started_at,
        "finished_at": row.finished_at,
        "error": row.last_error[:300],
        "instances_stored": row.instances_stored,
    }


def _forward(row):
    return {
        "id": row.pk,
        "bridge": row.bridge.name,
        "state": row.state,
        "attempts": row.attempts,
        "first_seen": row.first_seen,
        "verified_at": row.verified_at,
        "lag_s": row.lag_s,
        "error": row.last_error,
    }


def contract(answers):
    """The `locate --json` objects: the contract's keys first, then the rest."""
    return [{**{k: a[k] for k in CONTRACT}, **a} for a in answers]


# --- live C-FIND on demand ---------------------------------------------------------------


def live_find(source, study_uid):
    """Ask the legacy PACS now (study-level C-FIND): {"ok", "found", "instances",
    "series", "modalities", "ms", "detail"} without PHI."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    for keyword in ("NumberOfStudyRelatedInstances", "NumberOfStudyRelatedSeries",
                    "ModalitiesInStudy"):  # fmt: skip
        setattr(query, keyword, "")
    started = time.perf_counter()
    answer = {"ok": False, "found": False, "instances": None, "series": None, "modalities": ""}
    try:
        with FindSession(Peer.of(source, timeout=settings.INVENTORY_ECHO_TIMEOUT)) as session:
            matches, _truncated = session.find(query)
    except PacsError as exc:
        return {**answer, "ms": _ms(started), "detail": str(exc)[:300]}
    answer.update(ok=True, found=bool(matches), ms=_ms(started))
    if matches:
        first = as_dataset(matches[0])
        answer.update(
            instances=_int(first.get("NumberOfStudyRelatedInstances")),
            series=_int(first.get("NumberOfStudyRelatedSeries")),
            modalities="\\".join(_values(first.get("ModalitiesInStudy"))),
        )
    answer["detail"] = (
        f"{source.ae_title} holds it" if matches else f"{source.ae_title} does not list it"
    )
    return answer


def _ms(started):
    return round((time.perf_counter() - started) * 1000, 1)


def _int(value):
    text = str(value or "").strip()
    return int(text) if text.isdigit() else None


def _values(value):
    if value in (None, ""):
        return []
    return [str(value)] if isinstance(value, str) else [str(v) for v in value]
