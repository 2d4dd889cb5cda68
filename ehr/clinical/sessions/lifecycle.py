"""The session state machine, enforced on every Encounter write (PUT, transaction, any path).

planned -> arrived -> dosing -> monitoring -> discharged, and planned/arrived -> cancelled.
An illegal move is a state conflict: 409 (``Conflict`` raised from the rule; the registry
still runs the other rules and lists every issue). Discharge happens only through the
discharge gate (``$discharge``), which opens ``signed_discharge`` for that one Encounter; the
rule then writes the signed checklist and its Provenance in the same transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlmodel import Session

from ehr.clinical.sessions.adverse_events import adverse_event_rule
from ehr.clinical.sessions.discharge import (
    Signoff,
    checklist_response,
    new_id,
    signoff_provenance,
)
from ehr.clinical.sessions.phases import (
    INITIAL_PHASES,
    PHASE_STATUS,
    TRANSITIONS,
    phase_of,
)
from ehr.clinical.sessions.records import load_reference, subject_of
from ehr.clinical.terminology import ACT_CODE
from ehr.context import RequestContext
from ehr.errors import Conflict
from ehr.store.hooks import Change, RuleRegistry
from ehr.store.repository import StoredResource

_signoff: ContextVar[Signoff | None] = ContextVar("ehr_session_signoff", default=None)
PHASE_PATH = "Encounter.extension"


@contextmanager
def signed_discharge(signoff: Signoff) -> Iterator[Signoff]:
    """Let the Encounter write inside this block discharge ``signoff.encounter_id``."""
    token = _signoff.set(signoff)
    try:
        yield signoff
    finally:
        _signoff.reset(token)


def _prior_resource(prior: StoredResource | None) -> dict[str, Any] | None:
    if prior is None or prior.deleted or not prior.content:
        return None
    loaded = json.loads(prior.content)
    return loaded if isinstance(loaded, dict) else None


def _check_shape(session: Session, change: Change, encounter: dict[str, Any],
                 phase: str) -> None:
    if phase not in PHASE_STATUS:
        change.error("code-invalid", f"Unknown session phase {phase!r}; expected one of "
                     f"{', '.join(PHASE_STATUS)}", PHASE_PATH)
        return
    if encounter.get("status") != PHASE_STATUS[phase]:
        change.error("business-rule", f"A session in phase {phase!r} has status "
                     f"{PHASE_STATUS[phase]!r}, not {encounter.get('status')!r}",
                     "Encounter.status")
    klass = encounter.get("class") or {}
    if klass.get("system") != ACT_CODE or klass.get("code") != "AMB":
        change.error("business-rule", "A session Encounter has class AMB "
                     f"({ACT_CODE})", "Encounter.class")
    patient = subject_of(encounter)
    if not patient or not patient.startswith("Patient/"):
        change.error("required", "A session Encounter names its patient", "Encounter.subject")
    episodes = [e.get("reference") for e in encounter.get("episodeOfCare") or []
                if isinstance(e, dict)]
    if not episodes:
        change.error("required", "A session belongs to the course's EpisodeOfCare",
                     "Encounter.episodeOfCare")
    for i, ref in enumerate(episodes):
        episode = load_reference(session, ref, "EpisodeOfCare")
        if episode is None:
            change.error("not-found", f"EpisodeOfCare {ref!r} does not exist",
                         f"Encounter.episodeOfCare[{i}]")
        elif patient and subject_of(episode) != patient:
            change.error("business-rule", f"{ref} is another patient's course",
                         f"Encounter.episodeOfCare[{i}]")


def encounter_rule(session: Session, ctx: RequestContext, change: Change) -> None:
    new = change.resource
    old = _prior_resource(change.prior)
    new_phase, old_phase = phase_of(new), phase_of(old)
    if new_phase is None and old_phase is None:
        return  # not a session: other Encounters are not this rule's business
    if change.interaction == "delete":
        if old_phase not in ("planned", "cancelled"):
            raise Conflict(f"A session in phase {old_phase!r} cannot be deleted (only planned "
                           "or cancelled sessions)", code="conflict")
        return
    assert new is not None
    if new_phase is None:
        change.error("required", "A session Encounter keeps its session-phase extension",
                     PHASE_PATH)
        return
    _check_shape(session, change, new, new_phase)
    if new_phase not in PHASE_STATUS:
        return
    if old_phase is None:
        if new_phase not in INITIAL_PHASES:
            raise Conflict(f"A session starts planned or arrived, not {new_phase!r}",
                           code="conflict", expression=(PHASE_PATH,))
        return
    if old_phase != new_phase and new_phase not in TRANSITIONS.get(old_phase, frozenset()):
        allowed = ", ".join(sorted(TRANSITIONS.get(old_phase, ()))) or "none"
        raise Conflict(f"Illegal session transition {old_phase!r} -> {new_phase!r} "
                       f"(allowed from {old_phase!r}: {allowed})", code="conflict",
                       expression=(PHASE_PATH,))
    if old_phase == "discharged" and subject_of(new) != subject_of(old):
        raise Conflict("A discharged session cannot move to another patient", code="conflict")
    if new_phase == "discharged" and old_phase != "discharged":
        _discharge(change, new)


def _discharge(change: Change, encounter: dict[str, Any]) -> None:
    signoff = _signoff.get()
    if signoff is None or signoff.encounter_id != change.rid:
        raise Conflict("A session is discharged only through Encounter/{id}/$discharge "
                       "(checklist and signature)", code="conflict",
                       expression=(PHASE_PATH,))
    patient = subject_of(encounter) or ""
    target = f"Encounter/{change.rid}"
    response_id = new_id()
    change.derive("QuestionnaireResponse",
                  checklist_response(signoff, patient=patient, encounter=target), response_id)
    change.derive("Provenance", signoff_provenance(signoff, [
        f"{target}/_history/{change.version}",
        f"QuestionnaireResponse/{response_id}/_history/1"]))


def register_session_rules(registry: RuleRegistry) -> None:
    """Plug the session rules into the write path (called from ``ehr.app.build_pipeline``)."""
    registry.register("Encounter", encounter_rule)
    registry.register("AdverseEvent", adverse_event_rule)
