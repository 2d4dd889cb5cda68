"""Session phases and how they map onto FHIR R4 ``Encounter.status``.

R4 has no status for "being dosed" or "under monitoring", so a session keeps its own phase in an
extension and the status says what R4 can: dosing and monitoring are ``in-progress``,
discharged is ``finished``. The phase is the state machine; the status must agree with it.
"""

from __future__ import annotations

from typing import Any

from ehr.clinical.terminology import ACT_CODE, CANONICAL_BASE, coding, local_system

PHASE_EXTENSION = f"{CANONICAL_BASE}/StructureDefinition/session-phase"
PHASE_SYSTEM = local_system("session-phase")
PARTICIPANT_SYSTEM = local_system("session-participant")
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
AMBULATORY = coding(ACT_CODE, "AMB", "ambulatory")

PHASE_STATUS = {
    "planned": "planned",
    "arrived": "arrived",
    "dosing": "in-progress",
    "monitoring": "in-progress",
    "discharged": "finished",
    "cancelled": "cancelled",
}
PHASE_DISPLAY = {
    "planned": "Planned", "arrived": "Arrived", "dosing": "Dosing",
    "monitoring": "Post-dose monitoring", "discharged": "Discharged", "cancelled": "Cancelled",
}
# A session is created planned (booked) or arrived (walk-in); nothing else starts one.
INITIAL_PHASES = frozenset({"planned", "arrived"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "planned": frozenset({"arrived", "cancelled"}),
    "arrived": frozenset({"dosing", "cancelled"}),
    # Once a dose is given the patient is monitored and discharged: no cancelling.
    "dosing": frozenset({"monitoring"}),
    "monitoring": frozenset({"discharged"}),
    "discharged": frozenset(),
    "cancelled": frozenset(),
}
# Participant roles in a session: our code and the nearest HL7 participation type.
PARTICIPANT_ROLES = {
    "prescriber": ("ATND", "attender", "Prescriber"),
    "monitoring-nurse": ("PPRF", "primary performer", "Monitoring nurse"),
    "therapist": ("SPRF", "secondary performer", "Therapist"),
}


def phase_of(encounter: dict[str, Any] | None) -> str | None:
    """The session phase code, or None for an Encounter that is not a session."""
    for ext in (encounter or {}).get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == PHASE_EXTENSION:
            value = ext.get("valueCoding") or {}
            code = value.get("code") if isinstance(value, dict) else None
            return code if isinstance(code, str) else ""
    return None


def phase_extension(phase: str) -> dict[str, Any]:
    return {"url": PHASE_EXTENSION,
            "valueCoding": coding(PHASE_SYSTEM, phase, PHASE_DISPLAY.get(phase))}


def with_phase(encounter: dict[str, Any], phase: str) -> dict[str, Any]:
    """A copy of ``encounter`` in ``phase`` (status set to match)."""
    out = dict(encounter)
    out["extension"] = [e for e in encounter.get("extension") or []
                        if not (isinstance(e, dict) and e.get("url") == PHASE_EXTENSION)]
    out["extension"].append(phase_extension(phase))
    out["status"] = PHASE_STATUS[phase]
    return out


def participant(role: str, individual: str) -> dict[str, Any]:
    hl7, hl7_display, display = PARTICIPANT_ROLES[role]
    return {"type": [{"coding": [coding(PARTICIPANT_SYSTEM, role, display),
                                 coding(PARTICIPATION_TYPE, hl7, hl7_display)]}],
            "individual": {"reference": individual}}


def session_encounter(patient_id: str, episode_id: str, *, phase: str = "planned",
                      participants: dict[str, str] | None = None,
                      start: str | None = None) -> dict[str, Any]:
    """A new session Encounter (class AMB) in the course ``EpisodeOfCare/episode_id``.

    ``participants`` maps a role of ``PARTICIPANT_ROLES`` to a reference.
    """
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "class": AMBULATORY,
        "subject": {"reference": f"Patient/{patient_id}"},
        "episodeOfCare": [{"reference": f"EpisodeOfCare/{episode_id}"}],
        "participant": [participant(role, ref) for role, ref in (participants or {}).items()],
    }
    if not encounter["participant"]:
        del encounter["participant"]
    if start:
        encounter["period"] = {"start": start}
    return with_phase(encounter, phase)
