"""Bulk Data ``$export`` (issue 7 item 7): async kick-off, polling, NDJSON, labels, scopes."""

from __future__ import annotations

import json
import time
from typing import Any

from ehr_testing import sealed

from ehr.audit import repository
from ehr.audit.repository import AuditFilter, SortKey
from ehr.clinical.terminology import ACT_CODE
from ehr.db import unit_of_work
from ehr.fhir.reader import REDISCLOSURE_NOTICE

ASYNC = {"Prefer": "respond-async"}
FHIR_JSON = {"Content-Type": "application/fhir+json"}
PSYTHPN = {"system": ACT_CODE, "code": "PSYTHPN"}


def post(client: Any, resource: dict[str, Any]) -> str:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource,
                           headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def seed(client: Any) -> dict[str, str]:
    pid = post(client, {"resourceType": "Patient", "name": [{"family": "Bulk"}]})
    other = post(client, {"resourceType": "Patient", "name": [{"family": "Else"}]})
    obs = post(client, {"resourceType": "Observation", "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                        "subject": {"reference": f"Patient/{pid}"}})
    secret = post(client, {
        "resourceType": "DocumentReference", "status": "current", "meta": {"security": [PSYTHPN]},
        "subject": {"reference": f"Patient/{pid}"},
        "content": [{"attachment": {"contentType": "text/plain", "data": "c2VjcmV0"}}]})
    group = post(client, {"resourceType": "Group", "type": "person", "actual": True,
                          "member": [{"entity": {"reference": f"Patient/{pid}"}}]})
    return {"patient": pid, "other": other, "obs": obs, "secret": secret, "group": group}


def run_export(client: Any, path: str, headers: dict[str, str] | None = None,
               **params: str) -> dict[str, Any]:
    kick = client.get(path, params=params, headers={**ASYNC, **(headers or {})})
    assert kick.status_code == 202, kick.text
    status_url = kick.headers["content-location"].removeprefix("http://testserver")
    deadline = time.monotonic() + 30
    while True:
        status = client.get(status_url, headers=headers or {})
        if status.status_code == 200:
            break
        assert status.status_code == 202, status.text
        assert time.monotonic() < deadline, "export did not finish"
        time.sleep(0.05)
    manifest = status.json()
    manifest["status_url"] = status_url
    return manifest


def lines(client: Any, manifest: dict[str, Any], headers: dict[str, str] | None = None
          ) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for item in manifest["output"]:
        response = client.get(item["url"].removeprefix("http://testserver"), headers=headers or {})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+ndjson")
        rows = [json.loads(line) for line in response.text.splitlines() if line]
        assert len(rows) == item["count"]
        out[item["type"]] = rows
    return out


def test_system_export_writes_ndjson_without_psychotherapy_notes(client: Any) -> None:
    made = seed(client)
    manifest = run_export(client, "/fhir/$export")
    assert manifest["requiresAccessToken"] is True
    assert manifest["request"].endswith("/$export")
    files = lines(client, manifest)
    assert {p["id"] for p in files["Patient"]} == {made["patient"], made["other"]}
    assert [o["id"] for o in files["Observation"]] == [made["obs"]]
    assert all(d["id"] != made["secret"] for d in files.get("DocumentReference", []))


def test_part2_records_come_with_the_redisclosure_notice(client: Any) -> None:
    made = seed(client)
    plain = run_export(client, "/fhir/$export")
    assert plain["error"] == []
    sud = post(client, {"resourceType": "Observation", "status": "final",
                        "meta": {"security": [{"system": ACT_CODE, "code": "SUD"}]},
                        "code": {"text": "Alcohol use disorder screening"},
                        "subject": {"reference": f"Patient/{made['patient']}"}})
    # Outside the treating team a system client gets Part 2 records only under a Consent.
    hidden = run_export(client, "/fhir/$export")
    assert sud not in {o["id"] for o in lines(client, hidden)["Observation"]}
    assert hidden["error"] == []
    post(client, {"resourceType": "Consent", "status": "active",
                  "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/"
                                        "consentscope", "code": "patient-privacy"}]},
                  "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                  "patient": {"reference": f"Patient/{made['patient']}"},
                  "provision": {"type": "permit",
                                "actor": [{"role": {"text": "recipient"},
                                           "reference": {"reference": "Device/test-suite"}}]}})
    manifest = run_export(client, "/fhir/$export")
    assert sud in {o["id"] for o in lines(client, manifest)["Observation"]}
    assert "OperationOutcome" not in {o["type"] for o in manifest["output"]}
    [message] = manifest["error"]
    assert message["type"] == "OperationOutcome" and message["count"] == 1
    response = client.get(message["url"].removeprefix("http://testserver"))
    assert response.status_code == 200
    [outcome] = [json.loads(line) for line in response.text.splitlines() if line]
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["diagnostics"] == REDISCLOSURE_NOTICE
    # An export without the labelled record (a type filter) carries no notice.
    assert run_export(client, "/fhir/$export", _type="Patient")["error"] == []


