"""``GET /fhir/metadata`` is a valid, generated CapabilityStatement, and the operations it
advertises (``$validate``) work over HTTP. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement

from ehr.fhir.resource_types import R4_RESOURCE_TYPES
from ehr.fhir.search import search_params_for

FHIR_JSON = {"Content-Type": "application/fhir+json"}
NOT_STORED = {"Parameters", "OperationOutcome"}


@pytest.fixture
def statement(client: Any) -> dict[str, Any]:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    return dict(response.json())


def resources(statement: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["type"]: r for r in statement["rest"][0]["resource"]}


def test_is_valid_r4b_capability_statement(statement: dict[str, Any]) -> None:
    parsed = CapabilityStatement.model_validate(statement)
    assert parsed.kind == "instance"
    assert parsed.fhirVersion == "4.0.1"
    assert "application/fhir+json" in statement["format"]
    assert statement["rest"][0]["mode"] == "server"
    assert statement["implementation"]["url"].endswith("/fhir")


def test_patient_search_params(statement: dict[str, Any]) -> None:
    patient = resources(statement)["Patient"]
    names = {p["name"]: p["type"] for p in patient["searchParam"]}
    for name, kind in (("identifier", "token"), ("name", "string"), ("family", "string"),
                       ("given", "string"), ("birthdate", "date"), ("gender", "token"),
                       ("_id", "token"), ("_lastUpdated", "date")):
        assert names.get(name) == kind, name
    assert len(patient["searchParam"]) == len(names), "duplicate search params"


def test_search_params_come_from_the_search_engine(statement: dict[str, Any]) -> None:
    for rtype, entry in resources(statement).items():
        listed = {p["name"] for p in entry.get("searchParam", [])}
        defined = {p.name for p in search_params_for(rtype)}
        assert defined <= listed, (rtype, defined - listed)


def test_every_routable_type_is_listed(statement: dict[str, Any]) -> None:
    assert set(resources(statement)) == set(R4_RESOURCE_TYPES) - NOT_STORED


def test_interactions_per_type(statement: dict[str, Any]) -> None:
    by_type = resources(statement)
    codes = {t: {i["code"] for i in r["interaction"]} for t, r in by_type.items()}
    full = {"read", "vread", "update", "delete", "create", "search-type", "history-instance",
            "history-type"}
    assert full <= codes["Patient"]
    assert full <= codes["Observation"]
    assert {"read", "search-type"} <= codes["AuditEvent"]
    assert not {"create", "update", "delete"} & codes["AuditEvent"]
    system = {i["code"] for i in statement["rest"][0]["interaction"]}
    assert {"transaction", "batch", "history-system", "search-system"} <= system


def test_interactions_match_what_the_router_allows(client: Any, statement: dict[str, Any]) -> None:
    by_type = resources(statement)
    for rtype in ("AuditEvent", "Patient"):
        codes = {i["code"] for i in by_type[rtype]["interaction"]}
        response = client.post(f"/fhir/{rtype}", json={"resourceType": rtype},
                               headers=FHIR_JSON)
        if "create" in codes:
            assert response.status_code != 405
        else:
            assert response.status_code == 405


def test_validate_operation_is_listed(statement: dict[str, Any]) -> None:
    patient_ops = {op["name"] for op in resources(statement)["Patient"].get("operation", [])}
    assert "validate" in patient_ops


def test_metadata_refuses_other_methods(client: Any) -> None:
    response = client.post("/fhir/metadata", json={}, headers=FHIR_JSON)
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


# -- $validate --------------------------------------------------------------------------------


def test_validate_valid_resource(client: Any) -> None:
    before = client.get("/fhir/_history").json()["total"]
    response = client.post("/fhir/Patient/$validate",
                           json={"resourceType": "Patient", "gender": "female"},
                           headers=FHIR_JSON)
    assert response.status_code == 200
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert all(i["severity"] in ("information", "warning") for i in body["issue"])
    assert client.get("/fhir/_history").json()["total"] == before


def test_validate_invalid_resource(client: Any) -> None:
    response = client.post("/fhir/Patient/$validate",
                           json={"resourceType": "Patient", "gender": "banana",
                                 "birthDate": "yesterday"},
                           headers=FHIR_JSON)
    assert response.status_code == 200
    body = response.json()
    errors = [i for i in body["issue"] if i["severity"] in ("error", "fatal")]
    exprs = {e for i in errors for e in i.get("expression", [])}
    assert {"Patient.gender", "Patient.birthDate"} <= exprs, body


def test_validate_parameters_form(client: Any) -> None:
    wrapped = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Observation", "status": "bogus",
                                          "code": {"text": "x"}}},
        {"name": "mode", "valueCode": "create"},
    ]}
    response = client.post("/fhir/Observation/$validate", json=wrapped, headers=FHIR_JSON)
    assert response.status_code == 200
    exprs = {e for i in response.json()["issue"] for e in i.get("expression", [])}
    assert "Observation.status" in exprs
    good = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Observation", "status": "final",
                                          "code": {"text": "x"}}}]}
    ok = client.post("/fhir/Observation/$validate", json=good, headers=FHIR_JSON).json()
    assert all(i["severity"] == "information" for i in ok["issue"])
    empty = client.post("/fhir/Observation/$validate",
                        json={"resourceType": "Parameters", "parameter": []}, headers=FHIR_JSON)
    assert empty.status_code == 400


def test_validate_type_mismatch_and_instance_level(client: Any) -> None:
    mismatch = client.post("/fhir/Observation/$validate", json={"resourceType": "Patient"},
                           headers=FHIR_JSON)
    assert mismatch.status_code in (200, 400)
    assert any(i["severity"] == "error" for i in mismatch.json()["issue"])
    client.put("/fhir/Patient/v1", json={"resourceType": "Patient", "id": "v1"},
               headers=FHIR_JSON)
    inst = client.post("/fhir/Patient/v1/$validate",
                       json={"resourceType": "Patient", "id": "v1"}, headers=FHIR_JSON)
    assert inst.status_code == 200
    assert all(i["severity"] == "information" for i in inst.json()["issue"])
    wrong_id = client.post("/fhir/Patient/v1/$validate",
                           json={"resourceType": "Patient", "id": "v2"}, headers=FHIR_JSON)
    assert any(i["severity"] == "error" for i in wrong_id.json()["issue"])
    get = client.get("/fhir/Patient/$validate")
    assert get.status_code == 405
