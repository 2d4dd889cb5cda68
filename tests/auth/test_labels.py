"""Sensitivity labels (issue 3 item 7): psychotherapy notes (PSYTHPN) reach only their author
and users an explicit grant names, on every read path; compliance sees notes as metadata only;
SUD / 42 CFR Part 2 records go to the treating team, or to a system client under an active
Consent naming it, and every disclosure carries the redisclosure notice."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import pytest

from ehr.auth.access_tables import AccessGrantRow
from ehr.auth.redaction import REDACTED
from ehr.auth.roles import role_ceiling
from ehr.db import unit_of_work
from ehr.fhir.reader import REDISCLOSURE_HEADER, REDISCLOSURE_NOTICE

FHIR_JSON = {"Content-Type": "application/fhir+json"}
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
NOTE_TEXT = "patient discussed a very private dream"


def post(client: Any, resource: dict[str, Any], headers: dict[str, str] | None = None) -> str:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource,
                           headers={**FHIR_JSON, **(headers or {})})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def labelled(code: str | None) -> dict[str, Any]:
    return {"security": [{"system": ACT_CODE, "code": code}]} if code else {}


def document(pid: str, label: str | None = None, relates_to: str | None = None
             ) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "DocumentReference", "status": "current",
        "subject": {"reference": f"Patient/{pid}"},
        "type": {"text": "Psychotherapy note" if label else "Integration note"},
        "author": [{"reference": "Practitioner/t1"}],
        "content": [{"attachment": {"contentType": "text/plain",
                                    "data": base64.b64encode(NOTE_TEXT.encode()).decode()}}]}
    if label:
        body["meta"] = labelled(label)
    if relates_to:
        body["relatesTo"] = [{"code": "appends",
                              "target": {"reference": f"DocumentReference/{relates_to}"}}]
    return body


def user(app: Any, bearer_header: Any, name: str, role: str) -> dict[str, str]:
    return {**FHIR_JSON, **bearer_header(
        app, subject=name, kind="user", scopes=str(role_ceiling([role])), roles=(role,),
        practitioner=f"Practitioner/{name}")}


@dataclass
class Notes:
    patient: str
    note: str  # PSYTHPN, written by t1
    plain: str  # no label, written by t1, relates to the note
    t1: dict[str, str]
    t2: dict[str, str]
    doc: dict[str, str]
    compliance: dict[str, str]


@pytest.fixture
def notes(app: Any, client: Any, bearer_header: Any) -> Notes:
    pid = post(client, {"resourceType": "Patient", "name": [{"family": "Labelled"}]})
    post(client, {"resourceType": "CareTeam", "status": "active",
                  "subject": {"reference": f"Patient/{pid}"},
                  "participant": [{"member": {"reference": f"Practitioner/{n}"}}
                                  for n in ("t1", "t2", "doc")]})
    t1 = user(app, bearer_header, "t1", "therapist")
    note = post(client, document(pid, "PSYTHPN"), t1)
    plain = post(client, document(pid, relates_to=note), t1)
    return Notes(pid, note, plain, t1, t2=user(app, bearer_header, "t2", "therapist"),
                 doc=user(app, bearer_header, "doc", "physician"),
                 compliance=user(app, bearer_header, "audit", "compliance"))


def ids(bundle: dict[str, Any]) -> set[str]:
    found = set()
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        if resource.get("resourceType") == "Bundle":
            found |= ids(resource)
        elif "id" in resource:
            found.add(resource["id"])
        elif "fullUrl" in entry:
            found.add(entry["fullUrl"].rsplit("/", 1)[-1])
    return found


def every_read_path(client: Any, n: Notes, headers: dict[str, str]) -> dict[str, Any]:
    """What each read path answers ``headers`` about the psychotherapy note."""
    note, pid = n.note, n.patient
    out: dict[str, Any] = {
        "read": client.get(f"/fhir/DocumentReference/{note}", headers=headers).status_code,
        "vread": client.get(f"/fhir/DocumentReference/{note}/_history/1",
                            headers=headers).status_code,
        "history-instance": client.get(f"/fhir/DocumentReference/{note}/_history",
                                       headers=headers).status_code,
    }
    searches = {
        "search": "/fhir/DocumentReference",
        "search-label": f"/fhir/DocumentReference?_security={ACT_CODE}|PSYTHPN",
        "include": f"/fhir/DocumentReference?_id={n.plain}&_include=DocumentReference:relatesto",
        "revinclude": f"/fhir/Patient?_id={pid}&_revinclude=DocumentReference:subject",
        "history-type": "/fhir/DocumentReference/_history",
        "history-system": "/fhir/_history",
    }
    for name, url in searches.items():
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        out[name] = note in ids(response.json())
    # Searches that would betray the note without returning it: a _has on the patient, and a
    # chain from the unlabelled note through relatesTo to the labelled one.
    label = f"{ACT_CODE}|PSYTHPN"
    reverse = client.get(f"/fhir/Patient?_id={pid}&_has:DocumentReference:subject:_security="
                         f"{label}", headers=headers)
    assert reverse.status_code == 200, reverse.text
    out["has"] = pid in ids(reverse.json())
    chain = client.get(f"/fhir/DocumentReference?relatesto:DocumentReference._security={label}",
                       headers=headers)
    assert chain.status_code == 200, chain.text
    out["chain"] = n.plain in ids(chain.json())
    batch = client.post("/fhir", headers=headers, json={
        "resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "GET", "url": f"DocumentReference/{note}"}},
            {"request": {"method": "GET", "url": "DocumentReference"}}]})
    assert batch.status_code == 200
    entries = batch.json()["entry"]
    out["batch-read"] = entries[0]["response"]["status"][:3]
    out["batch-search"] = note in ids(entries[1]["resource"])
    transaction = client.post("/fhir", headers=headers, json={
        "resourceType": "Bundle", "type": "transaction", "entry": [
            {"request": {"method": "GET", "url": f"DocumentReference/{note}"}}]})
    out["transaction"] = transaction.status_code
    return out


HIDDEN = {"read": 404, "vread": 404, "history-instance": 404, "search": False,
          "search-label": False, "include": False, "revinclude": False, "history-type": False,
          "history-system": False, "batch-read": "404", "batch-search": False,
          "transaction": 404, "has": False, "chain": False}
SHOWN = {"read": 200, "vread": 200, "history-instance": 200, "search": True,
         "search-label": True, "include": True, "revinclude": True, "history-type": True,
         "history-system": True, "batch-read": "200", "batch-search": True,
         "transaction": 200, "has": True, "chain": True}


def test_psychotherapy_note_hidden_from_team(client: Any, notes: Notes) -> None:
    assert every_read_path(client, notes, notes.t2) == HIDDEN
    assert every_read_path(client, notes, notes.doc) == HIDDEN
    # The unlabelled note is visible to the same users (the team is not the reason).
    plain = client.get(f"/fhir/DocumentReference/{notes.plain}", headers=notes.t2)
    assert plain.status_code == 200
    # Nor can the teammate overwrite it.
    put = client.put(f"/fhir/DocumentReference/{notes.note}",
                     json={**document(notes.patient), "id": notes.note}, headers=notes.t2)
    assert put.status_code == 404


def test_psychotherapy_note_visible_to_author(client: Any, notes: Notes) -> None:
    assert every_read_path(client, notes, notes.t1) == SHOWN
    read = client.get(f"/fhir/DocumentReference/{notes.note}", headers=notes.t1).json()
    assert read["content"][0]["attachment"]["data"]


def test_psychotherapy_note_visible_after_grant(client: Any, notes: Notes, engine: Any) -> None:
    with unit_of_work(engine) as session:
        session.add(AccessGrantRow(rtype="DocumentReference", rid=notes.note, grantee="t2",
                                   granted_by="t1", reason="supervision", created_at=1))
    assert every_read_path(client, notes, notes.t2) == SHOWN
    assert every_read_path(client, notes, notes.doc) == HIDDEN
    with unit_of_work(engine) as session:
        row = session.query(AccessGrantRow).one()
        row.revoked_at = 2
    assert every_read_path(client, notes, notes.t2) == HIDDEN


def test_compliance_sees_note_metadata_only(client: Any, notes: Notes) -> None:
    found = client.get("/fhir/DocumentReference", headers=notes.compliance)
    assert found.status_code == 200, found.text
    docs = {e["resource"]["id"]: e["resource"] for e in found.json().get("entry", [])}
    assert set(docs) == {notes.plain}
    shown = docs[notes.plain]
    assert "content" not in shown
    assert NOTE_TEXT not in found.text
    assert base64.b64encode(NOTE_TEXT.encode()).decode() not in found.text
    assert REDACTED["code"] in {s["code"] for s in shown["meta"]["security"]}
    assert shown["type"]["text"] == "Integration note"
    assert shown["author"] == [{"reference": "Practitioner/t1"}]
    assert found.json()["total"] == 1
    # A read by id, a version read and the instance history show the same listing.
    for path in (notes.plain, f"{notes.plain}/_history/1"):
        one = client.get(f"/fhir/DocumentReference/{path}", headers=notes.compliance)
        assert one.status_code == 200, one.text
        assert "content" not in one.json() and NOTE_TEXT not in one.text
        assert REDACTED["code"] in {s["code"] for s in one.json()["meta"]["security"]}
    versions = client.get(f"/fhir/DocumentReference/{notes.plain}/_history",
                          headers=notes.compliance)
    assert versions.status_code == 200 and "content" not in versions.text
    assert client.get(f"/fhir/DocumentReference/{notes.note}",
                      headers=notes.compliance).status_code == 404
    hist = client.get("/fhir/DocumentReference/_history", headers=notes.compliance)
    assert hist.status_code == 200
    assert ids(hist.json()) == {notes.plain}
    assert base64.b64encode(NOTE_TEXT.encode()).decode() not in hist.text
    # Not organisation-wide for clinical data.
    patients = client.get("/fhir/Patient", headers=notes.compliance)
    assert patients.status_code == 403


# -- SUD / 42 CFR Part 2 ------------------------------------------------------------------


def consent(pid: str, actor: str, status: str = "active", kind: str = "permit",
            period: dict[str, str] | None = None) -> dict[str, Any]:
    provision: dict[str, Any] = {"type": kind, "actor": [{
        "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                             "v3-ParticipationType", "code": "IRCP"}]},
        "reference": {"reference": actor}}]}
    if period is not None:
        provision["period"] = period
    return {"resourceType": "Consent", "status": status,
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                  "consentscope", "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{pid}"},
            "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTIN"}]},
            "provision": provision}


def sud_observation(pid: str, code: str = "SUD") -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "meta": labelled(code),
            "code": {"text": "Alcohol use disorder screening"},
            "subject": {"reference": f"Patient/{pid}"}}


def notice_entries(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "outcome"
            and any(i.get("diagnostics") == REDISCLOSURE_NOTICE
                    for i in e["resource"]["issue"])]


def test_part2_records_for_team_with_notice(client: Any, notes: Notes) -> None:
    sud = post(client, sud_observation(notes.patient))
    part2 = post(client, sud_observation(notes.patient, "42CFRPart2"))
    plain = post(client, {**sud_observation(notes.patient), "meta": {}})
    for rid in (sud, part2):
        read = client.get(f"/fhir/Observation/{rid}", headers=notes.doc)
        assert read.status_code == 200
        assert read.headers[REDISCLOSURE_HEADER] == REDISCLOSURE_NOTICE
        vread = client.get(f"/fhir/Observation/{rid}/_history/1", headers=notes.doc)
        assert vread.headers[REDISCLOSURE_HEADER] == REDISCLOSURE_NOTICE
        history = client.get(f"/fhir/Observation/{rid}/_history", headers=notes.doc)
        assert history.headers[REDISCLOSURE_HEADER] == REDISCLOSURE_NOTICE
    plain_read = client.get(f"/fhir/Observation/{plain}", headers=notes.doc)
    assert REDISCLOSURE_HEADER not in plain_read.headers
    plain_history = client.get(f"/fhir/Observation/{plain}/_history", headers=notes.doc)
    assert REDISCLOSURE_HEADER not in plain_history.headers
    bundle = client.get("/fhir/Observation", headers=notes.doc).json()
    assert {sud, part2, plain} <= ids(bundle)
    (outcome,) = notice_entries(bundle)
    assert outcome["resource"]["issue"][0]["severity"] == "information"
    only_plain = client.get(f"/fhir/Observation?_id={plain}", headers=notes.doc).json()
    assert notice_entries(only_plain) == []
    # An include that brings in a labelled record carries the notice too.
    included = client.get(f"/fhir/Patient?_id={notes.patient}&_revinclude=Observation:subject",
                          headers=notes.doc).json()
    assert len(notice_entries(included)) == 1
    # In a batch each entry that discloses one carries the notice in its outcome.
    batch = client.post("/fhir", headers={**FHIR_JSON, **notes.doc}, json={
        "resourceType": "Bundle", "type": "batch", "entry": [
            {"request": {"method": "GET", "url": f"Observation/{rid}"}}
            for rid in (sud, plain, part2)]}).json()
    notices = [(e.get("response", {}).get("outcome") or {}).get("issue", [{}])[0]
               .get("diagnostics") for e in batch["entry"]]
    assert notices == [REDISCLOSURE_NOTICE, None, REDISCLOSURE_NOTICE]
    # So does the patient's $everything, on the page that holds them.
    everything = client.get(f"/fhir/Patient/{notes.patient}/$everything", headers=notes.doc)
    assert {sud, part2} <= ids(everything.json())
    assert len(notice_entries(everything.json())) == 1
    other = post(client, {"resourceType": "Patient"})
    post(client, {**sud_observation(other), "meta": {}})
    clean = client.get(f"/fhir/Patient/{other}/$everything").json()
    assert len(ids(clean)) == 2 and notice_entries(clean) == []


def test_part2_records_for_system_client_need_consent(app: Any, client: Any, notes: Notes,
                                                      bearer_header: Any) -> None:
    sud = post(client, sud_observation(notes.patient))
    plain = post(client, {**sud_observation(notes.patient), "meta": {}})
    analytics = {**FHIR_JSON, **bearer_header(app, subject="analytics", kind="client",
                                              scopes="system/Observation.rs")}

    def sees() -> tuple[int, bool]:
        read = client.get(f"/fhir/Observation/{sud}", headers=analytics).status_code
        found = client.get("/fhir/Observation", headers=analytics).json()
        assert plain in ids(found)
        return read, sud in ids(found)

    assert sees() == (404, False)
    post(client, consent(notes.patient, "Device/someone-else"))
    post(client, consent(notes.patient, "Device/analytics", status="inactive"))
    other = post(client, {"resourceType": "Patient"})
    post(client, consent(other, "Device/analytics"))
    # A Consent that denies the client, or permits it only in another period, discloses nothing.
    post(client, consent(notes.patient, "Device/analytics", kind="deny"))
    post(client, consent(notes.patient, "Device/analytics",
                         period={"start": "2020-01-01", "end": "2021-01-01"}))
    post(client, consent(notes.patient, "Device/analytics", period={"start": "2999-01-01"}))
    assert sees() == (404, False)
    current = post(client, consent(notes.patient, "Device/analytics",
                                   period={"start": "2020-01-01", "end": "2999-01-01"}))
    assert sees() == (200, True)
    assert client.delete(f"/fhir/Consent/{current}").status_code == 200
    assert sees() == (404, False)
    cid = post(client, consent(notes.patient, "Device/analytics"))
    assert sees() == (200, True)
    read = client.get(f"/fhir/Observation/{sud}", headers=analytics)
    assert read.headers[REDISCLOSURE_HEADER] == REDISCLOSURE_NOTICE
    assert len(notice_entries(client.get("/fhir/Observation", headers=analytics).json())) == 1
    revoked = {**consent(notes.patient, "Device/analytics", status="inactive"), "id": cid}
    assert client.put(f"/fhir/Consent/{cid}", json=revoked, headers=FHIR_JSON).status_code == 200
    assert sees() == (404, False)
    # A deleted SUD record does not answer 410 to a client it was never disclosed to.
    assert client.delete(f"/fhir/Observation/{sud}").status_code == 200
    assert client.get(f"/fhir/Observation/{sud}", headers=analytics).status_code == 404


def test_part2_records_hidden_outside_team(app: Any, client: Any, notes: Notes,
                                           bearer_header: Any) -> None:
    sud = post(client, sud_observation(notes.patient))
    outsider = user(app, bearer_header, "stranger", "physician")
    assert client.get(f"/fhir/Observation/{sud}", headers=outsider).status_code == 404
    assert client.get("/fhir/Observation", headers=outsider).json()["total"] == 0
