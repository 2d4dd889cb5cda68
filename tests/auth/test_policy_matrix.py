"""The whole permission matrix, generated from the policy table and run over HTTP.

For every role x representative type x interaction the expected outcome is computed from
``role_permissions`` AND the role's scope ceiling (each user holds its full ceiling), and the
request is made by a user on the care team of the patient involved: allowed gives 2xx, refused
gives 403 with an OperationOutcome that names no data. System clients get exactly their scopes.
One seeded database per backend serves the whole module (write cases seed their own target).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ehr_testing import bearer
from ehr_testing import wipe as _wipe
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ehr.auth.policy_table import INTERACTION_PERMISSION, POLICY, role_permissions
from ehr.auth.roles import Role, role_ceiling
from ehr.config import Settings

FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
INTERACTIONS = ("create", "read", "vread", "update", "delete", "search", "history-instance",
                "history-type")
ROLES = tuple(Role)


# Served from the audit trail, not the resource store (its own tests; see test_audit_event_*).
TRAIL_TYPES = frozenset({"AuditEvent"})


def _types() -> list[str]:
    named = {t for row in POLICY.values() for t in row if not t.startswith("@")}
    return sorted((named - TRAIL_TYPES)
                  | {"Patient", "Practitioner", "Immunization", "MedicationRequest"})


TYPES = _types()


def practitioner_of(role: Role) -> str:
    return f"Practitioner/{role.value}-prac"


def make(rtype: str, patient: str) -> dict[str, Any]:
    """A minimal valid ``rtype`` resource in ``patient``'s record."""
    subject = {"reference": f"Patient/{patient}"}
    author = {"reference": practitioner_of(Role.PHYSICIAN)}
    text = {"text": f"matrix {rtype}"}
    bodies: dict[str, dict[str, Any]] = {
        "Patient": {"name": [{"family": "Matrix", "given": ["Pat"]}]},
        "Practitioner": {"name": [{"family": "Directory"}]},
        "Observation": {"status": "final", "code": text, "subject": subject,
                        "valueQuantity": {"value": 72, "unit": "/min"}},
        "MedicationAdministration": {"status": "completed", "medicationCodeableConcept": text,
                                     "subject": subject,
                                     "effectiveDateTime": "2024-01-02T10:00:00Z"},
        "MedicationRequest": {"status": "active", "intent": "order",
                              "medicationCodeableConcept": text, "subject": subject},
        "QuestionnaireResponse": {"status": "completed", "subject": subject},
        "DocumentReference": {"status": "current", "subject": subject, "type": text,
                              "content": [{"attachment": {
                                  "contentType": "text/plain",
                                  "data": base64.b64encode(b"note text").decode()}}]},
        "Composition": {"status": "final", "type": text, "subject": subject,
                        "date": "2024-01-02", "author": [author], "title": "Session note"},
        "Flag": {"status": "active", "code": text, "subject": subject},
        "Provenance": {"target": [subject], "recorded": "2024-01-02T10:00:00Z",
                       "agent": [{"who": author}]},
        "Immunization": {"status": "completed", "vaccineCode": text, "patient": subject,
                         "occurrenceDateTime": "2024-01-02"},
        "Encounter": {"status": "planned", "subject": subject, "class": {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}},
        "AdverseEvent": {"actuality": "actual", "subject": subject},
    }
    return {"resourceType": rtype, **bodies[rtype]}


@dataclass
class World:
    app: Any
    http: TestClient
    engine: Engine
    patient: str
    seeded: dict[str, str]  # type -> id of a record for read-only interactions
    headers: dict[Role, dict[str, str]]

    def seed(self, rtype: str) -> str:
        """A fresh record of ``rtype`` the care team can reach (its own patient for Patient)."""
        if rtype == "Patient":
            pid = self._post(make("Patient", self.patient))
            self._post(care_team(pid))
            return pid
        return self._post(make(rtype, self.patient))

    def _post(self, resource: dict[str, Any]) -> str:
        response = self.http.post(f"/fhir/{resource['resourceType']}", json=resource,
                                  headers=FHIR_JSON)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


