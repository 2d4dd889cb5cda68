"""Care-team membership as FHIR data: adding a user (``ehr care-team add``, the admin page),
listing a patient's participants and removing one.

Membership is a participant in the patient's CareTeam resource, so it is visible to every FHIR
client and goes through the one write path (the care-team hook then updates the access rows).
A user without a Practitioner resource gets one, linked to the account. The clinician who
registered a patient is a member too, without a CareTeam (``REGISTRATION``): listed and
removable here like the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from ehr.auth import access_repository as access
from ehr.auth.care_teams import REGISTRATION, participant_period
from ehr.auth.users import Users
from ehr.context import RequestContext
from ehr.errors import NotFound
from ehr.fhir import canonical_json
from ehr.fhir.conditional import find_matches
from ehr.fhir.pipeline import Pipeline
from ehr.fhir.reader import Reader
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


@dataclass(frozen=True)
class Participant:
    """One member of one of the patient's CareTeam resources, with the user it belongs to."""

    team: str  # CareTeam id; empty for the registering clinician's membership
    team_status: str
    member: str  # the reference, e.g. Practitioner/123
    username: str | None
    display: str
    period: str = ""  # the participant's period as written, e.g. "2026-01-05 to 2026-03-31"
    period_state: str = ""  # "ended" or "not started" when now is outside it (no access)


def _teams(pipeline: Pipeline, session: Session, ctx: RequestContext,
           patient_id: str) -> list[tuple[str, dict[str, Any]]]:
    patient = get_current(session, "Patient", patient_id)
    if patient is None or patient.deleted:
        raise NotFound(f"Patient/{patient_id} is not known", expression=("patient",))
    found = Reader(pipeline, session, ctx).search(
        "CareTeam", [("subject", f"Patient/{patient_id}"), ("_count", "100")])
    return [(s.rid, canonical_json.loads(s.content)) for s in found.matches if s.content]


def care_team_participants(pipeline: Pipeline, session: Session, ctx: RequestContext,
                           users: Users, patient_id: str) -> list[Participant]:
    """Every participant of every CareTeam about the patient (inactive teams included, marked
    by their status: they grant no access)."""
    everyone = users.list(session)
    accounts = {u.practitioner: u for u in everyone if u.practitioner}
    accounts.update({f"User/{u.username}": u for u in everyone})
    out = []
    for rid, team in _teams(pipeline, session, ctx, patient_id):
        for part in team.get("participant") or []:
            member = (part.get("member") or {}) if isinstance(part, dict) else {}
            ref = member.get("reference")
            if not isinstance(ref, str):
                continue
            user = accounts.get(ref)
            out.append(Participant(rid, str(team.get("status") or "unknown"), ref,
                                   user.username if user else None,
                                   user.display_name if user else str(member.get("display")
                                                                      or ""),
                                   *_period_of(part, pipeline.clock())))
    for ref, source in access.members_of(session, patient_id):
        if source == REGISTRATION:
            user = accounts.get(ref)
            out.append(Participant("", "registered the patient", ref,
                                   user.username if user else None,
                                   user.display_name if user else ""))
    return out


def _period_of(participant: dict[str, Any], now: int) -> tuple[str, str]:
    """A participant's period as written, and why it gives no access ``now`` (if it doesn't),
    judged by the rule the membership rows follow (``participant_period``)."""
    period = participant.get("period")
    if not isinstance(period, dict) or not (period.get("start") or period.get("end")):
        return "", ""
    text = f"{period.get('start') or 'open'} to {period.get('end') or 'open'}"
    bounds = participant_period(participant)
    if bounds is None:
        return text, "unreadable"
    starts, ends = bounds
    if ends is not None and ends <= now:
        return text, "ended"
    return text, "not started" if starts is not None and starts > now else ""


def remove_from_care_team(
    pipeline: Pipeline, session: Session, ctx: RequestContext, users: Users,
    patient_id: str, member: str,
) -> list[str]:
    """Take ``member`` (a user name or a reference such as ``Practitioner/123``) off every
    CareTeam about the patient, and end the membership registering the patient gave them;
    returns what changed (``CareTeam/<id>``, ``registration``). The care-team hook drops the
    access the teams gave."""
    ref = member.strip()
    keys = {ref}
    if "/" not in ref:
        user = users.get(session, ref)
        if user is None:
            raise NotFound(f"no user {ref!r}", expression=("member",))
        keys = {f"User/{user.username}", *([user.practitioner] if user.practitioner else [])}
        ref = user.practitioner or f"User/{user.username}"
    writer = Writer(pipeline, session, ctx)
    changed = []
    for rid, team in _teams(pipeline, session, ctx, patient_id):
        parts = team.get("participant") or []
        kept = [p for p in parts if not (isinstance(p, dict) and
                                        (p.get("member") or {}).get("reference") == ref)]
        if len(kept) == len(parts):
            continue
        if kept:
            team["participant"] = kept
        else:
            team.pop("participant", None)
        writer.update("CareTeam", rid, team)
        changed.append(f"CareTeam/{rid}")
    if access.remove_members(session, patient_id, keys, REGISTRATION):
        changed.append(REGISTRATION)
    if not changed:
        raise NotFound(f"{ref} is not on a care team of Patient/{patient_id}",
                       expression=("member",))
    return changed
