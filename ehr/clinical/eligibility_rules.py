"""Write rules that let the dosing gate trust eligibility decisions.

A decision Observation (and the Provenance signing it) may only be created by the
``$eligibility-decision`` operation, which checks the physician's role and consumes a signing
assertion first, then writes inside ``sanctioned_decision``. Every other write that would
create, change, re-code or delete a decision, or sign one, is refused, whoever sends it
(a nurse's plain ``POST /fhir/Observation``, a physician's ``PUT``, a transaction entry).
Decisions are never edited: a new decision supersedes the last.

A completed checklist response must answer every item, so no rule is silently skipped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from sqlmodel import Session

from ehr.clinical.eligibility import DECISION_CODE, is_decision, stored_body
from ehr.clinical.eligibility_protocol import default_protocol
from ehr.clinical.screening_checklist import answer_problems, is_checklist_response
from ehr.context import RequestContext
from ehr.store.hooks import Change, RuleRegistry
from ehr.store.repository import get_current

# Ids of decision Observations the operation is writing in this context (request/thread).
_sanctioned: ContextVar[frozenset[str]] = ContextVar("ehr_sanctioned_decisions",
                                                     default=frozenset())
_ONLY_THROUGH = ("Eligibility decisions are recorded only through "
                 "POST Patient/{id}/$eligibility-decision by a physician with a signing "
                 "assertion; they are never edited or deleted (record a new decision)")


@contextmanager
def sanctioned_decision(observation_id: str) -> Iterator[None]:
    """Allow creating ``Observation/observation_id`` as a decision, and signing it."""
    token = _sanctioned.set(_sanctioned.get() | {observation_id})
    try:
        yield
    finally:
        _sanctioned.reset(token)


def _prior_body(change: Change) -> dict[str, Any] | None:
    prior = change.prior
    # Most updates are of other records: skip parsing when the code cannot be in there.
    if prior is None or not prior.content or DECISION_CODE not in prior.content:
        return None
    return stored_body(prior)


def guard_decision_observation(session: Session, ctx: RequestContext, change: Change) -> None:
    becomes = is_decision(change.resource)
    was = is_decision(_prior_body(change))
    if not (becomes or was):
        return
    if change.interaction == "create" and becomes and not was \
            and change.rid in _sanctioned.get():
        return
    change.error("business-rule", _ONLY_THROUGH, "Observation.code")


def guard_decision_provenance(session: Session, ctx: RequestContext, change: Change) -> None:
    signed_now = _decision_targets(session, change.resource)
    signed_before = _decision_targets(session, _prior_body(change))
    if not (signed_now or signed_before):
        return
    if change.interaction == "create" and not signed_before and \
            signed_now <= _sanctioned.get():
        return
    change.error("business-rule", _ONLY_THROUGH, "Provenance.target")


def _decision_targets(session: Session, provenance: dict[str, Any] | None) -> set[str]:
    """Ids of the decision Observations a Provenance targets."""
    out: set[str] = set()
    for target in (provenance or {}).get("target") or []:
        ref = target.get("reference") if isinstance(target, dict) else None
        rid = _observation_id(ref) if isinstance(ref, str) else None
        if rid is None:
            continue
        if rid in _sanctioned.get():
            out.add(rid)
            continue
        stored = get_current(session, "Observation", rid)
        if stored is not None and stored.content and DECISION_CODE in stored.content \
                and is_decision(stored_body(stored)):
            out.add(rid)
    return out


def _observation_id(ref: str) -> str | None:
    """The id in ``[base/]Observation/id[/_history/n]``."""
    parts = ref.split("/")
    if len(parts) >= 4 and parts[-2] == "_history" and parts[-4] == "Observation":
        return parts[-3]
    if len(parts) >= 2 and parts[-2] == "Observation":
        return parts[-1]
    return None


def check_checklist_response(session: Session, ctx: RequestContext, change: Change) -> None:
    response = change.resource
    if not is_checklist_response(response) or response is None:
        return
    if response.get("status") not in ("completed", "amended"):
        return
    for link, problem in answer_problems(response):
        change.error("required", f"Medical screening checklist: {problem}",
                     f"QuestionnaireResponse.item.where(linkId='{link}')")


def register_eligibility_rules(registry: RuleRegistry) -> None:
    default_protocol()  # a malformed protocol file stops the service here, not at a decision
    registry.register("Observation", guard_decision_observation)
    registry.register("Provenance", guard_decision_provenance)
    registry.register("QuestionnaireResponse", check_checklist_response)
