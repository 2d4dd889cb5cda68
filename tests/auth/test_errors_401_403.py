"""401 and 403 on /fhir (issue 3 item 11): no or bad token is 401 with a Bearer challenge and an
OperationOutcome; a refused interaction is 403 with an OperationOutcome that says nothing about
the data; the capability statement and SMART configuration need no token."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest
from ehr_testing import BASE

from ehr.auth.keys import generate_pem, server_key_from_pem
from ehr.auth.policy_table import DIRECTORY_TYPES
from ehr.auth.scopes import ScopeSet
from ehr.auth.tokens import ServerUrls, TokenService
from ehr.fhir.capability import NOT_STORED
from ehr.fhir.resource_types import R4_RESOURCE_TYPES

FHIR_JSON = {"Content-Type": "application/fhir+json"}
NO_TOKEN = {"Authorization": ""}
# AuditEvent is left out: the audit trail shows administrators its security events (audit issue).
CLINICAL_TYPES = sorted(R4_RESOURCE_TYPES - NOT_STORED - DIRECTORY_TYPES - {"AuditEvent"})


def token_from(service: TokenService, base: str = BASE, **claims: Any) -> dict[str, str]:
    issued = service.issue(ServerUrls.for_fhir_base(base), subject="mallory", kind="user",
                           scopes=ScopeSet.parse("user/*.cruds"),
                           roles=frozenset({"physician"}), **claims)
    return {"Authorization": f"Bearer {issued.access_token}"}


def forged_headers(app: Any) -> dict[str, dict[str, str]]:
    key = app.state.auth.key
    other = server_key_from_pem(generate_pem())
    past = TokenService(key, ttl_seconds=60, clock=lambda: time.time() - 3600)
    valid = token_from(app.state.auth.tokens)["Authorization"]
    header, payload, signature = valid.removeprefix("Bearer ").split(".")
    return {
        "no token": NO_TOKEN,
        "basic scheme": {"Authorization": "Basic bWFsbG9yeTpzZWNyZXQ="},
        "bearer without token": {"Authorization": "Bearer"},
        "two tokens": {"Authorization": f"{valid} {valid.removeprefix('Bearer ')}"},
        "not a jwt": {"Authorization": "Bearer not.a.jwt"},
        "expired": token_from(past),
        "another key": token_from(TokenService(other)),
        "another key, our kid": token_from(
            TokenService(dataclasses.replace(other, kid=key.kid))),
        "wrong audience": token_from(app.state.auth.tokens, base="http://elsewhere/fhir"),
        "tampered payload": {"Authorization": f"Bearer {header}.{payload[:-2]}xx.{signature}"},
        "no signature": {"Authorization": f"Bearer {header}.{payload}."},
    }


@pytest.mark.parametrize("url", ["/fhir/Patient", "/fhir/Patient/some-id", "/fhir",
                                 "/fhir/_history", "/fhir/Observation/_history"])
def test_bad_tokens_are_401(app: Any, client: Any, url: str) -> None:
    for name, headers in forged_headers(app).items():
        response = client.get(url, headers=headers)
        assert response.status_code == 401, (name, response.text)
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), name
        body = response.json()
        assert body["resourceType"] == "OperationOutcome", name
        assert body["issue"][0]["code"] == "login"
    # The genuine token still works, so the cases above fail for the reason they name.
    good = token_from(app.state.auth.tokens)
    assert client.get("/fhir/Patient", headers=good).status_code == 200


def test_writes_without_token_are_401(client: Any) -> None:
    created = client.post("/fhir/Patient", json={"resourceType": "Patient"},
                          headers={**FHIR_JSON, **NO_TOKEN})
    assert created.status_code == 401
    assert client.get("/fhir/Patient").json().get("total", 0) == 0


def test_public_paths_need_no_token(client: Any) -> None:
    metadata = client.get("/fhir/metadata", headers=NO_TOKEN)
    assert metadata.status_code == 200
    assert metadata.json()["resourceType"] == "CapabilityStatement"
    smart = client.get("/fhir/.well-known/smart-configuration", headers=NO_TOKEN)
    assert smart.status_code == 200
    assert smart.json()["token_endpoint"].endswith("/auth/token")


def test_admin_is_refused_every_clinical_type(app: Any, client: Any,
                                              bearer_header: Any) -> None:
    pid = client.post("/fhir/Patient", json={"resourceType": "Patient"},
                      headers=FHIR_JSON).json()["id"]
    admin = {**FHIR_JSON, **bearer_header(app, subject="root", kind="user", scopes="",
                                          roles=("admin",), practitioner="Practitioner/root")}
    refused: dict[str, int] = {}
    for rtype in CLINICAL_TYPES:
        response = client.get(f"/fhir/{rtype}", headers=admin)
        refused[rtype] = response.status_code
        assert response.json()["issue"][0]["code"] == "forbidden"
    assert set(refused.values()) == {403}, {t: s for t, s in refused.items() if s != 403}
    for url in (f"/fhir/Patient/{pid}", f"/fhir/Patient/{pid}/_history",
                f"/fhir/Patient/{pid}/_history/1", "/fhir/_history", "/fhir?_id=" + pid,
                "/fhir/Practitioner"):
        response = client.get(url, headers=admin)
        assert response.status_code == 403, (url, response.text)
        assert pid not in response.text
    writes = [client.post("/fhir/Observation", headers=admin, json={
                  "resourceType": "Observation", "status": "final", "code": {"text": "x"},
                  "subject": {"reference": f"Patient/{pid}"}}),
              client.put(f"/fhir/Patient/{pid}", headers=admin,
                         json={"resourceType": "Patient", "id": pid}),
              client.delete(f"/fhir/Patient/{pid}", headers=admin)]
    assert [w.status_code for w in writes] == [403, 403, 403]
    assert client.get(f"/fhir/Patient/{pid}").status_code == 200


def test_403_says_nothing_about_existence(app: Any, client: Any, bearer_header: Any) -> None:
    pid = client.post("/fhir/Patient", json={"resourceType": "Patient"},
                      headers=FHIR_JSON).json()["id"]
    order = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
             "medicationCodeableConcept": {"text": "ketamine"},
             "subject": {"reference": f"Patient/{pid}"}}
    rid = client.post("/fhir/MedicationRequest", json=order, headers=FHIR_JSON).json()["id"]
    client.post("/fhir/CareTeam", headers=FHIR_JSON, json={
        "resourceType": "CareTeam", "status": "active",
        "subject": {"reference": f"Patient/{pid}"},
        "participant": [{"member": {"reference": "Practitioner/nurse"}}]})
    nurse = {**FHIR_JSON, **bearer_header(
        app, subject="nurse", kind="user", scopes="user/*.rs user/Observation.cu",
        roles=("nurse",), practitioner="Practitioner/nurse")}
    assert client.get(f"/fhir/MedicationRequest/{rid}", headers=nurse).status_code == 200
    missing = "00000000-0000-4000-8000-000000000000"
    for method in ("put", "delete"):
        answers = []
        for target in (rid, missing):
            kwargs: dict[str, Any] = {"headers": nurse}
            if method == "put":
                kwargs["json"] = {**order, "id": target}
            response = getattr(client, method)(f"/fhir/MedicationRequest/{target}", **kwargs)
            assert response.status_code == 403, response.text
            assert target not in response.text and "ketamine" not in response.text
            answers.append(response.json())
        assert answers[0] == answers[1]
    created = client.post("/fhir/MedicationRequest", json=order, headers=nurse)
    assert created.status_code == 403 and pid not in created.text
    stranger = {**FHIR_JSON, **bearer_header(
        app, subject="admin", kind="user", scopes="", roles=("admin",))}
    existing = client.get(f"/fhir/Patient/{pid}", headers=stranger)
    absent = client.get(f"/fhir/Patient/{missing}", headers=stranger)
    assert existing.status_code == absent.status_code == 403
    assert existing.json() == absent.json()
