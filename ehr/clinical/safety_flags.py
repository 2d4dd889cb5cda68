"""Safety flags raised by screening responses, and the physician review that lifts a block.

Which answers raise a flag is data (``flags`` in an instrument's file): PHQ-9 item 9 above 0
raises a suicide-risk flag whatever the total; C-SSRS moderate or high risk raises one, and the
high-risk one carries the blocks-dosing tag. A flag is raised once per response (its id derives
from the response's), so amending the response does not raise it again or undo a review.

A dosing-blocking flag blocks while it is ``active``. Only a physician may lift it, by setting
it ``inactive`` (or ``entered-in-error``): the write records who and when in the flag itself
(``flag-review`` extension, ``period.end``) next to the audit record of the update. Removing the
tag from an active flag or deleting it is refused: both would lift the block unseen.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from sqlmodel import Session

from ehr import instants
from ehr.clinical.flags import BLOCKS_DOSING_TAG, blocks_dosing, build_flag
from ehr.clinical.instruments.catalog import Instrument
from ehr.clinical.instruments.scoring import Answer, Score
from ehr.clinical.terminology import CANONICAL_BASE
from ehr.context import RequestContext
from ehr.errors import Forbidden
from ehr.store.criteria import ReferenceMatch, TokenMatch
from ehr.store.hooks import Change, RuleRegistry
from ehr.store.repository import get_current, get_current_by_pks
from ehr.store.search_sql import matching_pks

REVIEW_EXTENSION = f"{CANONICAL_BASE}/StructureDefinition/flag-review"
REVIEWER_ROLE = "physician"
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, CANONICAL_BASE)
_MAX_FLAGS = 1000


def derived_id(response_id: str, what: str) -> str:
    """A stable id for what a response yields (its score, its n-th flag)."""
    return str(uuid.uuid5(_NAMESPACE, f"QuestionnaireResponse/{response_id}#{what}"))


def fired(instrument: Instrument, result: Score,
          answers: Mapping[str, Answer]) -> list[tuple[int, dict[str, Any]]]:
    """The instrument's flag rules this result meets, with their index in the data file."""
    out = []
    for index, rule in enumerate(instrument.flags):
        when = rule["when"]
        if "item" in when:
            value = answers.get(when["item"])
            hit = value is not None and int(value) > int(when.get("above", 0))
        else:
            hit = result.band is not None and result.band.code in when["level"]
        if hit:
            out.append((index, rule))
    return out


def raise_flags(session: Session, change: Change, instrument: Instrument, result: Score,
                answers: Mapping[str, Answer], paths: Mapping[str, str], *, patient_id: str,
                encounter: str | None, authored: str,
                security: list[dict[str, Any]]) -> None:
    """Derive a Flag per rule met (once per response) and tell the writer in a warning."""
    for index, rule in fired(instrument, result, answers):
        flag_id = derived_id(change.rid, f"flag-{index}")
        existing = get_current(session, "Flag", flag_id)
        item = rule["when"].get("item")
        detail = f" (item {item} = {answers[item]})" if item else ""
        if existing is None or existing.deleted:
            flag = build_flag(patient_id, rule["kind"], rule["text"] + detail,
                              encounter=encounter, start=authored,
                              blocks_dosing=bool(rule.get("blocks_dosing")))
            if security:
                flag.setdefault("meta", {})["security"] = security
            change.derive("Flag", flag, rid=flag_id)
        blocking = " It blocks dosing until a physician records a review." if rule.get(
            "blocks_dosing") else ""
        change.warning("informational",
                       f"{rule['text']}{detail}: safety Flag/{flag_id} raised.{blocking}",
                       paths.get(item, "QuestionnaireResponse") if item else
                       "QuestionnaireResponse")


def blocking_flags(session: Session, patient_id: str) -> list[dict[str, Any]]:
    """The patient's active Flags with the blocks-dosing tag (what the dosing gate reads)."""
    pks = matching_pks(session, "Flag", [
        ReferenceMatch("patient", patient_id, ("Patient",)),
        TokenMatch("status", "active"),
        TokenMatch("_tag", BLOCKS_DOSING_TAG["code"], BLOCKS_DOSING_TAG["system"]),
    ], _MAX_FLAGS)
    flags = []
    for row in get_current_by_pks(session, pks):
        body = json.loads(row.content or "{}")
        # The index is a filter; the stored flag has the last word.
        if body.get("status") == "active" and blocks_dosing(body):
            flags.append(body)
    return flags


def _is_physician(ctx: RequestContext) -> bool:
    return ctx.actor.kind == "user" and REVIEWER_ROLE in ctx.actor.roles


def review_rule(session: Session, ctx: RequestContext, change: Change) -> None:
    """Only a physician lifts a dosing block, and the flag records the review."""
    prior = change.prior
    if prior is None or prior.deleted or not prior.content:
        return
    old = json.loads(prior.content)
    if old.get("status") != "active" or not blocks_dosing(old):
        return
    new = change.resource
    if new is not None and new.get("status") == "active" and blocks_dosing(new):
        return  # still blocking: an ordinary edit
    if not _is_physician(ctx):
        raise Forbidden("Only a physician may review a Flag that blocks dosing",
                        expression=("Flag.status",))
    if new is None:
        change.error("business-rule", "A Flag that blocks dosing is not deleted: a physician "
                     "reviews it by setting its status to inactive", "Flag")
        return
    if new.get("status") == "active":
        change.error("business-rule", "The blocks-dosing tag of an active Flag cannot be "
                     "removed: set the status to inactive to record a review", "Flag.meta.tag")
        return
    change.resource = _with_review(new, ctx, instants.now_us())


def _with_review(flag: dict[str, Any], ctx: RequestContext, now_us: int) -> dict[str, Any]:
    when = instants.instant(now_us)
    reviewer: dict[str, Any] = {"display": ctx.actor.display or ctx.actor.id}
    if ctx.actor.practitioner:
        reviewer["reference"] = ctx.actor.practitioner
    review = {"url": REVIEW_EXTENSION, "extension": [
        {"url": "reviewer", "valueReference": reviewer},
        {"url": "reviewed", "valueDateTime": when},
        {"url": "user", "valueString": ctx.actor.id},
    ]}
    out = dict(flag)
    out["extension"] = [e for e in flag.get("extension") or []
                        if not (isinstance(e, dict) and e.get("url") == REVIEW_EXTENSION)]
    out["extension"].append(review)
    period = dict(out.get("period") or {})
    period.setdefault("end", when)
    out["period"] = period
    return out


def register_safety_flag_rules(registry: RuleRegistry) -> None:
    registry.register("Flag", review_rule)
