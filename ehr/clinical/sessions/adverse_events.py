"""Adverse events of a session: the links to the dose and the session must hold.

An AdverseEvent names the suspected administration in ``suspectEntity.instance`` and the
session in ``encounter``. Both must exist, be the event's patient's, and (when both are given)
the administration must have been given in that session.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from ehr.clinical.sessions.records import load_reference, subject_of
from ehr.context import RequestContext
from ehr.store.hooks import Change


def _context_of(administration: dict[str, Any]) -> str | None:
    ref = (administration.get("context") or {}).get("reference")
    return ref if isinstance(ref, str) else None


def adverse_event_rule(session: Session, ctx: RequestContext, change: Change) -> None:
    event = change.resource
    if event is None:
        return
    patient = subject_of(event)
    encounter_ref = (event.get("encounter") or {}).get("reference")
    if isinstance(encounter_ref, str):
        encounter = load_reference(session, encounter_ref, "Encounter")
        if encounter is None:
            change.error("not-found", f"{encounter_ref} does not exist (or is not an "
                         "Encounter)", "AdverseEvent.encounter")
        elif subject_of(encounter) != patient:
            change.error("business-rule", f"{encounter_ref} is another patient's session",
                         "AdverseEvent.encounter")
    for i, suspect in enumerate(event.get("suspectEntity") or []):
        ref = ((suspect or {}).get("instance") or {}).get("reference")
        if not isinstance(ref, str) or not ref.startswith("MedicationAdministration/"):
            continue
        where = f"AdverseEvent.suspectEntity[{i}].instance"
        administration = load_reference(session, ref, "MedicationAdministration")
        if administration is None:
            change.error("not-found", f"{ref} does not exist", where)
            continue
        if subject_of(administration) != patient:
            change.error("business-rule", f"{ref} was given to another patient", where)
        given_in = _context_of(administration)
        if isinstance(encounter_ref, str) and given_in and given_in != encounter_ref:
            change.error("business-rule", f"{ref} was given in {given_in}, not in "
                         f"{encounter_ref}", where)