def test_type_and_since_filters(client: Any) -> None:
    made = seed(client)
    only = run_export(client, "/fhir/$export", _type="Observation")
    assert [o["type"] for o in only["output"]] == ["Observation"]
    later = run_export(client, "/fhir/$export", _since="2999-01-01T00:00:00Z")
    assert later["output"] == []
    assert made


def test_group_export_covers_its_members_only(client: Any) -> None:
    made = seed(client)
    manifest = run_export(client, f"/fhir/Group/{made['group']}/$export")
    files = lines(client, manifest)
    assert [p["id"] for p in files["Patient"]] == [made["patient"]]
    assert made["other"] not in json.dumps(files)


def test_scopes_limit_the_types(app: Any, client: Any, bearer_header: Any) -> None:
    seed(client)
    narrow = bearer_header(app, subject="analytics", kind="client",
                           scopes="system/Observation.rs")
    manifest = run_export(client, "/fhir/$export", narrow)
    assert [o["type"] for o in manifest["output"]] == ["Observation"]
    refused = client.get("/fhir/$export", params={"_type": "Patient"},
                         headers={**ASYNC, **narrow})
    assert refused.status_code == 403
    # Another client cannot poll or download someone else's export.
    other = bearer_header(app, subject="intruder", kind="client", scopes="system/*.rs")
    assert client.get(manifest["status_url"], headers=other).status_code == 404
    url = manifest["output"][0]["url"].removeprefix("http://testserver")
    assert client.get(url, headers=other).status_code == 404


def test_kick_off_errors(app: Any, client: Any, bearer_header: Any) -> None:
    assert client.get("/fhir/$export").status_code == 400  # no Prefer: respond-async
    bad_format = client.get("/fhir/$export", params={"_outputFormat": "text/csv"},
                            headers=ASYNC)
    assert bad_format.status_code == 400
    assert bad_format.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/$export", params={"_typeFilter": "x"},
                      headers=ASYNC).status_code == 400
    user = bearer_header(app, subject="drbulk", kind="user", scopes="user/*.rs",
                         roles=("physician",))
    assert client.get("/fhir/$export", headers={**ASYNC, **user}).status_code == 403
    assert client.get("/fhir/bulk-status/" + "0" * 32).status_code == 404
    assert client.get("/fhir/bulk-status/nonsense").status_code == 404


def test_cancel_deletes_the_job(client: Any) -> None:
    seed(client)
    manifest = run_export(client, "/fhir/$export")
    assert client.delete(manifest["status_url"]).status_code == 202
    assert client.get(manifest["status_url"]).status_code == 404


def test_export_is_audited_with_its_patients(app: Any, client: Any) -> None:
    made = seed(client)
    manifest = run_export(client, "/fhir/Patient/$export")
    lines(client, manifest)
    with unit_of_work(sealed(app.state.engine, app)) as session:
        events = [r for r in repository.stream(session, AuditFilter(), [SortKey("seq", False)])
                  if r.interaction == "operation:export"]
    phases = [json.loads(r.body)["detail"]["phase"] for r in events]
    assert phases[0] == "kick-off" and "completed" in phases and "download" in phases
    done = next(r for r in events if json.loads(r.body)["detail"]["phase"] == "completed")
    assert made["patient"] in json.loads(done.body)["patients"]
