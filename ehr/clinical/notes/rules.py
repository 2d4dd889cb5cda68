"""Write rules for notes (DocumentReference) and for the Provenances that sign them.

Status codes, consistent with the rest of the service: a note that breaks a rule is refused
with 422 listing every problem; a user other than the author touching a draft gets 403 (a
permission); any change to a signed or withdrawn note gets 409 (a state conflict: the record
is locked), whatever the path (PUT, conditional update, transaction or batch entry, DELETE).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import simplejson
from sqlmodel import Session

from ehr.clinical.notes import kinds, sharing
from ehr.clinical.notes.signing import CORRECTOR_ROLES, expected, withdrawn_form
from ehr.context import RequestContext
from ehr.errors import Conflict, Forbidden
from ehr.store.hooks import Change, RuleRegistry
from ehr.store.repository import StoredResource, creator_of, get_current

LOCKED = ("A signed note cannot be changed: write an addendum (relatesTo appends) or mark it "
          "entered-in-error with $entered-in-error")


def _loaded(stored: StoredResource | None) -> dict[str, Any] | None:
    if stored is None or stored.deleted or not stored.content:
        return None
    value = simplejson.loads(stored.content)
    return value if isinstance(value, dict) else None


def _without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in resource.items() if k != "meta"}
    meta = {k: v for k, v in (resource.get("meta") or {}).items()
            if k not in ("versionId", "lastUpdated")}
    if meta:
        out["meta"] = meta
    return out


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return _without_meta(a) == _without_meta(b)


def check_note(session: Session, ctx: RequestContext, change: Change) -> None:
    prior = _loaded(change.prior)
    new = change.resource
    if kinds.is_note(prior):
        assert prior is not None
        _check_change(session, ctx, change, prior)
        return
    if new is not None and (kinds.is_note(new) or _appends_a_note(session, new)):
        if change.prior is not None and change.prior.deleted and creator_of(
                session, "DocumentReference", change.rid) != ctx.actor.id:
            # Version 1 names the author for good: a deleted note's id stays its author's.
            raise Forbidden("Only its author may write this note again")
        _check_draft(session, ctx, change, new)


def _appends_a_note(session: Session, new: dict[str, Any]) -> bool:
    return any(kinds.is_note(_loaded(get_current(session, "DocumentReference", rid)))
               for rid in kinds.appended_targets(new))


def _check_change(session: Session, ctx: RequestContext, change: Change,
                  prior: dict[str, Any]) -> None:
    new = change.resource
    transition = expected(session, change.rid)
    author = creator_of(session, "DocumentReference", change.rid)
    if kinds.locked(prior):
        if (new is not None and transition is not None and transition.actor == ctx.actor.id
                and transition.kind == "entered-in-error"
                and prior.get("status") != "entered-in-error"
                and _same(new, withdrawn_form(prior, transition.reason))):
            if ctx.actor.id != author and not (set(ctx.actor.roles) & CORRECTOR_ROLES):
                raise Forbidden("Only the author or a physician may mark a signed note "
                                "entered-in-error")
            return
        raise Conflict(LOCKED, code="business-rule")
    if ctx.actor.id != author:
        raise Forbidden("Only its author may change or sign a draft note")
    if new is None:
        return  # the author discards a draft
    if transition is not None and transition.actor == ctx.actor.id:
        if transition.kind == "entered-in-error" and _same(
                new, withdrawn_form(prior, transition.reason)):
            return
        authenticator = new.get("authenticator")
        if transition.kind == "sign" and isinstance(authenticator, dict) and _same(
                new, {**prior, "docStatus": "final", "authenticator": authenticator}):
            return
    if kinds.kind_code(new) != kinds.kind_code(prior):
        change.error("business-rule", "A note's kind cannot change", "DocumentReference.type")
    lost = kinds.security_codes(prior) - kinds.security_codes(new)
    if lost:
        change.error("security", "Security labels cannot be removed from a note: "
                     + ", ".join(sorted(lost)), "DocumentReference.meta.security")
    _check_draft(session, ctx, change, new)


def _check_draft(session: Session, ctx: RequestContext, change: Change,
                 new: dict[str, Any]) -> None:
    """What every draft note must be, on create and on each edit."""
    code = kinds.kind_code(new)
    kind = kinds.NOTE_KINDS.get(code or "")
    if kind is None:
        change.error("code-invalid", "A note (or an addendum to one) needs a type coding from "
                     f"{kinds.NOTE_KIND_SYSTEM}: one of {', '.join(kinds.NOTE_KINDS)}",
                     "DocumentReference.type")
    elif not kinds.has_loinc(new, kind.loinc):
        change.error("code-invalid", f"A {kind.code} note's type must carry LOINC {kind.loinc} "
                     f"({kind.loinc_display})", "DocumentReference.type")
    if kind is not None and kind.psychotherapy and not kinds.is_psychotherapy(new):
        change.error("security", "A psychotherapy note must carry the PSYTHPN security label "
                     f"({kinds.psychotherapy_label()['system']})",
                     "DocumentReference.meta.security")
    if new.get("docStatus") != "preliminary":
        change.error("business-rule", "A note is written as a draft (docStatus preliminary); "
                     "it becomes final only through $sign", "DocumentReference.docStatus")
    if new.get("status") != "current":
        change.error("business-rule", "A draft note's status is current; withdraw a note with "
                     "$entered-in-error", "DocumentReference.status")
    if new.get("authenticator") is not None:
        change.error("business-rule", "Only $sign sets the authenticator",
                     "DocumentReference.authenticator")
    for rid in kinds.appended_targets(new):
        _check_addendum_target(session, ctx, change, new, rid)


def _check_addendum_target(session: Session, ctx: RequestContext, change: Change,
                           new: dict[str, Any], rid: str) -> None:
    where = "DocumentReference.relatesTo"
    target = _loaded(get_current(session, "DocumentReference", rid))
    if target is not None and kinds.is_psychotherapy(target) and not sharing.may_read(
            session, rid, ctx.actor.id):
        target = None  # answered like a note that does not exist: nothing leaks
    if target is None or not kinds.is_note(target):
        change.error("not-found", f"Addendum target DocumentReference/{rid} is not a known note",
                     where)
        return
    if not kinds.signed(target) or target.get("status") != "current":
        change.error("business-rule", f"DocumentReference/{rid} is not signed (or was withdrawn): "
                     "edit the draft itself instead of appending to it", where)
    if (target.get("subject") or {}).get("reference") != (new.get("subject") or {}).get(
            "reference"):
        change.error("business-rule", "An addendum concerns the same patient as its note",
                     "DocumentReference.subject")
    if kinds.is_psychotherapy(target) and not kinds.is_psychotherapy(new):
        change.error("security", "An addendum to a psychotherapy note must carry PSYTHPN too",
                     "DocumentReference.meta.security")
    if kinds.is_psychotherapy(new) and change.prior is None:
        change.after_store.append(_share(rid, ctx.actor.id))


def _share(note_rid: str, writer: str) -> Callable[[Session, StoredResource], None]:
    def after(session: Session, stored: StoredResource) -> None:
        sharing.share_with_note_readers(session, note_rid, stored.rtype, stored.rid,
                                        writer=writer, now=stored.last_updated)
    return after


# -- Provenance ---------------------------------------------------------------------------


def _note_targets(session: Session, provenance: dict[str, Any] | None) -> list[str]:
    found: list[str] = []
    for target in (provenance or {}).get("target") or []:
        ref = target.get("reference") if isinstance(target, dict) else None
        if isinstance(ref, str) and ref.startswith("DocumentReference/"):
            rid = ref.split("/")[1]
            if kinds.is_note(_loaded(get_current(session, "DocumentReference", rid))):
                found.append(rid)
    return found


def check_note_provenance(session: Session, ctx: RequestContext, change: Change) -> None:
    """Provenances of notes record signatures: written by the note operations only, never
    changed or removed afterwards."""
    before = _note_targets(session, _loaded(change.prior))
    if before:
        raise Conflict("The Provenance of a note's signature cannot be changed or deleted",
                       code="business-rule")
    if change.resource is None:
        return
    targets = _note_targets(session, change.resource)
    if not targets:
        return
    if change.prior is not None and not change.prior.deleted:
        raise Conflict("A Provenance cannot be re-pointed at a note", code="business-rule")
    for rid in targets:
        transition = expected(session, rid)
        if transition is None or transition.actor != ctx.actor.id:
            change.error("business-rule", "Signatures on notes are recorded by "
                         "DocumentReference/$sign (and withdrawals by $entered-in-error), "
                         "not written directly", "Provenance.target")
        elif kinds.is_psychotherapy(change.resource):
            change.after_store.append(_share(rid, ctx.actor.id))


def register_note_rules(registry: RuleRegistry) -> None:
    registry.register("DocumentReference", check_note)
    registry.register("Provenance", check_note_provenance)

