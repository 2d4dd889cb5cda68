"""$sign: re-authentication, who may sign with which meaning, and the Provenance written."""

from __future__ import annotations

from typing import Any

from ehr_testing import sealed
from note_clinic import Clinic
from sqlalchemy import text

from ehr.clinical.notes.signing import SIGNATURE_TYPE_SYSTEM


def _params(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return {p["name"]: p["resource"] for p in response.json()["parameter"]}


def test_author_signs(clinic: Clinic) -> None:
    rid = clinic.draft("tara")
    out = _params(clinic.sign(rid, "tara"))
    note, provenance = out["note"], out["provenance"]
    assert note["docStatus"] == "final"
    assert note["meta"]["versionId"] == "2"
    assert note["authenticator"] == {"reference": "Practitioner/tara",
                                     "display": "Tara Ames, LCSW"}
    assert provenance["target"] == [{"reference": f"DocumentReference/{rid}/_history/2"},
                                    {"reference": f"Patient/{clinic.patient}"}]
    (signature,) = provenance["signature"]
    assert signature["type"] == [{"system": SIGNATURE_TYPE_SYSTEM,
                                  "code": "1.2.840.10065.1.12.1.1",
                                  "display": "Author's Signature"}]
    # Printed name, time and meaning (21 CFR 11.50), bound to the signed version's time.
    assert signature["who"] == {"reference": "Practitioner/tara", "display": "Tara Ames, LCSW"}
    assert signature["when"] == note["meta"]["lastUpdated"] == provenance["recorded"]
    assert provenance["agent"][0]["who"]["reference"] == "Practitioner/tara"
    assert provenance["agent"][0]["type"]["coding"][0]["code"] == "author"
    # The Provenance is stored and found from the note.
    found = clinic.client.get(
        f"/fhir/DocumentReference?_id={rid}&_revinclude=Provenance:target",
        headers=clinic.headers["doc"]).json()
    assert {e["resource"]["resourceType"] for e in found["entry"]} == {
        "DocumentReference", "Provenance"}
    # The signed version is the one the Provenance names, unchanged since.
    vread = clinic.client.get(f"/fhir/DocumentReference/{rid}/_history/2",
                              headers=clinic.headers["doc"]).json()
    assert vread["docStatus"] == "final"


def test_only_the_author_signs_as_author(clinic: Clinic) -> None:
    rid = clinic.draft("tara")
    assert clinic.sign(rid, "theo").status_code == 403
    assert clinic.sign(rid, "doc").status_code == 403
    assert clinic.read(rid).json()["docStatus"] == "preliminary"
    assert clinic.sign(rid, "tara").status_code == 200
    assert clinic.sign(rid, "tara").status_code == 409  # already signed


def test_assertion_must_be_valid_fresh_and_own(clinic: Clinic) -> None:
    rid = clinic.draft("tara")
    theirs = clinic.assertion("theo")
    assert clinic.sign(rid, "tara", assertion=theirs).status_code == 403
    assert clinic.sign(rid, "tara", assertion="not.a.jwt").status_code == 403
    other_action = clinic.assertion("tara", action="waste-witness")
    assert clinic.sign(rid, "tara", assertion=other_action).status_code == 403
    token = clinic.assertion("tara")
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    assert clinic.sign(rid, "tara", assertion=forged).status_code == 403
    # An access token is not a signing assertion.
    access = clinic.headers["tara"]["Authorization"].split()[1]
    assert clinic.sign(rid, "tara", assertion=access).status_code == 403
    assert clinic.read(rid).json()["docStatus"] == "preliminary"
    assert clinic.sign(rid, "tara", assertion=token).status_code == 200
    # Single use: the same assertion cannot sign again (here: an addendum).
    addendum = clinic.draft("tara", appends=rid)
    reused = clinic.sign(addendum, "tara", assertion=token)
    assert reused.status_code == 403
    assert "already used" in reused.text


def test_refused_signing_does_not_burn_the_assertion(clinic: Clinic) -> None:
    rid = clinic.draft("tara")
    token = clinic.assertion("tara")
    stale = clinic.operation(rid, "sign", "tara", headers={"If-Match": 'W/"7"'},
                             meaning="authored", assertion=token)
    assert stale.status_code == 412
    assert clinic.sign(rid, "tara", assertion=token).status_code == 200


def test_bad_parameters(clinic: Clinic) -> None:
    rid = clinic.draft("tara")
    token = clinic.assertion("tara")
    assert clinic.operation(rid, "sign", "tara", meaning="approved",
                            assertion=token).status_code == 400
    assert clinic.operation(rid, "sign", "tara", meaning="authored").status_code == 400
    assert clinic.operation("missing", "sign", "tara", meaning="authored",
                            assertion=token).status_code == 404
    scan = clinic.client.post("/fhir/DocumentReference", headers=clinic.headers["system"], json={
        "resourceType": "DocumentReference", "status": "current",
        "subject": {"reference": f"Patient/{clinic.patient}"},
        "content": [{"attachment": {"contentType": "application/pdf", "data": "JVBERg=="}}]})
    assert clinic.operation(scan.json()["id"], "sign", "tara", meaning="authored",
                            assertion=token).status_code in (404, 422)
    system = clinic.client.post(f"/fhir/DocumentReference/{rid}/$sign",
                                headers=clinic.headers["system"],
                                json={"resourceType": "Parameters", "parameter": [
                                    {"name": "meaning", "valueCode": "authored"},
                                    {"name": "assertion", "valueString": token}]})
    assert system.status_code == 403


def test_review_signature(clinic: Clinic) -> None:
    draft = clinic.draft("tara")
    assert clinic.sign(draft, "doc", "reviewed").status_code == 409  # not signed yet
    rid = clinic.signed("tara")
    assert clinic.sign(rid, "nina", "reviewed").status_code == 403  # a nurse
    assert clinic.sign(rid, "far", "reviewed").status_code == 404  # not on the team
    assert clinic.sign(rid, "tara", "reviewed").status_code == 422  # own note
    out = _params(clinic.sign(rid, "doc", "reviewed"))
    note, provenance = out["note"], out["provenance"]
    assert note["meta"]["versionId"] == "2"  # a review leaves the note as it was
    assert note["authenticator"]["reference"] == "Practitioner/tara"
    assert provenance["target"][0] == {"reference": f"DocumentReference/{rid}/_history/2"}
    (signature,) = provenance["signature"]
    assert signature["type"][0]["code"] == "1.2.840.10065.1.12.1.13"
    assert signature["who"]["display"] == "Dr Dana Wu"
    assert provenance["agent"][0]["type"]["coding"][0]["code"] == "verifier"
    theo = _params(clinic.sign(rid, "theo", "reviewed"))["provenance"]
    assert theo["signature"][0]["who"]["display"] == "Theo Brandt, PhD"


def test_signature_provenances_cannot_be_forged_or_changed(clinic: Clinic) -> None:
    rid = clinic.draft("tara")
    forged = {"resourceType": "Provenance", "recorded": "2026-01-01T00:00:00Z",
              "target": [{"reference": f"DocumentReference/{rid}/_history/1"}],
              "agent": [{"who": {"reference": "Practitioner/tara"}}],
              "signature": [{"type": [{"system": SIGNATURE_TYPE_SYSTEM,
                                       "code": "1.2.840.10065.1.12.1.1"}],
                             "when": "2026-01-01T00:00:00Z",
                             "who": {"reference": "Practitioner/tara"}}]}
    assert clinic.client.post("/fhir/Provenance", json=forged,
                              headers=clinic.headers["doc"]).status_code == 422
    provenance = _params(clinic.sign(rid, "tara"))["provenance"]
    pid = provenance["id"]
    changed = {**provenance, "recorded": "2020-01-01T00:00:00Z"}
    for who in ("doc", "system"):
        put = clinic.client.put(f"/fhir/Provenance/{pid}", json=changed,
                                headers=clinic.headers[who])
        assert put.status_code == 409, put.text
        delete = clinic.client.delete(f"/fhir/Provenance/{pid}", headers=clinic.headers[who])
        assert delete.status_code == 409, delete.text


def test_every_write_is_audited(clinic: Clinic, engine: Any, app: Any) -> None:
    rid = clinic.draft("tara")
    clinic.put(rid, clinic.note_body(text="second draft"), "tara")
    provenance = _params(clinic.sign(rid, "tara"))["provenance"]
    clinic.operation(rid, "entered-in-error", "tara", reason="duplicate")
    refused = clinic.put(rid, clinic.note_body(), "tara")
    assert refused.status_code == 409
    with sealed(engine, app).connect() as conn:
        rows = conn.execute(text("SELECT interaction, rtype, rid, outcome FROM audit_record "
                                 "ORDER BY seq")).all()
    events = [tuple(r) for r in rows if r[2] in (rid, provenance["id"])]
    assert ("create", "DocumentReference", rid, "success") in events
    assert events.count(("update", "DocumentReference", rid, "success")) == 3
    assert ("create", "Provenance", provenance["id"], "success") in events
    assert ("operation:sign", "DocumentReference", rid, "success") in events
    assert ("operation:entered-in-error", "DocumentReference", rid, "success") in events
    assert ("update", "DocumentReference", rid, "error") in events
