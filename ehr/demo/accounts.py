"""The demo clinic's organisation, staff and accounts: one user per role.

Accounts are ``<role>`` / ``<role>-demo-2026`` (printed by ``ehr demo``; for trying the service
out, never for a deployment). Each clinician's account is linked to a Practitioner resource.
Directory records are written by the service itself (admins hold no clinical rights), every
user creation is audited as ``ehr user create`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ehr.audit.events import AccessEvent
from ehr.context import SYSTEM
from ehr.db import unit_of_work
from ehr.demo.clinic import Clinic
from ehr.fhir.care_team_admin import add_to_care_team

NPI = "http://hl7.org/fhir/sid/us-npi"
CLINIC_NAME = "Harbor Ketamine Clinic"
ORGANIZATION_ID = "harbor-ketamine-clinic"
LOCATION_ID = "harbor-infusion-suite"
LOCATION_ADDRESS = {"line": ["200 Harbor Way, Suite 3"], "city": "Springfield", "state": "IL",
                    "postalCode": "62701", "country": "US"}


@dataclass(frozen=True)
class Account:
    username: str
    role: str
    display: str
    family: str = ""
    given: str = ""
    prefix: str | None = None
    npi: str | None = None

    @property
    def clinician(self) -> bool:
        return self.role in ("physician", "nurse", "therapist")


# The NPIs pass the NPI check digit (Luhn over 80840 + NPI) and belong to no one we know of.
ACCOUNTS = (
    Account("physician", "physician", "Dr. Ada Moreno", "Moreno", "Ada", "Dr.", "1234567893"),
    Account("nurse", "nurse", "Sam Okafor, RN", "Okafor", "Sam", None, "1245319599"),
    Account("therapist", "therapist", "Lee Park, LMFT", "Park", "Lee", None, "1316040596"),
    Account("compliance", "compliance", "Chris Vega"),
    Account("admin", "admin", "Robin Admin"),
)
CLINICIANS = tuple(a.username for a in ACCOUNTS if a.clinician)


def demo_password(username: str) -> str:
    return f"{username}-demo-2026"


def passwords() -> dict[str, str]:
    return {a.username: demo_password(a.username) for a in ACCOUNTS}


def _practitioner(account: Account) -> dict[str, Any]:
    name: dict[str, Any] = {"family": account.family, "given": [account.given]}
    if account.prefix:
        name["prefix"] = [account.prefix]
    return {"resourceType": "Practitioner", "active": True, "name": [name],
            "identifier": [{"system": NPI, "value": account.npi}]}


def seed_organisation(clinic: Clinic) -> str:
    """The Organization and its infusion suite (a Location), under stable ids."""
    org = ORGANIZATION_ID
    clinic.call(None, "PUT", f"Organization/{org}", {
        "resourceType": "Organization", "id": org, "name": CLINIC_NAME, "active": True,
        "address": [LOCATION_ADDRESS]})
    clinic.call(None, "PUT", f"Location/{LOCATION_ID}", {
        "resourceType": "Location", "id": LOCATION_ID, "status": "active",
        "name": "Harbor Ketamine Clinic - infusion suite", "address": LOCATION_ADDRESS,
        "managingOrganization": {"reference": f"Organization/{org}"}})
    return org


def seed_accounts(clinic: Clinic) -> None:
    """Create the accounts that do not exist yet (a second demo clinic shares them)."""
    users = clinic.auth.users
    for account in ACCOUNTS:
        with unit_of_work(clinic.engine, write=False) as session:
            if users.get(session, account.username) is not None:
                continue
        practitioner = None
        if account.clinician:
            practitioner = f"Practitioner/{clinic.create(None, _practitioner(account))}"
        ctx = clinic.ctx(None)
        with unit_of_work(clinic.engine) as session:
            user = users.create(session, username=account.username,
                                password=demo_password(account.username), roles=[account.role],
                                display_name=account.display, practitioner=practitioner,
                                npi=account.npi if account.role == "physician" else None)
            clinic.pipeline.recorder.record(session, ctx, AccessEvent(
                "user-created", status=200, category="security",
                detail={"username": user.username, "roles": sorted(user.roles),
                        "practitioner": user.practitioner, "source": "ehr demo"}))


def practitioner_of(clinic: Clinic, username: str) -> str:
    ref = clinic.actor(username).practitioner
    assert ref is not None, username
    return ref


def join_care_team(clinic: Clinic, patient_id: str, usernames: tuple[str, ...]) -> None:
    """The administrator puts the clinicians on the patient's care team (as the admin pages
    do: the service writes the CareTeam, the audit names the administrator)."""
    admin = clinic.ctx("admin")
    service = replace(admin, actor=SYSTEM)
    with unit_of_work(clinic.engine) as session:
        for username in usernames:
            team = add_to_care_team(clinic.pipeline, session, service, clinic.auth.users,
                                    patient_id, username)
            clinic.pipeline.recorder.record(session, admin, AccessEvent(
                "care-team-member-added", status=200, category="security",
                detail={"patient": f"Patient/{patient_id}", "username": username,
                        "care_team": f"CareTeam/{team}"}))