def care_team(patient: str) -> dict[str, Any]:
    return {"resourceType": "CareTeam", "status": "active",
            "subject": {"reference": f"Patient/{patient}"},
            "participant": [{"member": {"reference": practitioner_of(r)}} for r in ROLES]}


@pytest.fixture(scope="module")
def world(_engine: Engine, database_url: str, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[World]:
    from ehr.app import create_app

    _wipe(_engine)
    var: Path = tmp_path_factory.mktemp("matrix-var")
    app = create_app(Settings(database_url=database_url, var_dir=var), _engine)
    with TestClient(app, base_url="http://testserver") as http:
        http.headers.update(bearer(app, subject="seeder", kind="client", scopes="system/*.cruds"))
        world = World(app, http, _engine, "", {}, {})
        world.patient = world._post(make("Patient", ""))
        world._post(care_team(world.patient))
        world.seeded = {t: world.seed(t) for t in TYPES if t != "Patient"}
        world.seeded["Patient"] = world.patient
        world.headers = {
            role: bearer(app, subject=f"{role.value}-user", kind="user",
                         scopes=str(role_ceiling([role.value])), roles=(role.value,),
                         practitioner=practitioner_of(role))
            for role in ROLES}
        yield world
    _wipe(_engine)


def expected_allowed(role: Role, rtype: str, interaction: str) -> bool:
    letter = INTERACTION_PERMISSION[interaction]
    return letter in role_permissions(role, rtype) and \
        role_ceiling([role.value]).allows("user", rtype, letter)


CASES = [pytest.param(role, rtype, interaction, id=f"{role.value}-{rtype}-{interaction}")
         for role in ROLES for rtype in TYPES for interaction in INTERACTIONS]


def perform(world: World, role: Role, rtype: str, interaction: str) -> tuple[Any, str]:
    """Run one interaction as ``role``; returns the response and the id it concerned."""
    headers = {**FHIR_JSON, **world.headers[role]}
    http = world.http
    if interaction == "create":
        return http.post(f"/fhir/{rtype}", json=make(rtype, world.patient), headers=headers), ""
    if interaction in ("update", "delete"):
        rid = world.seed(rtype)
        if interaction == "delete":
            return http.delete(f"/fhir/{rtype}/{rid}", headers=headers), rid
        patient = rid if rtype == "Patient" else world.patient
        body = {**make(rtype, patient), "id": rid}
        return http.put(f"/fhir/{rtype}/{rid}", json=body, headers=headers), rid
    rid = world.seeded[rtype]
    path = {"read": f"/fhir/{rtype}/{rid}", "vread": f"/fhir/{rtype}/{rid}/_history/1",
            "search": f"/fhir/{rtype}?_id={rid}",
            "history-instance": f"/fhir/{rtype}/{rid}/_history",
            "history-type": f"/fhir/{rtype}/_history?_count=500"}[interaction]
    return http.get(path, headers=headers), rid


def _entry_ids(bundle: dict[str, Any]) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if "resource" in e
            and e["resource"]["resourceType"] != "OperationOutcome"}


@pytest.mark.parametrize(("role", "rtype", "interaction"), CASES)
def test_permission_matrix(world: World, role: Role, rtype: str, interaction: str) -> None:
    response, rid = perform(world, role, rtype, interaction)
    if not expected_allowed(role, rtype, interaction):
        assert response.status_code == 403, response.text
        body = response.json()
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["code"] == "forbidden"
        for secret in filter(None, (rid, world.patient)):
            assert secret not in response.text
        return
    assert 200 <= response.status_code < 300, response.text
    body = response.json() if response.content else {}
    if interaction in ("read", "vread", "update"):
        assert body["id"] == rid
    elif interaction == "create":
        assert response.status_code == 201
    elif interaction == "delete":
        gone = world.http.get(f"/fhir/{rtype}/{rid}")
        assert gone.status_code == 410, gone.text
    elif interaction in ("search", "history-type", "history-instance"):
        assert rid in _entry_ids(body), body


