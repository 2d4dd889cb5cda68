"""Leak tests (issue 3 items 5, 6, 12): a physician on patient A's team but not on B's learns
nothing about B through includes, chains, ``_has``, history, vread, deleted records,
transactions, batches, conditional interactions, paging totals or sorting."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

FHIR_JSON = {"Content-Type": "application/fhir+json"}
MRN = "urn:test:mrn"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NOWHERE = "00000000-0000-4000-8000-000000000000"


def post(client: Any, resource: dict[str, Any]) -> str:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def obs(subject: str, code: str, performer: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{subject}"},
        "effectiveDateTime": "2024-03-01T10:00:00Z"}
    if performer:
        body["performer"] = [{"reference": f"Patient/{performer}"}]
    return body


@dataclass
class Data:
    a: str
    b: str
    obs_a: str  # A's, performed by B (an _include target that belongs to B)
    obs_b: str  # B's, performed by A (a _revinclude source that belongs to B)
    deleted_b: str
    headers: dict[str, str]


@pytest.fixture
def data(app: Any, client: Any, bearer_header: Any) -> Data:
    a = post(client, {"resourceType": "Patient", "name": [{"family": "Visible"}],
                      "identifier": [{"system": MRN, "value": "A-1"}]})
    b = post(client, {"resourceType": "Patient", "name": [{"family": "Secretname"}],
                      "identifier": [{"system": MRN, "value": "B-123"}]})
    post(client, {"resourceType": "CareTeam", "status": "active",
                  "subject": {"reference": f"Patient/{a}"},
                  "participant": [{"member": {"reference": "Practitioner/doc"}}]})
    obs_a = post(client, obs(a, "8867-4", performer=b))
    obs_b = post(client, obs(b, "secret-code", performer=a))
    deleted_b = post(client, obs(b, "8867-4"))
    assert client.delete(f"/fhir/Observation/{deleted_b}").status_code == 200
    headers = {**FHIR_JSON, **bearer_header(
        app, subject="doc", kind="user", scopes="user/*.cruds", roles=("physician",),
        practitioner="Practitioner/doc")}
    return Data(a, b, obs_a, obs_b, deleted_b, headers)


def secrets(d: Data) -> tuple[str, ...]:
    # B's id itself is no secret to this user: A's Observation names B as its performer.
    return (d.obs_b, d.deleted_b, "Secretname", "B-123", "secret-code")


def _scrub(node: Any) -> Any:
    """The body without paging links (they echo the query the caller wrote)."""
    if isinstance(node, dict):
        return {k: _scrub(v) for k, v in node.items() if k != "link"}
    if isinstance(node, list):
        return [_scrub(v) for v in node]
    return node


def _resources(node: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if "resourceType" in node and "id" in node:
            found.append(node)
        for value in node.values():
            found += _resources(value)
    elif isinstance(node, list):
        for value in node:
            found += _resources(value)
    return found


def assert_silent(d: Data, text: str) -> None:
    body = _scrub(json.loads(text))
    scrubbed = json.dumps(body)
    for secret in secrets(d):
        assert secret not in scrubbed, f"{secret} leaked in {scrubbed[:600]}"
    assert d.b not in {r["id"] for r in _resources(body)}


def get(client: Any, d: Data, url: str, status: int = 200) -> dict[str, Any]:
    response = client.get(url, headers=d.headers)
    assert response.status_code == status, response.text
    assert_silent(d, response.text)
    return dict(response.json())


def entry_ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if "resource" in e]


def same_as_missing(client: Any, d: Data, url: str, missing_url: str) -> None:
    hidden = client.get(url, headers=d.headers)
    missing = client.get(missing_url, headers=d.headers)
    assert hidden.status_code == missing.status_code == 404, hidden.text
    assert UUID.sub("<id>", hidden.text) == UUID.sub("<id>", missing.text)


def test_include_and_revinclude(client: Any, data: Data) -> None:
    d = data
    for url in ("/fhir/Observation?_include=Observation:performer",
                "/fhir/Observation?_include=Observation:performer:Patient",
                f"/fhir/Observation?_id={d.obs_a}&_include=*",
                "/fhir/Observation?_include=Observation:patient&_include=Observation:performer"):
        bundle = get(client, d, url)
        assert d.obs_a in entry_ids(bundle)
    for url in (f"/fhir/Patient?_id={d.a}&_revinclude=Observation:performer",
                "/fhir/Patient?_revinclude=Observation:performer&_revinclude=Observation:subject"):
        bundle = get(client, d, url)
        assert d.a in entry_ids(bundle)


def test_chains(client: Any, data: Data) -> None:
    d = data
    for url in ("/fhir/Observation?patient.name=Secretname",
                f"/fhir/Observation?subject:Patient.identifier={MRN}|B-123",
                "/fhir/Observation?performer:Patient.name=Secretname",
                f"/fhir/Observation?performer:Patient.identifier={MRN}|B-123"):
        bundle = get(client, d, url + "&_total=accurate")
        assert bundle["total"] == 0 and "entry" not in bundle
    # The same chain on a visible target still works.
    assert get(client, d, "/fhir/Observation?patient.name=Visible")["total"] == 1


def test_has(client: Any, data: Data) -> None:
    d = data
    bundle = get(client, d, "/fhir/Patient?_has:Observation:patient:code=8867-4&_total=accurate")
    assert entry_ids(bundle) == [d.a] and bundle["total"] == 1
    # B's Observation (performed by A) must not make A match either.
    bundle = get(client, d, "/fhir/Patient?_has:Observation:performer:code=secret-code")
    assert bundle["total"] == 0
    counted = get(client, d, "/fhir/Patient?_has:Observation:subject:code=8867-4&_summary=count")
    assert counted["total"] == 1


def test_history(client: Any, data: Data) -> None:
    d = data
    for url in ("/fhir/Observation/_history", "/fhir/_history", "/fhir/Patient/_history"):
        bundle = get(client, d, url)
        assert bundle["total"] == len(bundle.get("entry", []))
        assert {e["fullUrl"].rsplit("/", 1)[-1] for e in bundle.get("entry", [])} <= {
            d.a, d.obs_a, *[v for v in entry_ids(bundle)]}
    assert get(client, d, "/fhir/Observation/_history")["total"] == 1
    same_as_missing(client, d, f"/fhir/Observation/{d.obs_b}/_history",
                    f"/fhir/Observation/{NOWHERE}/_history")
    same_as_missing(client, d, f"/fhir/Patient/{d.b}/_history",
                    f"/fhir/Patient/{NOWHERE}/_history")


def test_vread_and_deleted(client: Any, data: Data) -> None:
    d = data
    same_as_missing(client, d, f"/fhir/Observation/{d.obs_b}/_history/1",
                    f"/fhir/Observation/{NOWHERE}/_history/1")
    same_as_missing(client, d, f"/fhir/Patient/{d.b}/_history/1",
                    f"/fhir/Patient/{NOWHERE}/_history/1")
    # B's deleted Observation: 404 (not 410) for an outsider, 410 for someone entitled.
    same_as_missing(client, d, f"/fhir/Observation/{d.deleted_b}",
                    f"/fhir/Observation/{NOWHERE}")
    same_as_missing(client, d, f"/fhir/Observation/{d.deleted_b}/_history/2",
                    f"/fhir/Observation/{NOWHERE}/_history/2")
    assert client.get(f"/fhir/Observation/{d.deleted_b}").status_code == 410


def test_writes_to_hidden_records_read_as_missing(client: Any, data: Data) -> None:
    d = data
    hidden = client.delete(f"/fhir/Observation/{d.obs_b}", headers=d.headers)
    missing = client.delete(f"/fhir/Observation/{NOWHERE}", headers=d.headers)
    assert hidden.status_code == missing.status_code
    assert UUID.sub("<id>", hidden.text) == UUID.sub("<id>", missing.text)
    gone = client.delete(f"/fhir/Observation/{d.deleted_b}", headers=d.headers)
    assert UUID.sub("<id>", gone.text) == UUID.sub("<id>", missing.text)
    assert client.get(f"/fhir/Observation/{d.obs_b}").status_code == 200  # untouched
    # An If-Match update must not reveal the current version (412) of a hidden record.
    stale = client.put(f"/fhir/Observation/{d.obs_b}", json={**obs(d.a, "x"), "id": d.obs_b},
                       headers={**d.headers, "If-Match": 'W/"7"'})
    not_known = client.get(f"/fhir/Observation/{NOWHERE}", headers=d.headers)
    assert stale.status_code == 404, stale.text
    assert UUID.sub("<id>", stale.text) == UUID.sub("<id>", not_known.text)
    plain = client.put(f"/fhir/Observation/{d.obs_b}", json={**obs(d.a, "x"), "id": d.obs_b},
                       headers=d.headers)
    assert plain.status_code == 404
    assert client.get(f"/fhir/Observation/{d.obs_b}").json()["code"]["coding"][0]["code"] == \
        "secret-code"


def test_conditional_interactions_treat_hidden_as_no_match(client: Any, data: Data) -> None:
    d = data
    created = client.post("/fhir/Patient", json={
        "resourceType": "Patient", "identifier": [{"system": MRN, "value": "B-123"}]},
        headers={**d.headers, "If-None-Exist": f"identifier={MRN}|B-123"})
    assert created.status_code == 201, created.text
    assert created.json()["id"] != d.b
    assert "Secretname" not in created.text
    removed = client.delete("/fhir/Observation?code=secret-code", headers=d.headers)
    assert removed.status_code == 200
    assert client.get(f"/fhir/Observation/{d.obs_b}").status_code == 200
    upserted = client.put("/fhir/Observation?code=secret-code", json=obs(d.a, "secret-code"),
                          headers=d.headers)
    assert upserted.status_code == 201, upserted.text
    assert upserted.json()["id"] != d.obs_b


def test_transaction_and_batch(client: Any, data: Data) -> None:
    d = data

    def bundle(kind: str, *entries: dict[str, Any]) -> Any:
        return client.post("/fhir", json={"resourceType": "Bundle", "type": kind,
                                          "entry": list(entries)}, headers=d.headers)

    def read(url: str) -> dict[str, Any]:
        return {"request": {"method": "GET", "url": url}}

    hidden = bundle("transaction", read(f"Patient/{d.b}"))
    missing = bundle("transaction", read(f"Patient/{NOWHERE}"))
    assert hidden.status_code == missing.status_code == 404
    assert UUID.sub("<id>", hidden.text) == UUID.sub("<id>", missing.text)

    search = bundle("transaction", read(f"Observation?subject=Patient/{d.b}"),
                    read("Observation?patient.name=Secretname"), read("Observation"))
    assert search.status_code == 200, search.text
    assert_silent(d, search.text)
    totals = [e["resource"]["total"] for e in search.json()["entry"]]
    assert totals == [0, 0, 1]

    update = bundle("transaction", {"resource": {**obs(d.a, "x"), "id": d.obs_b},
                                    "request": {"method": "PUT",
                                                "url": f"Observation/{d.obs_b}"}})
    assert update.status_code == 404
    assert_silent(d, update.text.replace(d.obs_b, ""))

    # A conditional reference to B's identifier resolves like an identifier nobody has.
    def conditional(identifier: str) -> Any:
        body = {**obs(d.a, "8867-4"), "subject": {"reference": f"Patient?identifier={identifier}"}}
        return bundle("transaction", {"resource": body,
                                      "request": {"method": "POST", "url": "Observation"}})

    to_b, to_nobody = conditional(f"{MRN}|B-123"), conditional(f"{MRN}|B-124")
    assert to_b.status_code == to_nobody.status_code == 404, to_b.text
    assert to_b.text.replace("B-123", "B-124") == to_nobody.text

    batch = bundle("batch", read(f"Patient/{d.b}"), read(f"Observation/{d.obs_b}/_history/1"),
                   read(f"Observation?_id={d.obs_b}"), read(f"Patient/{d.a}"),
                   {"request": {"method": "DELETE", "url": f"Observation/{d.obs_b}"}})
    assert batch.status_code == 200
    text = batch.text.replace(f"Patient/{d.b}", "").replace(f"Observation/{d.obs_b}", "")
    assert_silent(d, text.replace(f"_id={d.obs_b}", ""))
    statuses = [e["response"]["status"][:3] for e in batch.json()["entry"]]
    assert statuses[:2] == ["404", "404"] and statuses[3] == "200"
    assert batch.json()["entry"][2]["resource"]["total"] == 0
    assert client.get(f"/fhir/Observation/{d.obs_b}").status_code == 200


def test_sort_paging_and_system_search(client: Any, data: Data) -> None:
    d = data
    for sort in ("-date", "code", "-_lastUpdated", "patient"):
        bundle = get(client, d, f"/fhir/Observation?_sort={sort}&_total=accurate")
        assert entry_ids(bundle) == [d.obs_a] and bundle["total"] == 1
    page = get(client, d, "/fhir/Observation?_count=1&_total=accurate")
    assert page["total"] == 1
    assert not [link for link in page["link"] if link["relation"] == "next"]
    system = get(client, d, f"/fhir?_id={d.b},{d.obs_b},{d.a}&_total=accurate")
    assert entry_ids(system) == [d.a] and system["total"] == 1
    posted = client.post("/fhir/Observation/_search", content="code=secret-code",
                         headers={**d.headers,
                                  "Content-Type": "application/x-www-form-urlencoded"})
    assert posted.status_code == 200 and posted.json()["total"] == 0
