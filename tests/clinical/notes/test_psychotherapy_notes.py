"""Psychotherapy notes through their whole life: written, signed, appended, shared by an
explicit grant; never seen by anyone else on any read path, with their signatures."""

from __future__ import annotations

from typing import Any

from note_clinic import Clinic

from ehr.clinical.notes.kinds import PSYCHOTHERAPY_LABEL


def ids(bundle: dict[str, Any]) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if "resource" in e
            and "id" in e["resource"]}


def seen(clinic: Clinic, who: str, note: str, provenance: str) -> dict[str, bool]:
    """Whether ``who`` learns of the note or its signature on each read path."""
    get = clinic.client.get
    h = clinic.headers[who]
    pid = clinic.patient
    out = {
        "read": get(f"/fhir/DocumentReference/{note}", headers=h).status_code == 200,
        "provenance-read": get(f"/fhir/Provenance/{provenance}", headers=h).status_code == 200,
    }
    searches = {
        "search": "/fhir/DocumentReference",
        "provenance-search": "/fhir/Provenance",
        "revinclude-provenance": f"/fhir/DocumentReference?patient={pid}"
                                 "&_revinclude=Provenance:target",
        "include-target": "/fhir/Provenance?_include=Provenance:target",
        "revinclude-patient": f"/fhir/Patient?_id={pid}&_revinclude=DocumentReference:subject"
                              "&_revinclude=Provenance:patient",
        "history-type": "/fhir/Provenance/_history",
        "history-system": "/fhir/_history",
        "signature-search": "/fhir/Provenance?signature-type=urn:iso-astm:E1762-95:2013|"
                            "1.2.840.10065.1.12.1.1",
    }
    for name, url in searches.items():
        response = get(url, headers=h)
        assert response.status_code == 200, (name, response.text)
        found = ids(response.json())
        out[name] = bool({note, provenance} & found)
    has = get(f"/fhir/Patient?_id={pid}&_has:Provenance:patient:signature-type="
              "1.2.840.10065.1.12.1.1", headers=h)
    out["has"] = pid in ids(has.json())
    return out


def test_signed_psychotherapy_note_stays_with_its_author(clinic: Clinic) -> None:
    note = clinic.draft("tara", "psychotherapy", text="process notes: transference")
    signed = clinic.sign(note, "tara")
    assert signed.status_code == 200, signed.text
    provenance = next(p["resource"] for p in signed.json()["parameter"]
                      if p["name"] == "provenance")
    assert PSYCHOTHERAPY_LABEL in {s["code"] for s in provenance["meta"]["security"]}
    author = seen(clinic, "tara", note, provenance["id"])
    assert all(author.values()), author
    for who in ("theo", "doc", "nina", "far", "system"):
        other = seen(clinic, who, note, provenance["id"])
        assert not any(other.values()), (who, other)
    # Nobody else may sign, review, withdraw or append to it: it does not exist for them.
    assert clinic.sign(note, "doc", "reviewed").status_code == 404
    assert clinic.operation(note, "entered-in-error", "doc", reason="x").status_code == 404
    appended = clinic.post(clinic.note_body("psychotherapy", appends=note), "theo")
    assert appended.status_code == 422
    assert "not a known note" in appended.text


def test_grant_shares_note_signature_and_addenda(clinic: Clinic) -> None:
    note = clinic.signed("tara", "psychotherapy")
    addendum = clinic.signed("tara", "psychotherapy", appends=note)
    provenance = clinic.client.get(f"/fhir/Provenance?target=DocumentReference/{note}",
                                   headers=clinic.headers["tara"]).json()["entry"][0][
        "resource"]["id"]
    # Only the author grants, naming a user and a reason.
    assert clinic.operation(note, "grant-access", "theo", user="theo",
                            reason="x").status_code == 404
    assert clinic.operation(note, "grant-access", "tara", user="theo").status_code == 400
    granted = clinic.operation(note, "grant-access", "tara", user="theo",
                               reason="clinical supervision")
    assert granted.status_code == 200, granted.text
    theo = seen(clinic, "theo", note, provenance)
    assert all(theo.values()), theo
    assert clinic.read(addendum, "theo").status_code == 200
    assert not any(seen(clinic, "doc", note, provenance).values())
    # The grantee may add an addendum and review; the author then sees both.
    extra = clinic.draft("theo", "psychotherapy", appends=note, text="supervisor's comment")
    assert clinic.sign(extra, "theo").status_code == 200
    review = clinic.sign(note, "theo", "reviewed")
    assert review.status_code == 200, review.text
    review_id = next(p["resource"]["id"] for p in review.json()["parameter"]
                     if p["name"] == "provenance")
    assert clinic.read(extra, "tara").status_code == 200
    assert clinic.client.get(f"/fhir/Provenance/{review_id}",
                             headers=clinic.headers["tara"]).status_code == 200
    assert clinic.read(extra, "doc").status_code == 404
    # Revoking ends it on every path.
    revoked = clinic.operation(note, "revoke-access", "tara", user="theo")
    assert revoked.status_code == 200, revoked.text
    after = seen(clinic, "theo", note, provenance)
    # ``has`` still finds theo's own signature on his own addendum: that record is his.
    assert after.pop("has") is True
    assert not any(after.values()), after
    assert clinic.read(addendum, "theo").status_code == 404
    assert clinic.read(extra, "theo").status_code == 200


def test_grants_are_for_psychotherapy_notes_only(clinic: Clinic) -> None:
    rid = clinic.signed("tara")
    response = clinic.operation(rid, "grant-access", "tara", user="far", reason="curious")
    assert response.status_code == 422


def test_psychotherapy_addendum_must_be_labelled(clinic: Clinic) -> None:
    note = clinic.signed("tara", "psychotherapy")
    plain = clinic.post(clinic.note_body("integration", appends=note), "tara")
    assert plain.status_code == 422
    assert "PSYTHPN" in plain.text
