"""An ineligible or over-maximum dose is impossible through every write path."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from clinical.dosing.world import FHIR, MINUTE, Clinic, errors
from ehr.context import SYSTEM, RequestContext
from ehr.fhir.loader import LoadFailed, load_file

MA = "MedicationAdministration"


def _over(clinic: Clinic, weight: str, now: int) -> dict:
    return clinic.dose(140, now, weight=weight, per_kg=2.0)


def _count(clinic: Clinic) -> int:
    bundle = clinic.http.get(f"/fhir/{MA}?patient={clinic.patient}&_summary=count").json()
    return int(bundle["total"])


def test_put_creating_a_dose_runs_the_gates(clinic: Clinic, ready: str, now: int) -> None:
    rid = str(uuid.uuid4())
    response = clinic.http.put(f"/fhir/{MA}/{rid}", json={**_over(clinic, ready, now), "id": rid},
                               headers={**FHIR, **clinic.users["nurse"]})
    assert response.status_code == 422, response.text
    assert any("above the protocol maximum" in e for e in errors(response))
    ok = clinic.http.put(f"/fhir/{MA}/{rid}", headers={**FHIR, **clinic.users["nurse"]},
                         json={**clinic.dose(35, now, weight=ready, per_kg=0.5), "id": rid})
    assert ok.status_code == 201, ok.text


def test_conditional_update_runs_the_gates(clinic: Clinic, ready: str, now: int) -> None:
    body = {**_over(clinic, ready, now), "identifier": [{"system": "urn:x", "value": "d1"}]}
    response = clinic.http.put(f"/fhir/{MA}?identifier=urn:x|d1", json=body,
                               headers={**FHIR, **clinic.users["nurse"]})
    assert response.status_code == 422, response.text
    assert _count(clinic) == 0


def test_amending_what_defines_a_dose_is_refused(clinic: Clinic, ready: str, now: int) -> None:
    before = clinic.balance()
    body = clinic.dose(35, now, weight=ready, per_kg=0.5)
    rid = clinic.create(body, as_role="nurse")
    nurse = {**FHIR, **clinic.users["nurse"]}
    stored = clinic.http.get(f"/fhir/{MA}/{rid}").json()
    for change in ({"dosage": {**stored["dosage"], "dose": {**stored["dosage"]["dose"],
                                                             "value": 140}}},
                   {"contained": [{**stored["contained"][0], "batch": {"lotNumber": "OTHER"}}]},
                   {"subject": {"reference": f"Patient/{clinic.make_patient()}"}},
                   {"effectivePeriod": {"start": "2020-01-01T00:00:00Z"}}):
        response = clinic.http.put(f"/fhir/{MA}/{rid}", json={**stored, **change}, headers=nurse)
        assert response.status_code == 422, response.text
        assert any("cannot change" in e for e in errors(response)), errors(response)
    # What may change: the end of the infusion, notes, then entered-in-error (final).
    finished = {**stored, "effectivePeriod": {**stored["effectivePeriod"],
                                              "end": stored["effectivePeriod"]["start"]},
                "note": [{"text": "infusion ran 40 minutes"}]}
    assert clinic.http.put(f"/fhir/{MA}/{rid}", json=finished, headers=nurse).status_code == 200
    gone = {**finished, "status": "entered-in-error"}
    response = clinic.http.put(f"/fhir/{MA}/{rid}", json=gone, headers=nurse)
    assert response.status_code == 200, response.text
    back = {**finished, "status": "completed"}
    response = clinic.http.put(f"/fhir/{MA}/{rid}", json=back, headers=nurse)
    assert response.status_code == 422, response.text
    # One draw only: amendments never touch the ledger.
    assert clinic.balance() == before - Decimal(35)


def test_not_done_cannot_become_given(clinic: Clinic, ready: str, now: int) -> None:
    body = _over(clinic, ready, now)
    rid = clinic.create({**body, "status": "not-done"}, as_role="nurse")
    response = clinic.http.put(f"/fhir/{MA}/{rid}", json={**body, "id": rid},
                               headers={**FHIR, **clinic.users["nurse"]})
    assert response.status_code == 422, response.text


def test_another_medication_cannot_become_ketamine(clinic: Clinic, ready: str,
                                                   now: int) -> None:
    body = _over(clinic, ready, now)
    harmless = {**body, "contained": [], "medicationCodeableConcept": {"text": "ondansetron"}}
    del harmless["medicationReference"]
    rid = clinic.create(harmless, as_role="nurse")
    response = clinic.http.put(f"/fhir/{MA}/{rid}", json={**body, "id": rid},
                               headers={**FHIR, **clinic.users["nurse"]})
    assert response.status_code == 422, response.text


def test_uncoded_ketamine_is_still_gated(clinic: Clinic, ready: str, now: int) -> None:
    body = _over(clinic, ready, now)
    sneaky = {**body, "contained": [], "medicationCodeableConcept": {"text": "Ketamine HCl"}}
    del sneaky["medicationReference"]
    response = clinic.post(sneaky, as_role="nurse", expect=422)
    assert any("RxNorm" in e for e in errors(response))


def test_a_dose_is_never_deleted(clinic: Clinic, ready: str, now: int) -> None:
    rid = clinic.create(clinic.dose(35, now, weight=ready, per_kg=0.5), as_role="nurse")
    response = clinic.http.delete(f"/fhir/{MA}/{rid}",
                                  headers={**FHIR, **clinic.users["physician"]})
    assert response.status_code == 422, response.text
    assert clinic.http.get(f"/fhir/{MA}/{rid}").status_code == 200


def _bundle(kind: str, *resources: dict) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": [
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r,
         "request": {"method": "POST", "url": r["resourceType"]}} for r in resources]}


def test_transaction_with_an_over_maximum_dose_stores_nothing(clinic: Clinic, ready: str,
                                                              now: int) -> None:
    before = clinic.balance()
    good = clinic.dose(35, now - 2 * MINUTE, weight=ready, per_kg=0.5)
    note = {"resourceType": "Observation", "status": "final", "code": {"text": "note"},
            "subject": {"reference": f"Patient/{clinic.patient}"}}
    response = clinic.http.post("/fhir", json=_bundle("transaction", note, good,
                                                      _over(clinic, ready, now)),
                                headers={**FHIR, **clinic.users["nurse"]})
    assert response.status_code == 422, response.text
    assert any("above the protocol maximum" in e for e in errors(response))
    assert _count(clinic) == 0
    assert clinic.balance() == before


def test_transaction_carrying_vitals_and_dose_together(clinic: Clinic, now: int) -> None:
    from clinical.dosing.world import _observation

    weight = clinic.weight(70, now - 60 * MINUTE)
    subject = {"reference": f"Patient/{clinic.patient}"}
    bp = _observation(subject, "85354-9", now - 5 * MINUTE, components=[
        ("8480-6", 120, "mm[Hg]"), ("8462-4", 80, "mm[Hg]")])
    hr = _observation(subject, "8867-4", now - 5 * MINUTE, value=(70, "/min"))
    dose = clinic.dose(35, now, weight=weight, per_kg=0.5)
    response = clinic.http.post("/fhir", json=_bundle("transaction", bp, hr, dose),
                                headers={**FHIR, **clinic.users["nurse"]})
    assert response.status_code == 200, response.text
    assert _count(clinic) == 1


def test_batch_refuses_the_bad_entry_only(clinic: Clinic, ready: str, now: int) -> None:
    before = clinic.balance()
    response = clinic.http.post("/fhir", json=_bundle(
        "batch", _over(clinic, ready, now), clinic.dose(35, now, weight=ready, per_kg=0.5)),
        headers={**FHIR, **clinic.users["nurse"]})
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses[0].startswith("422") and statuses[1].startswith("201"), statuses
    assert _count(clinic) == 1
    assert clinic.balance() == before - Decimal(35)


def test_ehr_load_runs_the_gates(clinic: Clinic, ready: str, now: int,
                                 tmp_path: Path) -> None:
    path = tmp_path / "doses.ndjson"
    path.write_text(json.dumps(_over(clinic, ready, now)) + "\n")
    pipeline = clinic.app.state.pipeline
    with pytest.raises(LoadFailed) as failed:
        load_file(clinic.engine, pipeline, RequestContext(actor=SYSTEM), path)
    assert "above the protocol maximum" in str(failed.value.problem)
    assert _count(clinic) == 0
