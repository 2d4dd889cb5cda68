"""``/fhir/AuditEvent``: audit records rendered as BALP AuditEvents, searched and paged."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from ehr_testing import sealed
from fhir.resources.R4B.auditevent import AuditEvent
from sqlalchemy import Engine

from ehr.audit import repository
from ehr.audit.repository import AuditFilter
from ehr.audit.sequencer import Pending
from ehr.db import unit_of_work
from ehr.fhir.audit_events import CHAIN_EXTENSION, DCM, RESTFUL, outcome_code, render

FHIR_JSON = {"Content-Type": "application/fhir+json"}
PRACTITIONER = "Practitioner/doc-prac"


@dataclass
class Activity:
    patient_a: str
    patient_b: str
    observation: str
    headers: dict[str, dict[str, str]]


def _user(app: Any, bearer_header: Any, name: str, role: str, scopes: str,
          practitioner: str | None = None) -> dict[str, str]:
    return bearer_header(app, subject=name, kind="user", scopes=scopes, roles=(role,),
                         practitioner=practitioner)


@pytest.fixture
def activity(client: Any, app: Any, bearer_header: Any) -> Activity:
    def post(resource: dict[str, Any], headers: dict[str, str] | None = None) -> str:
        response = client.post(f"/fhir/{resource['resourceType']}", json=resource,
                               headers={**FHIR_JSON, **(headers or {})})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    a = post({"resourceType": "Patient", "name": [{"family": "Alpha"}]})
    b = post({"resourceType": "Patient", "name": [{"family": "Beta"}]})
    obs = post({"resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
                "subject": {"reference": f"Patient/{a}"}})
    assert client.get(f"/fhir/Patient/{a}").status_code == 200
    assert client.get(f"/fhir/Observation?subject=Patient/{a}").status_code == 200
    updated = client.put(f"/fhir/Patient/{a}", headers=FHIR_JSON, json={
        "resourceType": "Patient", "id": a, "name": [{"family": "Alpha2"}]})
    assert updated.status_code == 200, updated.text
    assert client.delete(f"/fhir/Observation/{obs}").status_code == 200
    assert client.get("/fhir/Patient/does-not-exist").status_code == 404
    headers = {
        "doc": _user(app, bearer_header, "doc", "physician", "user/*.cruds", PRACTITIONER),
        "therapist": _user(app, bearer_header, "thera", "therapist", "user/*.rs"),
        "auditor": _user(app, bearer_header, "auditor", "compliance", "user/AuditEvent.rs"),
        "admin": _user(app, bearer_header, "root", "admin", "openid"),
    }
    post({"resourceType": "Patient", "name": [{"family": "Gamma"}]}, headers["doc"])
    # Refused: recorded by the router as a security event in its own transaction.
    assert client.get("/fhir/AuditEvent", headers=headers["therapist"]).status_code == 403
    return Activity(a, b, obs, headers)


def _search(client: Any, headers: dict[str, str], query: str = "", status: int = 200
            ) -> dict[str, Any]:
    response = client.get(f"/fhir/AuditEvent{query}", headers=headers)
    assert response.status_code == status, response.text
    return dict(response.json())


def _events(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", [])
            if e["resource"]["resourceType"] == "AuditEvent"]


def _record_count(engine: Engine) -> int:
    with unit_of_work(sealed(engine), write=False) as session:
        return repository.count(session, AuditFilter())


def _last_record(engine: Engine) -> repository.AuditRow:
    with unit_of_work(sealed(engine), write=False) as session:
        row = repository.get_record(session, repository.count(session, AuditFilter()))
    assert row is not None
    return row


def _references(event: dict[str, Any]) -> set[str]:
    return {e["what"]["reference"] for e in event.get("entity", [])
            if "reference" in e.get("what", {})}


def _codes(event: dict[str, Any], system: str) -> set[str]:
    return {c["code"] for c in event.get("subtype", []) if c["system"] == system}


def test_every_record_renders_a_valid_audit_event(client: Any, engine: Engine,
                                                  activity: Activity) -> None:
    auditor = activity.headers["auditor"]
    before = _record_count(engine)
    bundle = _search(client, auditor, "?_count=500")
    events = _events(bundle)
    assert bundle["total"] == before == len(events)
    for event in events:
        AuditEvent.model_validate(event)
        assert event["type"]["code"] in ("rest", "110113", "110114", "110101")
        hashes = {x["url"]: x["valueString"] for x in event["extension"][0]["extension"]}
        assert event["extension"][0]["url"] == CHAIN_EXTENSION
        with unit_of_work(engine, write=False) as session:
            row = repository.get_record(session, int(event["id"]))
        assert row is not None and hashes == {"hash": row.hash, "prevHash": row.prev_hash}
    # Newest first by default; ids are the chain's sequence numbers.
    assert [int(e["id"]) for e in events] == list(range(before, 0, -1))


def test_rendering_of_a_read_follows_balp(client: Any, activity: Activity) -> None:
    bundle = _search(client, activity.headers["auditor"],
                     f"?subtype=read&entity=Patient/{activity.patient_a}")
    (event,) = _events(bundle)
    assert event["type"] == {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
                             "code": "rest", "display": "Restful Operation"}
    assert _codes(event, RESTFUL) == {"read"}
    assert event["action"] == "R" and event["outcome"] == "0"
    assert event["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"
    requestor = next(a for a in event["agent"] if a["requestor"])
    assert requestor["who"]["identifier"]["value"] == "test-suite"
    assert requestor["network"]["address"] == "testclient"
    roles = {e["role"]["code"]: e for e in event["entity"] if "role" in e}
    assert roles["4"]["what"]["reference"] == f"Patient/{activity.patient_a}/_history/1"
    assert roles["1"]["what"]["reference"] == f"Patient/{activity.patient_a}"


def test_search_records_carry_the_query(client: Any, activity: Activity) -> None:
    bundle = _search(client, activity.headers["auditor"], "?subtype=search-type&entity="
                     f"Patient/{activity.patient_a}")
    searches = [e for e in _events(bundle) if "AuditEvent" not in json.dumps(e["entity"])]
    (event,) = searches
    query = next(e["query"] for e in event["entity"] if e.get("role", {}).get("code") == "24")
    assert base64.b64decode(query).decode() == f"subject=Patient/{activity.patient_a}"
    assert event["action"] == "E"


def test_search_by_each_parameter(client: Any, activity: Activity) -> None:
    auditor = activity.headers["auditor"]
    a = activity.patient_a

    creates = _events(_search(client, auditor, "?subtype=create&_count=100"))
    assert len(creates) == 4 and all(_codes(e, RESTFUL) == {"create"} for e in creates)
    assert all(e["action"] == "C" for e in creates)

    about_a = _events(_search(client, auditor, f"?entity=Patient/{a}"))
    kinds = sorted(next(iter(_codes(e, RESTFUL))) for e in about_a)
    # Its create, read, update; the observation create/delete and the search touch it too.
    assert kinds == sorted(["create", "read", "update", "create", "delete", "search-type"])
    assert all(f"Patient/{a}" in _references(e) for e in about_a)
    by_patient = _events(_search(client, auditor, f"?patient={a}"))
    assert [e["id"] for e in by_patient] == [e["id"] for e in about_a]
    assert _events(_search(client, auditor, f"?patient=Patient/{a}")) == by_patient
    version = _events(_search(client, auditor, f"?entity=Patient/{a}/_history/2"))
    assert [next(iter(_codes(e, RESTFUL))) for e in version] == ["update"]
    both = _events(_search(client, auditor,
                           f"?patient={a},{activity.patient_b}&subtype=create"))
    assert len(both) == 3  # Alpha, Beta, and the observation about Alpha

    by_doc = _events(_search(client, auditor, "?agent=doc"))
    assert len(by_doc) == 1
    assert by_doc[0]["agent"][0]["who"]["identifier"]["value"] == "doc"

    failures = _events(_search(client, auditor, "?outcome=4"))
    assert {e["outcome"] for e in failures} == {"4"} and len(failures) == 2
    assert _events(_search(client, auditor, "?outcome=8")) == []

    alerts = _events(_search(client, auditor, f"?type={DCM}|110113"))
    (alert,) = alerts
    assert alert["agent"][0]["who"]["identifier"]["value"] == "thera"
    assert {"search-type", "110132"} <= {c["code"] for c in alert["subtype"]}
    rest = _events(_search(client, auditor, "?type=rest&_count=100"))
    assert alert["id"] not in {e["id"] for e in rest}
    assert {e["type"]["code"] for e in rest} == {"rest"}

    deletes = _events(_search(client, auditor, "?action=D"))
    assert [next(iter(_codes(e, RESTFUL))) for e in deletes] == ["delete"]
    picked = _events(_search(client, auditor, f"?_id={deletes[0]['id']}"))
    assert picked == deletes


def test_date_prefixes_and_precision(client: Any, activity: Activity) -> None:
    auditor = activity.headers["auditor"]
    everything = _events(_search(client, auditor, "?_count=100&_sort=date"))
    middle = everything[len(everything) // 2]["recorded"]
    later = _events(_search(client, auditor, f"?date=ge{middle}&_count=100&_sort=date"))
    earlier = _events(_search(client, auditor, f"?date=lt{middle}&_count=100&_sort=date"))
    assert all(e["recorded"] >= middle for e in later)
    assert all(e["recorded"] < middle for e in earlier)
    # The searches above were recorded after the listing: only compare what it held.
    known = {e["id"] for e in everything}
    assert [e["id"] for e in earlier + later if e["id"] in known] == [e["id"] for e in everything]
    day = middle[:10]
    same_day = _events(_search(client, auditor, f"?date={day}&_count=100"))
    assert known <= {e["id"] for e in same_day}
    window = _events(_search(client, auditor,
                             f"?date=ge{everything[1]['recorded']}&date=le{middle}"
                             "&_count=100&_sort=date"))
    assert [e["id"] for e in window] == [e["id"] for e in everything[1:len(everything) // 2 + 1]]
    assert _events(_search(client, auditor, "?date=2000")) == []
    assert _events(_search(client, auditor, "?date=lt2000-01-01T00:00:00Z")) == []
    year = day[:4]
    assert known <= {e["id"] for e in _events(_search(client, auditor,
                                                      f"?date=eq{year}&_count=100"))}
    assert _events(_search(client, auditor, f"?date=ne{year}")) == []


def test_paging_forward_and_back(client: Any, activity: Activity) -> None:
    auditor = activity.headers["auditor"]
    everything = _events(_search(client, auditor, "?_count=100&_sort=date"))
    edge = everything[-1]["recorded"]
    # A fixed window: the paging requests themselves are recorded after it.
    query = f"?date=le{edge}&_sort=date&_count=3"
    expected = [e["id"] for e in everything]
    pages: list[list[str]] = []
    bundle = _search(client, auditor, query)
    while True:
        assert bundle["total"] == len(expected)
        pages.append([e["id"] for e in _events(bundle)])
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not nxt:
            break
        bundle = _follow(client, auditor, nxt[0])
    assert [i for page in pages for i in page] == expected
    back: list[list[str]] = []
    while True:
        prev = [link["url"] for link in bundle["link"] if link["relation"] == "previous"]
        if not prev:
            break
        bundle = _follow(client, auditor, prev[0])
        back.append([e["id"] for e in _events(bundle)])
    assert back == pages[-2::-1]


def _follow(client: Any, headers: dict[str, str], url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    assert dict(parse_qsl(parts.query))["_cursor"]
    response = client.get(f"{parts.path}?{parts.query}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_bad_values_and_unknown_parameters(client: Any, activity: Activity) -> None:
    auditor = activity.headers["auditor"]
    for query in ("?date=yesterday", "?date=ge2024-13-01", "?outcome=5", "?entity=nonsense",
                  "?agent=Practitioner/a b", "?_sort=agent", "?_count=-1", "?action=X",
                  "?_cursor=zz", "?patient=Patient/"):
        body = _search(client, auditor, query, status=400)
        assert body["resourceType"] == "OperationOutcome", query
    bundle = _search(client, auditor, "?favourite-colour=blue")
    warning = bundle["entry"][-1]
    assert warning["search"]["mode"] == "outcome"
    assert "favourite-colour" in json.dumps(warning["resource"])
    strict = client.get("/fhir/AuditEvent?favourite-colour=blue",
                        headers={**auditor, "Prefer": "handling=strict"})
    assert strict.status_code == 400


def test_who_may_read_the_trail(client: Any, app: Any, bearer_header: Any, engine: Engine,
                                activity: Activity) -> None:
    h = activity.headers
    assert client.get("/fhir/AuditEvent", headers=h["therapist"]).status_code == 403
    assert client.get("/fhir/AuditEvent", headers=h["doc"]).status_code == 403
    assert client.get("/fhir/AuditEvent/1", headers=h["doc"]).status_code == 403
    admin = _events(_search(client, h["admin"], "?_count=100"))
    assert admin, "the refused requests are security events"
    with unit_of_work(engine, write=False) as session:
        for event in admin:
            row = repository.get_record(session, int(event["id"]))
            assert row is not None and row.category == "security"
    every = _events(_search(client, h["auditor"], "?_count=200"))
    assert {e["id"] for e in admin} < {e["id"] for e in every}
    rest_id = next(e["id"] for e in every if e["type"]["code"] == "rest")
    assert client.get(f"/fhir/AuditEvent/{rest_id}", headers=h["admin"]).status_code == 404
    assert client.get(f"/fhir/AuditEvent/{admin[0]['id']}",
                      headers=h["admin"]).status_code == 200
    reader = bearer_header(app, subject="siem", kind="client", scopes="system/AuditEvent.rs")
    assert client.get("/fhir/AuditEvent", headers=reader).status_code == 200
    other = bearer_header(app, subject="etl", kind="client", scopes="system/Patient.rs")
    assert client.get("/fhir/AuditEvent", headers=other).status_code == 403


def test_reading_the_trail_is_recorded(client: Any, engine: Engine, activity: Activity) -> None:
    auditor = activity.headers["auditor"]
    events = _events(_search(client, auditor, "?subtype=create"))
    last = _last_record(engine)
    assert (last.interaction, last.rtype, last.actor_id) == ("search-type", "AuditEvent",
                                                            "auditor")
    assert json.loads(last.body)["detail"]["seqs"] == [int(e["id"]) for e in events]
    read = client.get(f"/fhir/AuditEvent/{events[0]['id']}", headers=auditor)
    assert read.status_code == 200
    AuditEvent.model_validate(read.json())
    assert read.json() == events[0]
    last = _last_record(engine)
    assert (last.interaction, last.rid) == ("read", events[0]["id"])
    assert json.loads(last.body)["detail"]["seqs"] == [int(events[0]["id"])]


def test_read_vread_and_no_writes(client: Any, activity: Activity) -> None:
    auditor = activity.headers["auditor"]
    assert client.get("/fhir/AuditEvent/1/_history/1", headers=auditor).status_code == 200
    assert client.get("/fhir/AuditEvent/1/_history/2", headers=auditor).status_code == 404
    assert client.get("/fhir/AuditEvent/999999", headers=auditor).status_code == 404
    assert client.get("/fhir/AuditEvent/abc", headers=auditor).status_code == 404
    assert client.put("/fhir/AuditEvent/1", json={"resourceType": "AuditEvent", "id": "1"},
                      headers=FHIR_JSON).status_code == 405
    assert client.delete("/fhir/AuditEvent/1").status_code == 405
    posted = client.post("/fhir/AuditEvent/_search", content=b"subtype=delete",
                         headers={**auditor,
                                  "Content-Type": "application/x-www-form-urlencoded"})
    assert posted.status_code == 200, posted.text
    found = _events(posted.json())
    # The observation's delete, and the refused delete of an AuditEvent (405).
    assert sorted(e["outcome"] for e in found) == ["0", "4"]
    assert found == _events(_search(client, auditor, "?subtype=delete"))


def test_agent_practitioner_and_security_rendering(client: Any, app: Any, engine: Engine,
                                                   activity: Activity) -> None:
    # A record whose actor names its Practitioner (and a login-type security event).
    record = {"time": "2024-05-01T10:00:00.000000Z", "category": "security",
              "interaction": "token-issued", "outcome": "success", "status": 200,
              "actor": {"id": "doc", "kind": "user", "display": "Dr Doc",
                        "practitioner": PRACTITIONER, "roles": ["physician"]},
              "source": {"ip": "10.0.0.7", "user_agent": "browser/1"}, "resource": None,
              "patients": [], "request_id": "r1", "purpose_of_use": "TREAT",
              "protected": [], "query": None, "detail": {"grant_type": "password"}}
    columns = {"time": 1714557600000000, "category": "security",
               "interaction": "token-issued", "outcome": "success", "status": 200,
               "actor_id": "doc", "actor_kind": "user", "rtype": None, "rid": None,
               "version_id": None, "request_id": "r1", "purpose": "TREAT", "protected": False}
    with unit_of_work(engine) as session:
        (seq,) = app.state.pipeline.recorder.sequencer.append(
            session, [Pending(record, columns, ())], columns["time"])
    auditor = activity.headers["auditor"]
    # Every record now names its actor's Practitioner, so pick the one appended here.
    found = _events(_search(client, auditor, f"?agent={PRACTITIONER}"))
    (event,) = [e for e in found if e["id"] == str(seq)]
    AuditEvent.model_validate(event)
    assert event["id"] == str(seq)
    assert event["type"]["code"] == "110114" and event["type"]["system"] == DCM
    assert event["recorded"] == record["time"]
    user, app_agent = event["agent"]
    assert user["who"]["reference"] == PRACTITIONER
    assert app_agent["network"] == {"address": "10.0.0.7", "type": "2"}
    assert app_agent["who"]["display"] == "browser/1"
    logins = _events(_search(client, auditor, f"?type=110114&subtype={DCM}|110122"))
    assert [e["id"] for e in logins] == [str(seq)]
    admin = _events(_search(client, activity.headers["admin"], "?date=2024-05"))
    assert [e["id"] for e in admin] == [str(seq)]


def test_outcome_codes() -> None:
    assert [outcome_code(s) for s in (200, 201, 304, 403, 404, 500, 503)] == [
        "0", "0", "0", "4", "4", "8", "8"]


def test_render_of_a_minimal_record_validates() -> None:
    row = repository.AuditRow(
        seq=7, time=0, category="rest", interaction="operation:export", outcome="error",
        status=500, actor_id=None, actor_kind=None, rtype=None, rid=None, version_id=None,
        request_id=None, purpose=None, protected=False,
        body=json.dumps({"time": "1970-01-01T00:00:00.000000Z", "detail": {"reason": "x"}}),
        prev_hash="0" * 64, hash="1" * 64)
    event = render(row)
    AuditEvent.model_validate(event)
    assert event["outcome"] == "8" and event["outcomeDesc"] == "HTTP 500: x"
    assert _codes(event, RESTFUL) == {"operation"}
