"""Drafts: written by their author, editable by the author alone, checked on every edit."""

from __future__ import annotations

import pytest
from note_clinic import Clinic

from ehr.clinical.notes.kinds import LOINC, NOTE_KIND_SYSTEM


def test_author_edits_own_draft(clinic: Clinic) -> None:
    rid = clinic.draft("tara")
    body = clinic.note_body(text="revised before signing", description="session 3")
    edited = clinic.put(rid, body, "tara")
    assert edited.status_code == 200, edited.text
    assert edited.json()["meta"]["versionId"] == "2"
    assert edited.json()["description"] == "session 3"


@pytest.mark.parametrize("who", ["theo", "doc", "nina", "system"])
def test_others_cannot_edit_or_delete_a_draft(clinic: Clinic, who: str) -> None:
    rid = clinic.draft("tara")
    put = clinic.put(rid, clinic.note_body(text="not mine"), who)
    assert put.status_code == 403, put.text
    delete = clinic.client.delete(f"/fhir/DocumentReference/{rid}", headers=clinic.headers[who])
    assert delete.status_code == 403, delete.text
    current = clinic.read(rid).json()
    assert current["meta"]["versionId"] == "1"


def test_author_may_discard_a_draft(clinic: Clinic) -> None:
    # Therapists hold no delete permission at all (policy table); a physician author does.
    rid = clinic.draft("doc")
    deleted = clinic.client.delete(f"/fhir/DocumentReference/{rid}",
                                   headers=clinic.headers["doc"])
    assert deleted.status_code == 200, deleted.text
    # Nobody else may take the id over again.
    again = clinic.put(rid, clinic.note_body(), "tara")
    assert again.status_code == 403, again.text
    assert clinic.put(rid, clinic.note_body(), "doc").status_code == 201


def test_a_note_starts_as_a_draft(clinic: Clinic) -> None:
    for bad in ({"docStatus": "final"}, {"status": "superseded"},
                {"authenticator": {"reference": "Practitioner/tara"}}):
        response = clinic.post(clinic.note_body(**bad), "tara")
        assert response.status_code == 422, (bad, response.text)
    missing = clinic.note_body()
    del missing["docStatus"]
    assert clinic.post(missing, "tara").status_code == 422


def test_every_problem_is_listed(clinic: Clinic) -> None:
    body = clinic.note_body("psychotherapy", docStatus="final", status="superseded")
    body["meta"] = {}
    body["type"] = {"coding": [{"system": NOTE_KIND_SYSTEM, "code": "psychotherapy"}]}
    response = clinic.post(body, "tara")
    assert response.status_code == 422
    expressions = {e for i in response.json()["issue"] for e in i.get("expression", [])}
    assert expressions >= {"DocumentReference.type", "DocumentReference.meta.security",
                           "DocumentReference.docStatus", "DocumentReference.status"}


def test_kind_and_labels_cannot_change_on_a_draft(clinic: Clinic) -> None:
    rid = clinic.draft("tara", "psychotherapy")
    relabelled = clinic.note_body("integration")
    response = clinic.put(rid, relabelled, "tara")
    assert response.status_code == 422
    text = response.text
    assert "kind cannot change" in text and "PSYTHPN" in text


def test_unknown_kind_and_missing_loinc_refused(clinic: Clinic) -> None:
    body = clinic.note_body()
    body["type"] = {"coding": [{"system": NOTE_KIND_SYSTEM, "code": "gossip"}]}
    assert clinic.post(body, "tara").status_code == 422
    body["type"] = {"coding": [{"system": NOTE_KIND_SYSTEM, "code": "integration"}]}
    assert clinic.post(body, "tara").status_code == 422
    body["type"]["coding"].append({"system": LOINC, "code": "34904-3"})
    assert clinic.post(body, "tara").status_code == 201


def test_other_document_references_are_not_notes(clinic: Clinic) -> None:
    # A scanned consent form is no note: no draft rules, no lock.
    scan = {"resourceType": "DocumentReference", "status": "current",
            "subject": {"reference": f"Patient/{clinic.patient}"},
            "type": {"text": "Scanned consent"},
            "content": [{"attachment": {"contentType": "application/pdf", "data": "JVBERg=="}}]}
    created = clinic.post(scan, "doc")
    assert created.status_code == 201
    rid = created.json()["id"]
    assert clinic.put(rid, {**scan, "description": "x"}, "theo").status_code == 200
