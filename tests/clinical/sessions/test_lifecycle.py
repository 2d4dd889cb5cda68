"""Session lifecycle: legal moves pass, illegal ones get 409 through PUT and transactions,
discharge happens only through the gate, and every rule issue is reported."""

from __future__ import annotations

from typing import Any

import pytest
from session_clinic import Clinic

from ehr.clinical.sessions.phases import (
    PARTICIPANT_SYSTEM,
    PHASE_STATUS,
    TRANSITIONS,
    phase_of,
    with_phase,
)


def test_session_shape(clinic: Clinic) -> None:
    enc = clinic.session("planned")
    assert enc["class"]["code"] == "AMB" and enc["status"] == "planned"
    assert phase_of(enc) == "planned"
    assert enc["episodeOfCare"] == [{"reference": f"EpisodeOfCare/{clinic.episode}"}]
    roles = {c["code"] for p in enc["participant"] for c in p["type"][0]["coding"]
             if c["system"] == PARTICIPANT_SYSTEM}
    assert roles == {"prescriber", "monitoring-nurse", "therapist"}


def test_happy_path_to_monitoring(clinic: Clinic) -> None:
    enc = clinic.session("planned")
    for phase in ("arrived", "dosing", "monitoring"):
        enc = clinic.move(enc, phase)
        assert phase_of(enc) == phase and enc["status"] == PHASE_STATUS[phase]


ILLEGAL = [(a, b) for a in PHASE_STATUS for b in PHASE_STATUS
           if a != b and b not in TRANSITIONS[a] and a in ("planned", "arrived", "dosing")
           and b != "discharged"]


def _reach(clinic: Clinic, phase: str) -> dict[str, Any]:
    enc = clinic.session("planned")
    path = {"planned": [], "arrived": ["arrived"], "dosing": ["arrived", "dosing"]}[phase]
    for step in path:
        enc = clinic.move(enc, step)
    return enc


@pytest.mark.parametrize(("start", "target"), ILLEGAL)
def test_illegal_transition_put_is_409(clinic: Clinic, start: str, target: str) -> None:
    enc = _reach(clinic, start)
    response = clinic.put(with_phase(enc, target), "nina")
    assert response.status_code == 409, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "Illegal session transition" in response.text
    assert phase_of(clinic.read(f"Encounter/{enc['id']}")) == start


def test_illegal_transition_in_transaction_is_409(clinic: Clinic) -> None:
    enc = clinic.session("planned")
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": with_phase(enc, "monitoring"),
         "request": {"method": "PUT", "url": f"Encounter/{enc['id']}"}}]}
    response = clinic.client.post("/fhir", json=bundle, headers=clinic.headers["doc"])
    assert response.status_code == 409, response.text
    assert "Illegal session transition" in response.text
    assert phase_of(clinic.read(f"Encounter/{enc['id']}")) == "planned"


def test_discharge_only_through_gate(clinic: Clinic) -> None:
    enc = _reach(clinic, "dosing")
    enc = clinic.move(enc, "monitoring")
    for who in ("doc", "nina"):
        response = clinic.put(with_phase(enc, "discharged"), who)
        assert response.status_code == 409, response.text
        assert "$discharge" in response.text
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": with_phase(enc, "discharged"),
         "request": {"method": "PUT", "url": f"Encounter/{enc['id']}"}}]}
    response = clinic.client.post("/fhir", json=bundle, headers=clinic.headers["doc"])
    assert response.status_code == 409, response.text


def test_create_must_start_planned_or_arrived(clinic: Clinic) -> None:
    enc = clinic.session("planned")
    body = {k: v for k, v in with_phase(enc, "dosing").items() if k not in ("id", "meta")}
    response = clinic.post(body)
    assert response.status_code == 409, response.text


def test_every_issue_reported_with_the_conflict(clinic: Clinic) -> None:
    enc = clinic.session("planned")
    bad = with_phase(enc, "monitoring")
    bad["class"] = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "IMP"}
    bad["status"] = "arrived"
    response = clinic.put(bad, "doc")
    assert response.status_code == 409, response.text
    text = response.text
    assert "Illegal session transition" in text
    assert "class AMB" in text
    assert "has status 'in-progress'" in text


def test_shape_errors_are_422(clinic: Clinic) -> None:
    enc = clinic.session("planned")
    other = clinic.client.post("/fhir/Patient", json={"resourceType": "Patient"},
                               headers=clinic.headers["system"]).json()["id"]
    foreign = clinic.client.post("/fhir/EpisodeOfCare", headers=clinic.headers["system"],
                                 json={"resourceType": "EpisodeOfCare", "status": "active",
                                       "patient": {"reference": f"Patient/{other}"}}).json()
    body = dict(enc, episodeOfCare=[{"reference": f"EpisodeOfCare/{foreign['id']}"}])
    response = clinic.put(body, "doc")
    assert response.status_code == 422, response.text
    assert "another patient's course" in response.text
    no_course = {k: v for k, v in enc.items() if k != "episodeOfCare"}
    response = clinic.put(no_course, "doc")
    assert response.status_code == 422 and "EpisodeOfCare" in response.text


def test_cancel_and_delete(clinic: Clinic) -> None:
    enc = clinic.session("planned")
    cancelled = clinic.move(enc, "cancelled")
    assert cancelled["status"] == "cancelled"
    response = clinic.put(with_phase(cancelled, "arrived"), "doc")
    assert response.status_code == 409
    dosing = _reach(clinic, "dosing")
    response = clinic.client.delete(f"/fhir/Encounter/{dosing['id']}",
                                    headers=clinic.headers["doc"])
    assert response.status_code == 409, response.text
    response = clinic.client.delete(f"/fhir/Encounter/{cancelled['id']}",
                                    headers=clinic.headers["doc"])
    assert response.status_code == 200, response.text


def test_other_encounters_untouched(clinic: Clinic) -> None:
    body = {"resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "IMP"},
            "subject": {"reference": f"Patient/{clinic.patient}"}}
    assert clinic.post(body).status_code == 201
