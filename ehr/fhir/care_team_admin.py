"""Adding a user to a patient's care team, as FHIR data (``ehr care-team add``).

Membership is a participant in the patient's CareTeam resource, so it is visible to every FHIR
client and goes through the one write path (the care-team hook then updates the access rows).
A user without a Practitioner resource gets one, linked to the account.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from ehr.auth.users import Users
from ehr.context import RequestContext
from ehr.errors import NotFound
from ehr.fhir import canonical_json
from ehr.fhir.conditional import find_matches
from ehr.fhir.pipeline import Pipeline
from ehr.fhir.writer import Writer
from ehr.store.repository import get_current

CARE_TEAM_SYSTEM = "urn:ehr:care-team"


def _practitioner_for(writer: Writer, users: Users, session: Session, username: str) -> str:
    user = users.get(session, username)
    if user is None or not user.active:
        raise NotFound(f"no active user {username!r}")
    if user.practitioner:
        return user.practitioner
    given, _, family = user.display_name.rpartition(" ")
    name: dict[str, Any] = {"text": user.display_name}
    if given:
        name.update(family=family, given=given.split())
    practitioner: dict[str, Any] = {"resourceType": "Practitioner", "active": True,
                                    "name": [name]}
    if user.npi:
        practitioner["identifier"] = [{"system": "http://hl7.org/fhir/sid/us-npi",
                                       "value": user.npi}]
    stored = writer.create("Practitioner", practitioner).stored
    assert stored is not None
    ref = f"Practitioner/{stored.rid}"
    users.set_practitioner(session, username, ref)
    return ref


def add_to_care_team(
    pipeline: Pipeline, session: Session, ctx: RequestContext, users: Users,
    patient_id: str, username: str,
) -> str:
    """Make ``username`` a participant of the patient's care team; returns the CareTeam id."""
    patient = get_current(session, "Patient", patient_id)
    if patient is None or patient.deleted:
        raise NotFound(f"Patient/{patient_id} is not known")
    writer = Writer(pipeline, session, ctx)
    member = _practitioner_for(writer, users, session, username)
    query = f"identifier={CARE_TEAM_SYSTEM}|{patient_id}"
    found = find_matches(pipeline, session, ctx, "CareTeam", query, serialize=True)
    if found and found[0].content:
        team = canonical_json.loads(found[0].content)
        members = {p.get("member", {}).get("reference") for p in team.get("participant", [])}
        if member not in members:
            team.setdefault("participant", []).append({"member": {"reference": member}})
            writer.update("CareTeam", found[0].rid, team)
        return found[0].rid
    team = {
        "resourceType": "CareTeam", "status": "active", "name": "KAT care team",
        "identifier": [{"system": CARE_TEAM_SYSTEM, "value": patient_id}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "participant": [{"member": {"reference": member}}],
    }
    stored = writer.create("CareTeam", team).stored
    assert stored is not None
    return stored.rid
