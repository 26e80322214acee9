"""Render review: a reviewer signs the side-by-side thumbnails of one migrated instance.

A signature is a `RenderReview` row (who, when; django-auditlog records its creation).
"Problem" also opens a `render` discrepancy, so the wave is not validated until someone
deals with it. Events go to `validation.<wave name>` (data only: other regions of the
validation pages listen there) and to `validation.reviews.<ledger id>` with the rendered
row for the study's review page.
"""

from django.db import transaction
from django.template.loader import render_to_string

from core.alerts import raise_alert
from core.events import publish
from migration import discrepancies, readback
from migration.actions import ActionError
from migration.models import Discrepancy, RenderReview

Verdict = RenderReview.Verdict


def sign_review(ledger_row, sop_uid, verdict, reviewer, note=""):
    """Record `reviewer`'s verdict on one instance of `ledger_row`; returns the review.
    A problem needs a note saying what is wrong."""
    note = (note or "").strip()[:500]
    if verdict not in Verdict.values:
        raise ActionError(f"unknown verdict {verdict!r}: {' or '.join(Verdict.values)}")
    if verdict == Verdict.PROBLEM and not note:
        raise ActionError("say what is wrong with the rendering (a note is required)")
    stored = readback.stored_instances(ledger_row).get(sop_uid)
    if stored is None:
        raise ActionError(f"instance {sop_uid} is not part of this migrated study")
    with transaction.atomic():
        review = RenderReview.objects.create(
            ledger=ledger_row, sop_uid=sop_uid, verdict=verdict, note=note, reviewer=reviewer
        )
        found = _open_render_discrepancy(review, stored) if verdict == Verdict.PROBLEM else None
    if verdict == Verdict.OK:
        _clear_render_problems(review)
    _publish(review, found)
    return review


def _clear_render_problems(review):
    """A later "renders correctly" on the same instance settles earlier render problems."""
    flagged = Discrepancy.objects.filter(
        ledger=review.ledger, sop_uid=review.sop_uid, kind=Discrepancy.Kind.RENDER,
        status__in=Discrepancy.OPEN_STATES,
    )  # fmt: skip
    for discrepancy in flagged:
        discrepancies.mark_fixed(discrepancy, review.reviewer)


def _open_render_discrepancy(review, stored):
    row = review.ledger
    found = Discrepancy.objects.create(
        wave=row.wave, ledger=row, study_uid=row.study.study_uid, series_uid=stored.series_uid,
        sop_uid=review.sop_uid, kind=Discrepancy.Kind.RENDER, subject=f"review {review.pk}",
        detail=f"render review {review.pk} by {review.reviewer.get_username()}: {review.note}",
    )  # fmt: skip
    raise_alert(
        "validation",
        cause=f"validation.wave-{row.wave_id}.render",
        title=f"Wave {row.wave.name}: a reviewer flagged a render problem",
        category="missing/incorrect images",
        impact="medium",
        urgency="medium",
        detail=f"ledger {row.pk}, instance {review.sop_uid}, render review {review.pk}",
        links={"wave": row.wave_id, "study": row.study_id},
    )
    return found


def review_payload(review):
    return {
        "id": review.pk,
        "ledger": review.ledger_id,
        "instance": review.sop_uid,
        "verdict": review.verdict,
        "reviewer": review.reviewer.get_username(),
        "signed_at": review.signed_at,
    }


def _publish(review, found):
    wave = review.ledger.wave
    payload = review_payload(review)
    publish(f"validation.{wave.name}", {"wave": wave.pk, "name": wave.name, "review": payload})
    html = render_to_string("migration/validation/_review.html", {"review": review})
    publish(f"validation.reviews.{review.ledger_id}", payload, html=html)
    if found is not None:
        discrepancies.publish_wave(wave)


def latest_reviews(ledger_ids):
    """{ledger id: {SOP UID: latest review}} of some studies, in one query."""
    latest = {}
    found = RenderReview.objects.filter(ledger__in=list(ledger_ids)).select_related("reviewer")
    for review in found.order_by("signed_at", "pk"):
        latest.setdefault(review.ledger_id, {})[review.sop_uid] = review
    return latest
