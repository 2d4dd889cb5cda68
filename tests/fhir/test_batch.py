"""Batch Bundles (FHIR R4 http.html#transaction, batch rules) over HTTP, on SQLite and
PostgreSQL: each entry succeeds or fails alone, failures carry an OperationOutcome, and a
failed entry's partial writes are rolled back to its savepoint."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Engine
from sqlmodel import Session

from ehr.context import RequestContext
from ehr.errors import Unprocessable
from ehr.store.hooks import Change
from ehr.store.repository import StoredResource
from ehr.store.tables import ResourceRow, ResourceVersionRow

FHIR_JSON = {"Content-Type": "application/fhir+json"}
MRN = "urn:test:mrn"
URN = "urn:uuid:5e0c1f3a-7a2b-4c8e-9d10-000000000001"


def patient(mrn: str, family: str = "Batch") -> dict[str, Any]:
    return {"resourceType": "Patient", "name": [{"family": family}],
            "identifier": [{"system": MRN, "value": mrn}]}


def observation(subject: str, text: str = "pulse") -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": text},
            "subject": {"reference": subject}}


def entry(method: str, url: str, resource: dict[str, Any] | None = None,
          full_url: str | None = None, **request: str) -> dict[str, Any]:
    out: dict[str, Any] = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        out["resource"] = resource
    if full_url:
        out["fullUrl"] = full_url
    return out


def batch(client: Any, *entries: Any) -> list[dict[str, Any]]:
    body = {"resourceType": "Bundle", "type": "batch", "entry": list(entries)}
    response = client.post("/fhir", content=json.dumps(body), headers=FHIR_JSON)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["type"] == "batch-response"
    assert len(result["entry"]) == len(entries)
    return list(result["entry"])


def count(engine: Engine, table: Any = ResourceRow, rtype: str | None = None) -> int:
    t = table.__table__
    query = sa.select(sa.func.count()).select_from(t)
    if rtype:
        query = query.where(t.c.rtype == rtype)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def status(item: dict[str, Any]) -> int:
    return int(item["response"]["status"].split()[0])


def test_failing_entry_does_not_stop_the_others(client: Any, engine: Engine) -> None:
    results = batch(client,
                    entry("POST", "Patient", patient("1")),
                    entry("POST", "Observation", {"resourceType": "Observation"}),
                    entry("POST", "Patient", patient("2")))
    assert [status(r) for r in results] == [201, 422, 201]
    outcome = results[1]["response"]["outcome"]
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["severity"] == "error"
    assert "location" not in results[1]["response"]
    assert count(engine, rtype="Patient") == 2
    assert count(engine, rtype="Observation") == 0


def test_failure_after_a_write_rolls_back_only_that_entry(
    client: Any, app: Any, engine: Engine
) -> None:
    """A rule that fails after the version is stored: its savepoint takes the rows back."""

    def explode_after_store(session: Session, ctx: RequestContext, change: Change) -> None:
        resource = change.resource or {}
        if (resource.get("code") or {}).get("text") == "boom":
            def fail(session: Session, stored: StoredResource) -> None:
                raise Unprocessable("boom after store")
            change.after_store.append(fail)

    app.state.pipeline.rules.register("Observation", explode_after_store)
    results = batch(client,
                    entry("POST", "Observation", observation("Patient/a", "fine")),
                    entry("POST", "Observation", observation("Patient/a", "boom")),
                    entry("POST", "Observation", observation("Patient/a", "also fine")))
    assert [status(r) for r in results] == [201, 422, 201]
    assert "boom after store" in results[1]["response"]["outcome"]["issue"][0]["diagnostics"]
    assert count(engine, rtype="Observation") == 2
    assert count(engine, ResourceVersionRow) == 2


def test_batch_does_not_resolve_references_between_entries(client: Any, engine: Engine) -> None:
    results = batch(client,
                    entry("POST", "Patient", patient("3"), URN),
                    entry("POST", "Observation", observation(URN)))
    assert [status(r) for r in results] == [201, 404]
    assert count(engine) == 1


def test_batch_reads_deletes_and_conditionals(client: Any, engine: Engine) -> None:
    created = client.post("/fhir/Patient", json=patient("4"), headers=FHIR_JSON).json()["id"]
    results = batch(client,
                    entry("GET", f"Patient/{created}"),
                    entry("GET", "Patient/does-not-exist"),
                    entry("PUT", f"Patient?identifier={MRN}|4", patient("4", "Renamed")),
                    entry("POST", "Patient", patient("4"), ifNoneExist=f"identifier={MRN}|4"),
                    entry("DELETE", "Patient/never-was"),
                    {"fullUrl": URN},
                    entry("GET", f"Patient?identifier={MRN}|4"))
    assert [status(r) for r in results] == [200, 404, 200, 200, 200, 400, 200]
    assert results[0]["resource"]["id"] == created
    assert results[1]["response"]["outcome"]["issue"][0]["code"] == "not-found"
    assert results[2]["response"]["location"] == f"Patient/{created}/_history/2"
    assert results[3]["response"]["location"].startswith(f"Patient/{created}/")
    # Batch entries run in the order given: the search sees the rename.
    found = results[6]["resource"]["entry"]
    assert [e["resource"]["name"][0]["family"] for e in found] == ["Renamed"]
    assert count(engine) == 1


def test_batch_resolves_conditional_references_per_entry(client: Any, engine: Engine) -> None:
    org = {"resourceType": "Organization", "identifier": [{"system": "urn:org", "value": "o"}]}
    org_id = client.post("/fhir/Organization", json=org, headers=FHIR_JSON).json()["id"]
    linked = {**patient("5"), "managingOrganization": {"reference":
                                                       "Organization?identifier=urn:org|o"}}
    dangling = {**patient("6"), "managingOrganization": {"reference":
                                                         "Organization?identifier=urn:org|x"}}
    results = batch(client, entry("POST", "Patient", linked), entry("POST", "Patient", dangling))
    assert [status(r) for r in results] == [201, 404]
    location = results[0]["response"]["location"]
    stored = client.get("/fhir/" + "/".join(location.split("/")[:2])).json()
    assert stored["managingOrganization"]["reference"] == f"Organization/{org_id}"
    assert count(engine, rtype="Patient") == 1