def test_matrix_covers_allowed_and_refused() -> None:
    outcomes = {expected_allowed(r, t, i) for r in ROLES for t in TYPES for i in INTERACTIONS}
    assert outcomes == {True, False}
    # Issue 3's headline defaults, read off the same table the matrix runs.
    writers = {r for r in ROLES if expected_allowed(r, "MedicationRequest", "create")}
    assert writers == {Role.PHYSICIAN}
    assert {r for r in ROLES if expected_allowed(r, "MedicationAdministration", "create")} == {
        Role.PHYSICIAN, Role.NURSE}
    assert not any(expected_allowed(Role.ADMIN, t, i) for t in TYPES for i in INTERACTIONS)


def test_the_table_grants_nothing_the_role_ceiling_takes_away() -> None:
    """The table is the policy as it takes effect: no letter of it is cut by a role's token
    ceiling, so reading the table tells what a role can do."""
    cut = {(role.value, rtype, letter) for role in ROLES for rtype in {*TYPES, *TRAIL_TYPES}
           for letter in role_permissions(role, rtype)
           if not role_ceiling([role.value]).allows("user", rtype, letter)}
    assert cut == set()


# -- system clients: scopes decide exactly -------------------------------------------------


def _client(world: World, scopes: str) -> dict[str, str]:
    return {**FHIR_JSON, **bearer(world.app, subject=f"client-{scopes}", kind="client",
                                  scopes=scopes)}


def test_system_client_observation_rs(world: World) -> None:
    headers = _client(world, "system/Observation.rs")
    rid = world.seeded["Observation"]
    found = world.http.get(f"/fhir/Observation?_id={rid}", headers=headers)
    assert found.status_code == 200
    assert _entry_ids(found.json()) == {rid}
    assert world.http.get(f"/fhir/Observation/{rid}", headers=headers).status_code == 200
    created = world.http.post("/fhir/Observation", json=make("Observation", world.patient),
                              headers=headers)
    assert created.status_code == 403, created.text
    patient = world.http.get(f"/fhir/Patient/{world.patient}", headers=headers)
    assert patient.status_code == 403, patient.text
    assert world.patient not in patient.text


def test_system_client_no_care_team_limit(world: World) -> None:
    # A client sees every patient's records of its types (no care team), nothing else.
    other = world._post(make("Patient", ""))
    obs = world._post(make("Observation", other))
    headers = _client(world, "system/Observation.rs system/Patient.rs")
    assert world.http.get(f"/fhir/Observation/{obs}", headers=headers).status_code == 200
    assert world.http.get(f"/fhir/Patient/{other}", headers=headers).status_code == 200
    assert world.http.get("/fhir/Immunization", headers=headers).status_code == 403


def test_system_client_read_without_search(world: World) -> None:
    headers = _client(world, "system/Patient.r")
    read = world.http.get(f"/fhir/Patient/{world.patient}", headers=headers)
    assert read.status_code == 200, read.text
    search = world.http.get("/fhir/Patient", headers=headers)
    assert search.status_code == 403, search.text


def test_system_client_create_only(world: World) -> None:
    headers = _client(world, "system/Observation.c")
    created = world.http.post("/fhir/Observation", json=make("Observation", world.patient),
                              headers=headers)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    assert world.http.get(f"/fhir/Observation/{rid}", headers=headers).status_code == 403
    assert world.http.put(f"/fhir/Observation/{rid}",
                          json={**make("Observation", world.patient), "id": rid},
                          headers=headers).status_code == 403


# -- AuditEvent: answered from the audit trail, with the same role table --------------------


@pytest.mark.parametrize("role", [r for r in ROLES if r is not Role.ADMIN], ids=str)
def test_audit_event_search_follows_the_table(world: World, role: Role) -> None:
    headers = {**FHIR_JSON, **world.headers[role]}
    response = world.http.get("/fhir/AuditEvent", headers=headers)
    if expected_allowed(role, "AuditEvent", "search"):
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 403, response.text
    # Never written through the FHIR API, by anyone.
    posted = world.http.post("/fhir/AuditEvent", json={"resourceType": "AuditEvent"},
                             headers=headers)
    assert posted.status_code == 405
