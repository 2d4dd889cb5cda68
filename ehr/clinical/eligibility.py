"""The current eligibility of a patient for ketamine dosing, as the dosing gate reads it.

A decision is an ``Observation`` coded ``eligibility#ketamine-therapy-eligibility`` whose
``valueCodeableConcept`` is the physician's status, whose ``effectivePeriod`` runs from the
decision to its expiry, whose components are the protocol rules that fired and whose
``derivedFrom`` names the checklist response (and flags) it was decided on. Only the
``$eligibility-decision`` operation may write one (``eligibility_rules``).

The current status is the latest decision's, except that an expired decision reads
``expired``, and an ``eligible`` decision is downgraded when the patient's record now fires
rules the physician did not review: ``not-eligible`` for a hard stop, ``needs-review`` for a
review item (a newer checklist, or a C-SSRS high-risk flag raised since).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import simplejson
from sqlmodel import Session

from ehr import instants
from ehr.clinical import eligibility_repository as repo
from ehr.clinical.eligibility_protocol import (
    HARD_STOP,
    NEEDS_REVIEW,
    Protocol,
    Rule,
    default_protocol,
)
from ehr.clinical.screening_checklist import Answer, answer_problems, answers_of
from ehr.clinical.terminology import local_system
from ehr.store.repository import StoredResource

STATUSES = ("eligible", "not-eligible", "needs-review", "expired", "none")
# What a physician may record; "expired" and "none" are only ever computed.
DECIDABLE = ("eligible", "not-eligible", "needs-review")
ELIGIBILITY_SYSTEM = local_system("eligibility")
DECISION_CODE = "ketamine-therapy-eligibility"
STATUS_SYSTEM = local_system("eligibility-status")
RULE_SYSTEM = local_system("eligibility-rule")
RULE_KIND_SYSTEM = local_system("eligibility-rule-kind")
STATUS_DISPLAY = {"eligible": "Eligible", "not-eligible": "Not eligible",
                  "needs-review": "Needs physician review"}


@dataclass(frozen=True)
class EligibilityStatus:
    status: str
    reasons: tuple[str, ...] = ()
    decided_us: int | None = None
    expires_us: int | None = None
    decision: str | None = None


@dataclass
class Evaluation:
    """The protocol applied to the patient's latest completed checklist and active flags."""

    checklist: StoredResource | None
    answers: dict[str, Answer] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    fired: list[Rule] = field(default_factory=list)
    # Version-specific references of the flags that made a rule fire.
    flag_refs: list[str] = field(default_factory=list)

    @property
    def checklist_ref(self) -> str | None:
        c = self.checklist
        return None if c is None else f"QuestionnaireResponse/{c.rid}/_history/{c.version_id}"

    def of_kind(self, kind: str) -> list[Rule]:
        return [r for r in self.fired if r.kind == kind]

    @property
    def computed_status(self) -> str:
        if self.of_kind(HARD_STOP):
            return "not-eligible"
        return "needs-review" if self.fired else "eligible"


@dataclass(frozen=True)
class Decision:
    """What a stored decision Observation says."""

    ref: str
    status: str
    decided_us: int
    expires_us: int
    rule_ids: tuple[str, ...]
    rule_texts: tuple[str, ...]
    justification: str | None
    checklist_ref: str | None


def evaluate(session: Session, patient_id: str,
             protocol: Protocol | None = None) -> Evaluation:
    protocol = protocol or default_protocol()
    stored = repo.latest_checklist(session, patient_id, protocol.checklist)
    flags = [(s, stored_body(s)) for s in repo.active_flags(session, patient_id)]
    flag_bodies = [body for _, body in flags]
    if stored is None:
        evaluation = Evaluation(None, fired=protocol.evaluate({}, flag_bodies))
    else:
        response = stored_body(stored)
        answers = answers_of(response)
        evaluation = Evaluation(stored, answers, [p for _, p in answer_problems(response)],
                                protocol.evaluate(answers, flag_bodies))
    used = {id(f) for rule in evaluation.fired for f in protocol.fired_by_flag(rule, flag_bodies)}
    evaluation.flag_refs = [f"Flag/{s.rid}/_history/{s.version_id}" for s, body in flags
                            if id(body) in used]
    return evaluation


