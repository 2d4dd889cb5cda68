"""CRUD over HTTP (FHIR R4 http.html): create, read, vread, update, delete, conditional forms,
Prefer, content negotiation, subsetting and decimal precision. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import pytest

FHIR_JSON = {"Content-Type": "application/fhir+json"}
MRN = "urn:test:mrn"
SUBSETTED = "SUBSETTED"


def patient(family: str = "Chalmers", mrn: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"resourceType": "Patient", "name": [{"family": family,
                                                                  "given": ["Peter"]}]}
    if mrn:
        body["identifier"] = [{"system": MRN, "value": mrn}]
    body.update(extra)
    return body


def create(client: Any, resource: dict[str, Any], **headers: str) -> Any:
    response = client.post(f"/fhir/{resource['resourceType']}", json=resource,
                           headers={**FHIR_JSON, **headers})
    assert response.status_code in (200, 201), response.text
    return response


def history_total(client: Any, path: str = "") -> int:
    response = client.get(f"/fhir/{path}_history" if not path else f"/fhir/{path}/_history")
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def has_subsetted_tag(resource: dict[str, Any]) -> bool:
    return any(t.get("code") == SUBSETTED for t in resource.get("meta", {}).get("tag", []))


# -- create / read / vread ------------------------------------------------------------------


def test_create_assigns_id_version_and_location(client: Any) -> None:
    response = client.post("/fhir/Patient", json=patient(id="client-chosen"), headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    body = response.json()
    rid = body["id"]
    assert rid != "client-chosen"
    assert body["meta"]["versionId"] == "1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
                        body["meta"]["lastUpdated"])
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"].endswith(f"/fhir/Patient/{rid}/_history/1")
    assert response.headers["Location"].startswith("http")
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    assert client.get("/fhir/Patient/client-chosen").status_code == 404


def test_read_returns_same_version_and_headers(client: Any) -> None:
    created = create(client, patient()).json()
    response = client.get(f"/fhir/Patient/{created['id']}")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    assert response.headers["ETag"] == 'W/"1"'
    assert "Last-Modified" in response.headers
    assert response.json() == created


def test_if_none_match_gives_304(client: Any) -> None:
    rid = create(client, patient()).json()["id"]
    response = client.get(f"/fhir/Patient/{rid}", headers={"If-None-Match": 'W/"1"'})
    assert response.status_code == 304
    assert response.content == b""
    stale = client.get(f"/fhir/Patient/{rid}", headers={"If-None-Match": 'W/"7"'})
    assert stale.status_code == 200


def test_vread_each_version(client: Any) -> None:
    created = create(client, patient("One")).json()
    rid = created["id"]
    updated = client.put(f"/fhir/Patient/{rid}", json=patient("Two", id=rid), headers=FHIR_JSON)
    assert updated.status_code == 200
    v1 = client.get(f"/fhir/Patient/{rid}/_history/1")
    v2 = client.get(f"/fhir/Patient/{rid}/_history/2")
    assert v1.status_code == v2.status_code == 200
    assert v1.json()["name"][0]["family"] == "One"
    assert v2.json()["name"][0]["family"] == "Two"
    assert v1.headers["ETag"] == 'W/"1"' and v2.headers["ETag"] == 'W/"2"'
    assert client.get(f"/fhir/Patient/{rid}/_history/3").status_code == 404
    bad = client.get(f"/fhir/Patient/{rid}/_history/abc")
    assert bad.status_code in (400, 404)
    assert bad.json()["resourceType"] == "OperationOutcome"


def test_read_unknown_is_404_outcome(client: Any) -> None:
    response = client.get("/fhir/Patient/does-not-exist")
    assert response.status_code == 404
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "not-found"


# -- update -----------------------------------------------------------------------------------


def test_update_bumps_version_and_honours_if_match(client: Any) -> None:
    rid = create(client, patient()).json()["id"]
    ok = client.put(f"/fhir/Patient/{rid}", json=patient("Second", id=rid),
                    headers={**FHIR_JSON, "If-Match": 'W/"1"'})
    assert ok.status_code == 200, ok.text
    assert ok.json()["meta"]["versionId"] == "2"
    assert ok.headers["ETag"] == 'W/"2"'
    stale = client.put(f"/fhir/Patient/{rid}", json=patient("Third", id=rid),
                       headers={**FHIR_JSON, "If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/fhir/Patient/{rid}").json()["name"][0]["family"] == "Second"
    assert history_total(client, f"Patient/{rid}") == 2


def test_update_as_create_with_client_id(client: Any) -> None:
    response = client.put("/fhir/Patient/my-id-1", json=patient(id="my-id-1"), headers=FHIR_JSON)
    assert response.status_code == 201, response.text
    assert response.headers["ETag"] == 'W/"1"'
    assert response.headers["Location"].endswith("/fhir/Patient/my-id-1/_history/1")
    assert client.get("/fhir/Patient/my-id-1").status_code == 200
    again = client.put("/fhir/Patient/my-id-1", json=patient(id="my-id-1"), headers=FHIR_JSON)
    assert again.status_code == 200
    assert again.json()["meta"]["versionId"] == "2"


def test_update_keeps_client_meta(client: Any) -> None:
    meta = {"profile": ["http://example.org/StructureDefinition/p"],
            "tag": [{"system": "http://example.org/tags", "code": "t1"}],
            "versionId": "99", "lastUpdated": "2001-01-01T00:00:00Z"}
    body = create(client, patient(meta=meta)).json()
    assert body["meta"]["profile"] == meta["profile"]
    assert body["meta"]["tag"] == meta["tag"]
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"] != meta["lastUpdated"]


# -- delete -----------------------------------------------------------------------------------


def test_delete_then_read_is_gone_and_history_shows_it(client: Any) -> None:
    rid = create(client, patient()).json()["id"]
    deleted = client.delete(f"/fhir/Patient/{rid}")
    assert deleted.status_code in (200, 204)
    gone = client.get(f"/fhir/Patient/{rid}")
    assert gone.status_code == 410
    assert gone.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"/fhir/Patient/{rid}/_history/1").status_code == 200
    history = client.get(f"/fhir/Patient/{rid}/_history").json()
    assert history["total"] == 2
    methods = [e["request"]["method"] for e in history["entry"]]
    assert methods == ["DELETE", "POST"]
    assert "resource" not in history["entry"][0]
    again = client.delete(f"/fhir/Patient/{rid}")
    assert again.status_code in (200, 204)
    assert history_total(client, f"Patient/{rid}") == 2


def test_delete_unknown_succeeds_with_a_note(client: Any) -> None:
    # R4 http.html#delete: deleting a resource that does not exist is not an error.
    response = client.delete("/fhir/Patient/nobody")
    assert response.status_code == 200
    issue = response.json()["issue"][0]
    assert (issue["severity"], issue["code"]) == ("information", "not-found")
    assert history_total(client, "Patient") == 0


def test_recreate_after_delete_with_put(client: Any) -> None:
    client.put("/fhir/Patient/p1", json=patient(id="p1"), headers=FHIR_JSON)
    client.delete("/fhir/Patient/p1")
    again = client.put("/fhir/Patient/p1", json=patient("Back", id="p1"), headers=FHIR_JSON)
    assert again.status_code in (200, 201)
    assert again.json()["meta"]["versionId"] == "3"
    assert client.get("/fhir/Patient/p1").json()["name"][0]["family"] == "Back"


# -- conditional interactions -----------------------------------------------------------------


def test_conditional_create(client: Any) -> None:
    cond = {"If-None-Exist": f"identifier={MRN}|A1"}
    first = client.post("/fhir/Patient", json=patient(mrn="A1"), headers={**FHIR_JSON, **cond})
    assert first.status_code == 201
    second = client.post("/fhir/Patient", json=patient(mrn="A1"), headers={**FHIR_JSON, **cond})
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert history_total(client, "Patient") == 1
    create(client, patient(mrn="A1"))  # an unconditional duplicate
    before = history_total(client)
    third = client.post("/fhir/Patient", json=patient(mrn="A1"), headers={**FHIR_JSON, **cond})
    assert third.status_code == 412
    assert third.json()["resourceType"] == "OperationOutcome"
    assert history_total(client) == before


def test_conditional_update(client: Any) -> None:
    url = f"/fhir/Patient?identifier={MRN}|B1"
    created = client.put(url, json=patient("First", mrn="B1"), headers=FHIR_JSON)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    updated = client.put(url, json=patient("Second", mrn="B1"), headers=FHIR_JSON)
    assert updated.status_code == 200, updated.text
    assert updated.json()["id"] == rid
    assert updated.json()["meta"]["versionId"] == "2"
    create(client, patient("Dup", mrn="B1"))
    before = history_total(client)
    several = client.put(url, json=patient("Third", mrn="B1"), headers=FHIR_JSON)
    assert several.status_code == 412
    assert history_total(client) == before


def test_conditional_delete(client: Any) -> None:
    rid = create(client, patient(mrn="C1")).json()["id"]
    create(client, patient(mrn="C2"))
    create(client, patient(mrn="C2"))
    before = history_total(client)
    several = client.delete(f"/fhir/Patient?identifier={MRN}|C2")
    assert several.status_code == 412
    assert history_total(client) == before
    one = client.delete(f"/fhir/Patient?identifier={MRN}|C1")
    assert one.status_code in (200, 204)
    assert client.get(f"/fhir/Patient/{rid}").status_code == 410
    none = client.delete(f"/fhir/Patient?identifier={MRN}|nothing")
    assert none.status_code in (200, 204, 404)
    assert history_total(client) == before + 1


# -- Prefer and content negotiation -----------------------------------------------------------


def test_prefer_return_minimal(client: Any) -> None:
    response = client.post("/fhir/Patient", json=patient(),
                           headers={**FHIR_JSON, "Prefer": "return=minimal"})
    assert response.status_code == 201
    assert response.content == b""
    assert response.headers["Location"]
    rid = response.headers["Location"].split("/Patient/")[1].split("/")[0]
    assert client.get(f"/fhir/Patient/{rid}").status_code == 200


def test_prefer_return_operation_outcome(client: Any) -> None:
    response = client.post("/fhir/Patient", json=patient(),
                           headers={**FHIR_JSON, "Prefer": "return=OperationOutcome"})
    assert response.status_code == 201
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.headers["ETag"] == 'W/"1"'


@pytest.mark.parametrize("ctype", ["application/json", "application/fhir+json; charset=utf-8",
                                   "application/json+fhir"])
def test_json_content_types_accepted(client: Any, ctype: str) -> None:
    response = client.post("/fhir/Patient", content=json.dumps(patient()),
                           headers={"Content-Type": ctype, "Accept": "application/json"})
    assert response.status_code == 201, response.text
    assert response.json()["resourceType"] == "Patient"


@pytest.mark.parametrize("accept", ["application/json", "*/*", "application/fhir+json",
                                    "text/html, application/fhir+json;q=0.9"])
def test_json_accept_values(client: Any, accept: str) -> None:
    rid = create(client, patient()).json()["id"]
    response = client.get(f"/fhir/Patient/{rid}", headers={"Accept": accept})
    assert response.status_code == 200
    assert response.json()["id"] == rid


def test_format_json_overrides_accept(client: Any) -> None:
    rid = create(client, patient()).json()["id"]
    response = client.get(f"/fhir/Patient/{rid}?_format=json",
                          headers={"Accept": "application/xml"})
    assert response.status_code == 200
    assert response.json()["id"] == rid
    fhir = client.get(f"/fhir/Patient/{rid}?_format=application/fhir%2Bjson")
    assert fhir.status_code == 200


def test_head_has_headers_no_body(client: Any) -> None:
    rid = create(client, patient()).json()["id"]
    response = client.head(f"/fhir/Patient/{rid}")
    assert response.status_code == 200
    assert response.headers["ETag"] == 'W/"1"'
    assert response.content == b""


# -- subsetting -------------------------------------------------------------------------------


def rich_patient() -> dict[str, Any]:
    return patient(
        mrn="S1",
        text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">P</div>'},
        gender="female",
        birthDate="1970-01-02",
        contact=[{"name": {"family": "Kin"}}],
        communication=[{"language": {"text": "English"}}],
    )


def test_summary_modes_on_read(client: Any) -> None:
    rid = create(client, rich_patient()).json()["id"]
    full = client.get(f"/fhir/Patient/{rid}").json()
    assert not has_subsetted_tag(full)

    summary = client.get(f"/fhir/Patient/{rid}?_summary=true").json()
    assert has_subsetted_tag(summary)
    assert summary["id"] == rid and summary["name"] == full["name"]
    assert summary["gender"] == "female"
    for absent in ("text", "contact", "communication"):
        assert absent not in summary

    text = client.get(f"/fhir/Patient/{rid}?_summary=text").json()
    assert has_subsetted_tag(text)
    assert text["text"] == full["text"]
    assert "name" not in text and "contact" not in text

    data = client.get(f"/fhir/Patient/{rid}?_summary=data").json()
    assert has_subsetted_tag(data)
    assert "text" not in data
    assert data["contact"] == full["contact"]

    plain = client.get(f"/fhir/Patient/{rid}?_summary=false").json()
    assert plain == full


def test_elements_on_read(client: Any) -> None:
    rid = create(client, rich_patient()).json()["id"]
    body = client.get(f"/fhir/Patient/{rid}?_elements=name,gender").json()
    assert has_subsetted_tag(body)
    assert set(body) == {"resourceType", "id", "meta", "name", "gender"}


def test_summary_and_elements_on_search(client: Any) -> None:
    create(client, rich_patient())
    bundle = client.get("/fhir/Patient?_summary=true").json()
    resource = bundle["entry"][0]["resource"]
    assert has_subsetted_tag(resource) and "text" not in resource and "name" in resource
    bundle = client.get("/fhir/Patient?_elements=birthDate").json()
    resource = bundle["entry"][0]["resource"]
    assert has_subsetted_tag(resource)
    assert set(resource) == {"resourceType", "id", "meta", "birthDate"}


# -- fidelity ---------------------------------------------------------------------------------


def test_decimals_keep_their_precision(client: Any) -> None:
    pid = create(client, patient()).json()["id"]
    raw = ('{"resourceType":"Observation","status":"final",'
           '"code":{"text":"weight"},"subject":{"reference":"Patient/' + pid + '"},'
           '"valueQuantity":{"value":1.50,"unit":"kg"},'
           '"component":[{"code":{"text":"x"},"valueQuantity":{"value":100.000}},'
           '{"code":{"text":"y"},"valueQuantity":{"value":1e2}}]}')
    created = client.post("/fhir/Observation", content=raw, headers=FHIR_JSON)
    assert created.status_code == 201, created.text
    assert '"value":1.50' in created.text.replace(" ", "")
    read = client.get(f"/fhir/Observation/{created.json()['id']}")
    text = read.text.replace(" ", "")
    assert '"value":1.50' in text
    assert '"value":100.000' in text
    parsed = json.loads(read.text, parse_float=Decimal)
    assert str(parsed["valueQuantity"]["value"]) == "1.50"
    search = client.get(f"/fhir/Observation?subject=Patient/{pid}")
    assert '"value":1.50' in search.text.replace(" ", "")


def test_unicode_round_trips(client: Any) -> None:
    rid = create(client, patient("Müller-Łukasz 李")).json()["id"]
    body = client.get(f"/fhir/Patient/{rid}").json()
    assert body["name"][0]["family"] == "Müller-Łukasz 李"


def test_vread_of_deletion_is_410(client: Any) -> None:
    rid = create(client, patient()).json()["id"]
    client.delete(f"/fhir/Patient/{rid}")
    response = client.get(f"/fhir/Patient/{rid}/_history/2")
    assert response.status_code == 410
    assert response.json()["resourceType"] == "OperationOutcome"


def test_recreate_after_delete_is_201_in_history(client: Any) -> None:
    client.put("/fhir/Patient/p2", json=patient(id="p2"), headers=FHIR_JSON)
    client.delete("/fhir/Patient/p2")
    again = client.put("/fhir/Patient/p2", json=patient(id="p2"), headers=FHIR_JSON)
    assert again.status_code == 201
    entries = client.get("/fhir/Patient/p2/_history").json()["entry"]
    assert [e["response"]["status"].split()[0] for e in entries] == ["201", "410", "201"]


def test_if_match_on_unknown_resource_is_412(client: Any) -> None:
    before = history_total(client)
    response = client.put("/fhir/Patient/ghost", json=patient(id="ghost"),
                          headers={**FHIR_JSON, "If-Match": 'W/"1"'})
    assert response.status_code == 412
    assert history_total(client) == before
    assert client.get("/fhir/Patient/ghost").status_code == 404


def test_update_with_return_minimal(client: Any) -> None:
    rid = create(client, patient()).json()["id"]
    response = client.put(f"/fhir/Patient/{rid}", json=patient("Min", id=rid),
                          headers={**FHIR_JSON, "Prefer": "return=minimal"})
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["ETag"] == 'W/"2"'


def test_request_id_is_echoed(client: Any) -> None:
    response = client.get("/fhir/metadata", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    assert client.get("/fhir/Patient/none").headers["X-Request-ID"]


@pytest.mark.parametrize("value", ["bogus", "count", ""])
def test_bad_summary_on_read_is_400(client: Any, value: str) -> None:
    rid = create(client, patient()).json()["id"]
    response = client.get(f"/fhir/Patient/{rid}?_summary={value}")
    assert response.status_code == 400
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["expression"] == ["_summary"]
