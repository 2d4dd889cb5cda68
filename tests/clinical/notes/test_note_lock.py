"""A signed note is locked on every write path; addenda and entered-in-error keep it whole."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from note_clinic import NOTE_TEXT, Clinic

from ehr.clinical.notes.signing import ENTERED_IN_ERROR_REASON


def _changed(clinic: Clinic, rid: str) -> dict[str, Any]:
    current = clinic.read(rid).json()
    current["content"][0]["attachment"]["data"] = base64.b64encode(b"rewritten").decode()
    return current


def test_put_refused(clinic: Clinic) -> None:
    rid = clinic.signed()
    for who in ("tara", "doc", "system"):
        response = clinic.put(rid, _changed(clinic, rid), who)
        assert response.status_code == 409, (who, response.text)
        assert "addendum" in response.text
    # Not even back to draft by its author.
    draft = {**clinic.read(rid).json(), "docStatus": "preliminary"}
    draft.pop("authenticator")
    assert clinic.put(rid, draft, "tara").status_code == 409
    assert clinic.read(rid).json()["meta"]["versionId"] == "2"


def test_conditional_put_refused(clinic: Clinic) -> None:
    rid = clinic.signed()
    response = clinic.client.put(f"/fhir/DocumentReference?_id={rid}",
                                 json=_changed(clinic, rid), headers=clinic.headers["tara"])
    assert response.status_code == 409, response.text


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_bundle_entries_refused(clinic: Clinic, kind: str) -> None:
    rid = clinic.signed()
    for entry in ({"resource": _changed(clinic, rid),
                   "request": {"method": "PUT", "url": f"DocumentReference/{rid}"}},
                  {"resource": _changed(clinic, rid),
                   "request": {"method": "PUT", "url": f"DocumentReference?_id={rid}"}},
                  {"request": {"method": "DELETE", "url": f"DocumentReference/{rid}"}}):
        bundle = {"resourceType": "Bundle", "type": kind, "entry": [entry]}
        # A physician: therapists may not delete anything in the first place.
        response = clinic.client.post("/fhir", json=bundle, headers=clinic.headers["doc"])
        if kind == "transaction":
            assert response.status_code == 409, response.text
        else:
            assert response.status_code == 200, response.text
            assert response.json()["entry"][0]["response"]["status"][:3] == "409"
    assert clinic.read(rid).json()["meta"]["versionId"] == "2"


def test_delete_refused(clinic: Clinic) -> None:
    rid = clinic.signed()
    for who in ("doc", "system"):
        response = clinic.client.delete(f"/fhir/DocumentReference/{rid}",
                                        headers=clinic.headers[who])
        assert response.status_code == 409, (who, response.text)
    conditional = clinic.client.delete(f"/fhir/DocumentReference?_id={rid}",
                                       headers=clinic.headers["doc"])
    assert conditional.status_code == 409
    assert clinic.read(rid).status_code == 200


def test_patch_not_a_way_around(clinic: Clinic) -> None:
    rid = clinic.signed()
    response = clinic.client.patch(f"/fhir/DocumentReference/{rid}", json=[],
                                   headers=clinic.headers["tara"])
    assert response.status_code == 405


def test_entered_in_error_keeps_the_original(clinic: Clinic) -> None:
    rid = clinic.signed()
    missing = clinic.operation(rid, "entered-in-error", "tara")
    assert missing.status_code == 400
    nurse = clinic.operation(rid, "entered-in-error", "nina", reason="wrong patient")
    assert nurse.status_code == 403, nurse.text
    done = clinic.operation(rid, "entered-in-error", "tara", reason="written for wrong patient")
    assert done.status_code == 200, done.text
    params = {p["name"]: p["resource"] for p in done.json()["parameter"]}
    note, provenance = params["note"], params["provenance"]
    assert note["status"] == "entered-in-error"
    assert {"url": ENTERED_IN_ERROR_REASON, "valueString": "written for wrong patient"} in \
        note["extension"]
    assert note["docStatus"] == "final"  # still the signed content
    assert provenance["target"][0]["reference"] == f"DocumentReference/{rid}/_history/3"
    assert provenance["activity"]["coding"][0]["code"] == "NULLIFY"
    assert provenance["reason"] == [{"text": "written for wrong patient"}]
    # The original stays readable: current version, the signed version, and history.
    current = clinic.read(rid, "doc").json()
    assert base64.b64decode(current["content"][0]["attachment"]["data"]).decode() == NOTE_TEXT
    signed = clinic.client.get(f"/fhir/DocumentReference/{rid}/_history/2",
                               headers=clinic.headers["doc"]).json()
    assert signed["status"] == "current" and signed["docStatus"] == "final"
    history = clinic.client.get(f"/fhir/DocumentReference/{rid}/_history",
                                headers=clinic.headers["doc"]).json()
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["3", "2", "1"]
    # Withdrawn is final too: no second withdrawal, no edit, no addendum.
    again = clinic.operation(rid, "entered-in-error", "tara", reason="again")
    assert again.status_code == 409
    assert clinic.put(rid, _changed(clinic, rid), "tara").status_code == 409
    assert clinic.post(clinic.note_body(appends=rid), "tara").status_code == 422


def test_physician_may_withdraw_signed_note_but_not_a_draft(clinic: Clinic) -> None:
    draft = clinic.draft("tara")
    assert clinic.operation(draft, "entered-in-error", "doc",
                            reason="duplicate").status_code == 403
    assert clinic.operation(draft, "entered-in-error", "tara",
                            reason="duplicate").status_code == 200
    rid = clinic.signed()
    assert clinic.operation(rid, "entered-in-error", "doc",
                            reason="duplicate").status_code == 200


def test_entered_in_error_only_through_the_operation(clinic: Clinic) -> None:
    from ehr.clinical.notes.signing import withdrawn_form

    rid = clinic.signed()
    crafted = withdrawn_form(clinic.read(rid).json(), "sneaky")
    assert clinic.put(rid, crafted, "tara").status_code == 409


def test_addendum_to_signed_note(clinic: Clinic) -> None:
    rid = clinic.signed("tara")
    by_author = clinic.draft("tara", appends=rid, text="addendum: phone call next day")
    by_colleague = clinic.draft("doc", appends=rid, text="addendum: medication reviewed")
    # An addendum is a note of its own: a draft, editable by its author only, then signed.
    assert clinic.put(by_colleague, clinic.note_body(appends=rid), "tara").status_code == 403
    assert clinic.sign(by_colleague, "doc").status_code == 200
    assert clinic.put(by_colleague, clinic.note_body(appends=rid), "doc").status_code == 409
    found = clinic.client.get(f"/fhir/DocumentReference?relatesto=DocumentReference/{rid}",
                              headers=clinic.headers["theo"]).json()
    assert {e["resource"]["id"] for e in found["entry"]} == {by_author, by_colleague}
    original = clinic.read(rid, "theo").json()
    assert original["meta"]["versionId"] == "2"  # untouched by its addenda


def test_addendum_refusals(clinic: Clinic) -> None:
    draft = clinic.draft("tara")
    assert clinic.post(clinic.note_body(appends=draft), "tara").status_code == 422
    assert clinic.post(clinic.note_body(appends="nope"), "tara").status_code == 422
    rid = clinic.signed("tara")
    other = clinic.client.post("/fhir/Patient", json={"resourceType": "Patient"},
                               headers=clinic.headers["system"]).json()["id"]
    wrong = clinic.note_body(appends=rid)
    wrong["subject"] = {"reference": f"Patient/{other}"}
    assert clinic.client.post("/fhir/DocumentReference", json=wrong,
                              headers=clinic.headers["system"]).status_code == 422
    # Appending to a note makes a document a note: it must say which kind it is.
    untyped = clinic.note_body(appends=rid)
    untyped["type"] = {"text": "addendum"}
    assert clinic.post(untyped, "tara").status_code == 422
