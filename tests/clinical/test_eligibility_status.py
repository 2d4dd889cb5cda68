"""The eligibility rules and ``current_eligibility`` against the stored record, on both
databases: each rule on both sides from a stored checklist, which checklist counts, the
flag-fed rule, and the status the dosing gate reads (none, current, expired at the instant)."""

from __future__ import annotations

from typing import Any

import pytest

from clinical.eligibility_clinic import (
    HARD_BP,
    REVIEW_BP,
    YES_NO_RULES,
    Clinic,
    checklist,
    make_clinic,
    parameters,
)
from ehr.clinical.eligibility import EligibilityStatus, current_eligibility, evaluate
from ehr.clinical.flags import build_flag
from ehr.db import unit_of_work

DAY_US = 86_400 * 1_000_000
T0 = 1_780_000_000_000_000


@pytest.fixture
def clinic(app: Any, client: Any, bearer_header: Any) -> Clinic:
    return make_clinic(app, client, bearer_header)


def new_patient(clinic: Clinic) -> str:
    response = clinic.client.post("/fhir/Patient", json={"resourceType": "Patient"},
                                  headers=clinic.headers["system"])
    assert response.status_code == 201
    return str(response.json()["id"])


def store(clinic: Clinic, body: dict[str, Any]) -> str:
    response = clinic.client.post(f"/fhir/{body['resourceType']}", json=body,
                                  headers=clinic.headers["system"])
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def fired(clinic: Clinic, patient: str) -> dict[str, str]:
    with unit_of_work(clinic.app.state.engine, write=False) as session:
        return {r.id: r.kind for r in evaluate(session, patient).fired}


def status(clinic: Clinic, now: int, patient: str | None = None) -> EligibilityStatus:
    with unit_of_work(clinic.app.state.engine, write=False) as session:
        return current_eligibility(session, patient or clinic.patient, now)


def test_each_rule_on_both_sides_from_the_stored_checklist(clinic: Clinic) -> None:
    for item, (rule, kind) in YES_NO_RULES.items():
        yes, no = new_patient(clinic), new_patient(clinic)
        store(clinic, checklist(yes, **{item.replace("-", "_"): True}))
        store(clinic, checklist(no, **{item.replace("-", "_"): False}))
        assert fired(clinic, yes) == {rule: kind}, item
        assert fired(clinic, no) == {}, item


@pytest.mark.parametrize(("systolic", "diastolic", "expected"), [
    (180, 100, {REVIEW_BP}), (181, 100, {HARD_BP, REVIEW_BP}), (180, 101, {HARD_BP, REVIEW_BP}),
    (140, 90, set()), (141, 90, {REVIEW_BP}), (140, 91, {REVIEW_BP}),
])
def test_blood_pressure_from_the_stored_numbers(clinic: Clinic, systolic: int, diastolic: int,
                                                expected: set[str]) -> None:
    store(clinic, checklist(clinic.patient, systolic=systolic, diastolic=diastolic))
    assert set(fired(clinic, clinic.patient)) == expected


def test_the_latest_completed_checklist_counts(clinic: Clinic) -> None:
    p = clinic.patient
    assert fired(clinic, p) == {}
    with unit_of_work(clinic.app.state.engine, write=False) as session:
        assert evaluate(session, p).checklist is None
    old = checklist(p, pregnancy=True)
    old["authored"] = "2026-01-01T09:00:00Z"
    store(clinic, old)
    assert fired(clinic, p) == {"pregnancy": "hard-stop"}
    newer = checklist(p, med_stimulant=True)
    newer["authored"] = "2026-02-01T09:00:00Z"
    newest_id = store(clinic, newer)
    # Not completed, or someone else's: neither counts.
    draft = checklist(p, status="in-progress", breastfeeding=True)
    draft["authored"] = "2026-03-01T09:00:00Z"
    store(clinic, draft)
    store(clinic, checklist(new_patient(clinic), current_psychosis=True))
    assert fired(clinic, p) == {"interacting-stimulant": "needs-review"}
    with unit_of_work(clinic.app.state.engine, write=False) as session:
        assert evaluate(session, p).checklist_ref == \
            f"QuestionnaireResponse/{newest_id}/_history/1"


def test_an_active_flag_of_this_patient_feeds_high_suicide_risk(clinic: Clinic) -> None:
    store(clinic, checklist(clinic.patient))
    other = new_patient(clinic)
    store(clinic, build_flag(other, "cssrs-high-risk", "C-SSRS high risk", blocks_dosing=True))
    assert fired(clinic, clinic.patient) == {}
    flag = build_flag(clinic.patient, "cssrs-high-risk", "C-SSRS high risk",
                      blocks_dosing=True)
    flag_id = store(clinic, flag)
    assert fired(clinic, clinic.patient) == {"high-suicide-risk": "needs-review"}
    with unit_of_work(clinic.app.state.engine, write=False) as session:
        assert evaluate(session, clinic.patient).flag_refs == [f"Flag/{flag_id}/_history/1"]
    reviewed = clinic.client.put(f"/fhir/Flag/{flag_id}", json={
        **flag, "id": flag_id, "status": "inactive"}, headers=clinic.headers["doc"])
    assert reviewed.status_code == 200, reviewed.text
    assert fired(clinic, clinic.patient) == {}


def test_current_eligibility_at_each_instant(clinic: Clinic) -> None:
    assert status(clinic, T0) == EligibilityStatus(
        "none", ("No eligibility decision has been recorded",))
    clinic.app.state.pipeline.clock = lambda: T0
    store(clinic, checklist(clinic.patient, systolic=150))
    response = clinic.decide("eligible", justification="repeat BP normal")
    assert response.status_code == 201, response.text
    decision = parameters(response.json())["observation"]
    ref = f"Observation/{decision['id']}/_history/1"
    expires = T0 + 90 * DAY_US
    assert status(clinic, T0) == EligibilityStatus(
        "eligible", ("Baseline blood pressure above 140/90 mm Hg",
                     "Physician's justification: repeat BP normal"), T0, expires, ref)
    assert status(clinic, expires - 1).status == "eligible"
    expired = status(clinic, expires)
    assert (expired.status, expired.decided_us, expired.expires_us, expired.decision) == \
        ("expired", T0, expires, ref)
    # A later decision supersedes; another patient is unaffected.
    clinic.app.state.pipeline.clock = lambda: T0 + DAY_US
    assert clinic.decide("needs-review").status_code == 201
    assert status(clinic, T0 + 2 * DAY_US).status == "needs-review"
    assert status(clinic, T0, new_patient(clinic)).status == "none"
