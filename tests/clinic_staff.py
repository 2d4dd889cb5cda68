"""The staff of the small test clinics (notes, sessions, eligibility, screening): real users
who can re-authenticate, the care team of the clinic's patient, and each member's token."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ehr.auth.passwords import PasswordHasher
from ehr.auth.roles import role_ceiling
from ehr.db import unit_of_work

FHIR_JSON = {"Content-Type": "application/fhir+json"}
PASSWORD = "correct horse battery staple"


@dataclass
class TeamClinic:
    """One patient, the client that reaches the service, and request headers by staff member."""

    app: Any
    client: Any
    patient: str
    headers: dict[str, dict[str, str]] = field(default_factory=dict)


def create_users(app: Any, engine: Any, staff: Mapping[str, tuple[str, str]]) -> None:
    """Users ``name -> (role, display name)``, password ``PASSWORD``, each linked to
    ``Practitioner/<name>``."""
    users = app.state.auth.users
    # Cheap argon2 for the test users (verification follows the parameters in the hash).
    users.hasher = PasswordHasher(time_cost=1, memory_kib=8 * 1024, parallelism=1)
    with unit_of_work(engine) as session:
        for name, (role, display) in staff.items():
            users.create(session, username=name, password=PASSWORD, roles=[role],
                         display_name=display, practitioner=f"Practitioner/{name}")


def care_team(client: Any, patient: str, members: Iterable[str]) -> None:
    """An active CareTeam of ``Practitioner/<member>`` for the patient."""
    team = client.post("/fhir/CareTeam", headers=FHIR_JSON, json={
        "resourceType": "CareTeam", "status": "active",
        "subject": {"reference": f"Patient/{patient}"},
        "participant": [{"member": {"reference": f"Practitioner/{n}"}} for n in members]})
    assert team.status_code == 201, team.text


def staff_headers(app: Any, bearer: Any, roles: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """FHIR request headers with a user token per member (``name -> role``), and "system"."""
    headers = {name: {**FHIR_JSON, **bearer(
        app, subject=name, kind="user", scopes=str(role_ceiling([role])), roles=(role,),
        practitioner=f"Practitioner/{name}")} for name, role in roles.items()}
    headers["system"] = FHIR_JSON  # the client fixture's own system token
    return headers


def reauth(client: Any, headers: Mapping[str, str], action: str,
           password: str = PASSWORD) -> str:
    """A signing assertion for ``action``, from ``/auth/reauth`` with the member's token."""
    response = client.post("/auth/reauth", json={"password": password, "action": action},
                           headers={"Authorization": headers["Authorization"]})
    assert response.status_code == 200, response.text
    return str(response.json()["assertion"])
