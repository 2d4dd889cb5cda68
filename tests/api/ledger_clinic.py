"""A clinic for the ledger's HTTP tests: a registered Location, staff of every role who can
re-authenticate, and request helpers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from ehr_testing import bearer
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ehr.auth.passwords import PasswordHasher
from ehr.config import Settings
from ehr.db import unit_of_work

PASSWORD = "correct horse battery staple"
LOCATION = "clinic-1"
DEA = "BP1234563"
SUPPLIER_DEA = "AB1234563"
STAFF = {"nina": "nurse", "noah": "nurse", "doc": "physician", "doc2": "physician",
         "tara": "therapist", "cora": "compliance", "root": "admin"}
FHIR = {"Content-Type": "application/fhir+json"}


@dataclass
class LedgerClinic:
    app: Any
    http: TestClient
    engine: Engine
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def as_(self, who: str) -> dict[str, str]:
        return self.headers[who]

    def reauth(self, who: str, action: str = "ledger-witness") -> str:
        response = self.http.post("/auth/reauth", json={"password": PASSWORD,
                                                        "action": action},
                                  headers=self.headers[who])
        assert response.status_code == 200, response.text
        return str(response.json()["assertion"])

    def witness(self, who: str) -> dict[str, str]:
        return {"username": who, "assertion": self.reauth(who)}

    def post(self, path: str, body: dict[str, Any], who: str = "nina") -> Any:
        return self.http.post(f"/api/ledger{path}", json=body, headers=self.headers[who])

    def get(self, path: str, who: str = "cora", **headers: str) -> Any:
        return self.http.get(f"/api/ledger{path}", headers={**self.headers[who], **headers})

    def register(self) -> None:
        response = self.post("/locations", {"location_id": LOCATION, "dea_number": DEA},
                             who="root")
        assert response.status_code == 201, response.text

    def receipt(self, lot: str = "L1", containers: int = 2, **extra: Any) -> dict[str, Any]:
        today = dt.date.today()
        return {"location_id": LOCATION, "lot_number": lot, "drug": "Ketamine HCl",
                "ndc": "0409-2053-10", "rxnorm": "6130", "form": "injection solution",
                "strength": "50 mg/mL", "container_ml": "10", "containers": containers,
                "expiry": (today + dt.timedelta(days=365)).isoformat(),
                "received": today.isoformat(),
                "supplier": {"name": "Pharma Supply", "address": "2 Depot Rd, Chicago IL",
                             "dea_number": SUPPLIER_DEA},
                "invoice_number": "INV-77", **extra}

    def receive(self, lot: str = "L1", containers: int = 2) -> dict[str, Any]:
        response = self.post("/receipts", self.receipt(lot, containers))
        assert response.status_code == 201, response.text
        return dict(response.json())

    def patient(self, family: str = "Rivera") -> str:
        response = self.http.post("/fhir/Patient", headers=FHIR, json={
            "resourceType": "Patient", "name": [{"given": ["Ana"], "family": family}],
            "address": [{"line": ["9 Elm St"], "city": "Springfield", "state": "IL"}]})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


@pytest.fixture(name="ledger")
def ledger_fixture(settings: Settings, engine: Engine,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[LedgerClinic]:
    from ehr.app import create_app

    monkeypatch.setenv("EHR_AUTH_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("EHR_AUTH_ARGON2_MEMORY_KIB", "8192")
    monkeypatch.setenv("EHR_AUTH_ARGON2_PARALLELISM", "1")
    app = create_app(settings, engine)
    users = app.state.auth.users
    users.hasher = PasswordHasher(time_cost=1, memory_kib=8 * 1024, parallelism=1)
    with TestClient(app, base_url="http://testserver") as http:
        http.headers.update(bearer(app, subject="test-suite", kind="client",
                                   scopes="system/*.cruds"))
        clinic = LedgerClinic(app, http, engine)
        with unit_of_work(engine) as session:
            for name, role in STAFF.items():
                users.create(session, username=name, password=PASSWORD, roles=[role],
                             display_name=f"{name.title()} ({role})")
                clinic.headers[name] = bearer(app, subject=name, kind="user",
                                              scopes="user/*.cruds openid", roles=(role,))
        response = http.put(f"/fhir/Location/{LOCATION}", headers=FHIR, json={
            "resourceType": "Location", "id": LOCATION, "name": "Main clinic",
            "address": {"line": ["1 Clinic Way"], "city": "Springfield", "state": "IL"}})
        assert response.status_code in (200, 201), response.text
        yield clinic
