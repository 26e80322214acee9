"""Readiness by department against a hand-computed example, and the API that exposes it."""

from datetime import timedelta

import pytest
from django.urls import reverse

from tests.conftest import make_user
from training import actions
from training.models import Department, Enrolment, SignOff
from training.readiness import overall_readiness, readiness_by_department


@pytest.fixture
def hospital(clinician_in, module, new_session, cast):
    """Modules A (essentials) and B (hanging protocols); who attended and who is signed off:

    | person   | dept      | attended | signed off |
    | rad1     | Radiology | A B      | A B        |
    | rad2     | Radiology | A        | A          |
    | rad3     | Radiology | -        | -          |
    | ed1      | Emergency | A B      | A          |
    | ed2      | Emergency | B        | -          |
    | floater  | (none)    | A        | -          |
    | clinician| (none)    | -        | -          |  (the cast's clinician)
    Cardiology has nobody; a PM who attended A and an inactive radiologist do not count.
    """
    b = actions.create_module("Hanging protocols", items=["Choose a protocol"])
    past = timedelta(days=-3)
    session = {"A": new_session(starts_in=past), "B": new_session(starts_in=past, of=b)}
    modules = {"A": module, "B": b}
    people = {
        name: clinician_in(dept, name)
        for name, dept in [
            ("rad1", "Radiology"),
            ("rad2", "Radiology"),
            ("rad3", "Radiology"),
            ("ed1", "Emergency"),
            ("ed2", "Emergency"),
        ]
    }
    people["floater"] = make_user("floater", "clinician")
    people["gone"] = clinician_in("Radiology", "gone")
    people["gone"].is_active = False
    people["gone"].save()
    people["pm"] = cast.pm
    Department.objects.create(name="Cardiology")
    attended = {"rad1": "AB", "rad2": "A", "ed1": "AB", "ed2": "B", "floater": "A", "gone": "AB"}
    attended["pm"] = "A"
    for name, codes in attended.items():
        for code in codes:
            Enrolment.objects.create(
                session=session[code], user=people[name], status="enrolled", attended=True
            )
    signed = {"rad1": "AB", "rad2": "A", "ed1": "A", "gone": "AB"}
    for name, codes in signed.items():
        for code in codes:
            SignOff.objects.create(module=modules[code], clinician=people[name], signed_by=cast.pm)
    return modules


def row(department, clinicians, trained, signed_off):
    return {
        "department": department,
        "clinicians": clinicians,
        "trained": trained,
        "signed_off": signed_off,
        "share_trained": pytest.approx(trained / clinicians if clinicians else 0.0),
        "share_signed_off": pytest.approx(signed_off / clinicians if clinicians else 0.0),
    }


def test_readiness_over_all_modules_needs_every_module(hospital):
    assert readiness_by_department() == [
        row("Cardiology", 0, 0, 0),
        row("Emergency", 2, 1, 0),
        row("Radiology", 3, 1, 1),
        row("Unassigned", 2, 0, 0),
    ]


def test_readiness_for_one_module(hospital):
    assert readiness_by_department(hospital["A"]) == [
        row("Cardiology", 0, 0, 0),
        row("Emergency", 2, 1, 1),
        row("Radiology", 3, 2, 2),
        row("Unassigned", 2, 1, 0),
    ]
    assert readiness_by_department(hospital["B"].pk)[1] == row("Emergency", 2, 2, 0)


def test_overall_readiness_counts_every_clinician_once(hospital):
    assert overall_readiness() == {
        "clinicians": 7,
        "trained": 2,
        "signed_off": 1,
        "share_trained": pytest.approx(2 / 7),
        "share_signed_off": pytest.approx(1 / 7),
    }


def test_an_inactive_module_does_not_count(hospital):
    hospital["B"].active = False
    hospital["B"].save()
    assert overall_readiness()["trained"] == 4  # rad1, rad2, ed1, floater attended A


def test_no_modules_means_nobody_is_ready(db, clinician_in):
    clinician_in("Radiology", "rad1")
    assert overall_readiness() == {
        "clinicians": 1,
        "trained": 0,
        "signed_off": 0,
        "share_trained": 0.0,
        "share_signed_off": 0.0,
    }


def test_the_api_returns_the_same_figures(hospital, cast, client_for):
    client = client_for(cast.clinician)
    body = client.get(reverse("training:api-readiness")).json()
    assert body["overall"]["trained"] == 2 and body["overall"]["clinicians"] == 7
    url = reverse("training:api-readiness") + f"?module={hospital['A'].pk}"
    radiology = next(
        r for r in client.get(url).json()["departments"] if r["department"] == "Radiology"
    )
    assert radiology == {
        **row("Radiology", 3, 2, 2),
        "share_trained": 2 / 3,
        "share_signed_off": 2 / 3,
    }


def test_the_readiness_page_shows_a_chart_and_the_table(hospital, cast, client_for):
    page = client_for(cast.pm).get(reverse("training:readiness")).content.decode()
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page
    assert '<th scope="row">Radiology</th><td>3</td><td>1 (33%)</td><td>1 (33%)</td>' in page
