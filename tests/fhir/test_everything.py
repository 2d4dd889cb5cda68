"""``Patient/$everything`` (issue 7 item 7): the compartment, within the caller's rights."""

from __future__ import annotations

from typing import Any

from ehr_testing import sealed

from ehr.audit import repository
from ehr.audit.repository import AuditFilter, SortKey
from ehr.db import unit_of_work

FHIR_JSON = {"Content-Type": "application/fhir+json"}
PSYTHPN = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSYTHPN"}


def post(client: Any, resource: dict[str, Any], headers: dict[str, str] | None = None) -> str:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource,
                           headers={**FHIR_JSON, **(headers or {})})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def observation(pid: str, code: str = "8867-4") -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{pid}"}}


def note(pid: str, *, psychotherapy: bool = False) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "DocumentReference", "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11506-3"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "content": [{"attachment": {"contentType": "text/plain", "data": "bm90ZQ=="}}]}
    if psychotherapy:
        doc["meta"] = {"security": [PSYTHPN]}
    return doc


def ids(bundle: dict[str, Any]) -> set[str]:
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}"
            for e in bundle.get("entry", [])}


def test_everything_returns_the_compartment_only(client: Any) -> None:
    pid = post(client, {"resourceType": "Patient", "name": [{"family": "All"}]})
    other = post(client, {"resourceType": "Patient", "name": [{"family": "Other"}]})
    obs = post(client, observation(pid))
    post(client, observation(other))
    doc = post(client, note(pid))
    secret = post(client, note(pid, psychotherapy=True))
    response = client.get(f"/fhir/Patient/{pid}/$everything")
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "searchset"
    found = ids(bundle)
    assert {f"Patient/{pid}", f"Observation/{obs}", f"DocumentReference/{doc}"} <= found
    assert f"Patient/{other}" not in found
    assert f"DocumentReference/{secret}" not in found
    assert all(f"Patient/{other}" not in str(e) for e in bundle["entry"])


def test_everything_pages_with_next_links(client: Any) -> None:
    pid = post(client, {"resourceType": "Patient"})
    made = {f"Observation/{post(client, observation(pid))}" for _ in range(5)}
    seen: set[str] = set()
    url: str | None = f"/fhir/Patient/{pid}/$everything?_count=2"
    pages = 0
    while url:
        bundle = client.get(url).json()
        assert len(bundle.get("entry", [])) <= 2
        seen |= ids(bundle)
        url = next((link["url"].removeprefix("http://testserver")
                    for link in bundle["link"] if link["relation"] == "next"), None)
        pages += 1
    assert pages == 3
    assert made | {f"Patient/{pid}"} == seen


def test_everything_type_filter_and_errors(client: Any) -> None:
    pid = post(client, {"resourceType": "Patient"})
    obs = post(client, observation(pid))
    only = client.get(f"/fhir/Patient/{pid}/$everything", params={"_type": "Observation"})
    assert ids(only.json()) == {f"Observation/{obs}"}
    for params in ({"_type": "Nonsense"}, {"_count": "0"}, {"_since": "yesterday"},
                   {"_cursor": "%%%"}, {"bogus": "1"}):
        bad = client.get(f"/fhir/Patient/{pid}/$everything", params=params)
        assert bad.status_code == 400, params
        assert bad.json()["resourceType"] == "OperationOutcome"
    missing = client.get("/fhir/Patient/00000000-0000-4000-8000-000000000000/$everything")
    assert missing.status_code == 404


def test_everything_respects_the_care_team(app: Any, client: Any, bearer_header: Any) -> None:
    mine = post(client, {"resourceType": "Patient"})
    theirs = post(client, {"resourceType": "Patient"})
    post(client, {"resourceType": "CareTeam", "status": "active",
                  "subject": {"reference": f"Patient/{mine}"},
                  "participant": [{"member": {"reference": "Practitioner/drall"}}]})
    doctor = bearer_header(app, subject="drall", kind="user", scopes="user/*.cruds",
                           roles=("physician",), practitioner="Practitioner/drall")
    assert client.get(f"/fhir/Patient/{mine}/$everything", headers=doctor).status_code == 200
    hidden = client.get(f"/fhir/Patient/{theirs}/$everything", headers=doctor)
    assert hidden.status_code == 404
    with unit_of_work(sealed(app.state.engine, app)) as session:
        events = [r for r in repository.stream(session, AuditFilter(), [SortKey("seq", False)])
                  if r.interaction == "operation:everything"]
    assert any(r.actor_id == "drall" and r.rid == mine for r in events)


def test_everything_records_the_protected_labels_it_returned(app: Any, client: Any) -> None:
    labelled = post(client, {"resourceType": "Patient"})
    plain = post(client, {"resourceType": "Patient"})
    for pid, meta in ((labelled, {"security": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "SUD"}]}),
            (plain, {})):
        post(client, {**observation(pid), "meta": meta})
    # The suite's system client sees Part 2 records only under a Consent: the team's view.
    post(client, {"resourceType": "Consent", "status": "active",
                  "scope": {"text": "patient-privacy"}, "category": [{"text": "consent"}],
                  "patient": {"reference": f"Patient/{labelled}"},
                  "provision": {"type": "permit", "actor": [{
                      "role": {"text": "recipient"},
                      "reference": {"reference": "Device/test-suite"}}]}})
    for pid in (labelled, plain):
        assert client.get(f"/fhir/Patient/{pid}/$everything").status_code == 200
    with unit_of_work(sealed(app.state.engine, app)) as session:
        events = {r.rid: r for r in repository.stream(session, AuditFilter(),
                                                      [SortKey("seq", False)])
                  if r.interaction == "operation:everything"}
    assert events[labelled].protected and '"protected":["SUD"]' in events[labelled].body
    assert not events[plain].protected