def read_decision(stored: StoredResource) -> Decision | None:
    """The decision a stored Observation records; None when it is not a readable decision."""
    body = stored_body(stored)
    if not is_decision(body):
        return None
    status = _code_in((body.get("valueCodeableConcept") or {}).get("coding"), STATUS_SYSTEM)
    period = body.get("effectivePeriod") or {}
    start, end = _us(period.get("start")), _us(period.get("end"))
    if status not in DECIDABLE or start is None or end is None:
        return None
    rules = [(_code_in((c.get("code") or {}).get("coding"), RULE_SYSTEM),
              (c.get("code") or {}).get("text") or "") for c in body.get("component") or []
             if isinstance(c, dict)]
    notes = [n.get("text") for n in body.get("note") or [] if isinstance(n, dict)]
    checklist = next((d.get("reference") for d in body.get("derivedFrom") or []
                      if isinstance(d, dict) and str(d.get("reference", "")).startswith(
                          "QuestionnaireResponse/")), None)
    return Decision(f"Observation/{stored.rid}/_history/{stored.version_id}", status, start,
                    end, tuple(r for r, _ in rules if r), tuple(t for r, t in rules if r),
                    next((n for n in notes if isinstance(n, str) and n), None), checklist)


def current_eligibility(session: Session, patient_id: str, now_us: int) -> EligibilityStatus:
    """The status of the latest signed eligibility decision for ``Patient/patient_id``."""
    stored = repo.latest_decision(session, patient_id, ELIGIBILITY_SYSTEM, DECISION_CODE)
    decision = read_decision(stored) if stored is not None else None
    if decision is None:
        return EligibilityStatus("none", ("No eligibility decision has been recorded",))
    stamp = (decision.decided_us, decision.expires_us, decision.ref)
    if now_us >= decision.expires_us:
        return EligibilityStatus("expired", (
            f"The {decision.status} decision of {_day(decision.decided_us)} expired on "
            f"{_day(decision.expires_us)}; a physician must decide again",), *stamp)
    if decision.status == "eligible":
        since = evaluate(session, patient_id)
        new_stops = [r for r in since.of_kind(HARD_STOP) if r.id not in decision.rule_ids]
        new_items = [r for r in since.of_kind(NEEDS_REVIEW) if r.id not in decision.rule_ids]
        if new_stops or new_items:
            return EligibilityStatus(
                "not-eligible" if new_stops else "needs-review",
                tuple(f"Found since the decision ({r.kind}): {r.text}"
                      for r in [*new_stops, *new_items]), *stamp)
    return EligibilityStatus(decision.status, decision_reasons(decision), *stamp)


def decision_reasons(decision: Decision) -> tuple[str, ...]:
    reasons = list(decision.rule_texts) or ["No contraindication found on the checklist"]
    if decision.justification:
        reasons.append(f"Physician's justification: {decision.justification}")
    return tuple(reasons)


def is_decision(resource: dict[str, Any] | None) -> bool:
    if not resource or resource.get("resourceType") != "Observation":
        return False
    return _code_in((resource.get("code") or {}).get("coding"), ELIGIBILITY_SYSTEM) == \
        DECISION_CODE


def stored_body(stored: StoredResource) -> dict[str, Any]:
    body = simplejson.loads(stored.content or "{}", use_decimal=True)
    return body if isinstance(body, dict) else {}


def _code_in(codings: Any, system: str) -> str | None:
    for c in codings if isinstance(codings, list) else []:
        if isinstance(c, dict) and c.get("system") == system and isinstance(c.get("code"), str):
            return str(c["code"])
    return None


def _us(text: Any) -> int | None:
    if not isinstance(text, str):
        return None
    try:
        return instants.from_datetime(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def _day(us: int) -> str:
    return instants.to_datetime(us).strftime("%Y-%m-%d")
