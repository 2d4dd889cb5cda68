"""Note operations: ``$sign``, ``$entered-in-error``, ``$grant-access``, ``$revoke-access``.

Each is a DocumentReference instance operation taking a ``Parameters`` body. Signing needs
the single-use signing assertion ``/auth/reauth`` issued (the password typed again); the
note change and its Provenance are written through the Writer in the request's transaction.
"""

from __future__ import annotations

from typing import Any

from ehr import instants
from ehr.audit.events import AccessEvent, labels_in
from ehr.auth.access_repository import care_team_patients
from ehr.auth.policy import member_keys
from ehr.clinical.notes import kinds, sharing
from ehr.clinical.notes.signing import (
    MEANINGS,
    REVIEWER_ROLES,
    SIGNING_ACTION,
    Signer,
    Transition,
    done,
    expect,
    signature_provenance,
    signed_form,
    withdrawal_provenance,
    withdrawn_form,
)
from ehr.clinical.terminology import CANONICAL_BASE
from ehr.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Issue,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
    Unprocessable,
)
from ehr.fhir import bundles, canonical_json
from ehr.fhir.http import FhirResponse
from ehr.fhir.interactions import Exchange, parse_etag
from ehr.fhir.operations import Operation, OperationRegistry
from ehr.store.repository import StoredResource, creator_of

NOTE = "DocumentReference"


def _parameters(ex: Exchange) -> dict[str, str]:
    """``name -> value`` of the primitive parameters of a Parameters body."""
    body = ex.json_body()
    if body.get("resourceType") != "Parameters":
        raise BadRequest("The body must be a Parameters resource", expression=("resourceType",))
    out: dict[str, str] = {}
    for param in body.get("parameter") or []:
        if not isinstance(param, dict) or not isinstance(param.get("name"), str):
            continue
        value = next((v for k, v in param.items() if k.startswith("value")), None)
        if isinstance(value, str):
            out[param["name"]] = value.strip()
    return out


def _required(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise BadRequest(f"Parameter {name!r} is required", expression=(f"Parameters.{name}",))
    return value


def _user(ex: Exchange) -> None:
    if ex.ctx.actor.kind != "user":
        raise Forbidden("Only a user signs, withdraws or shares notes")


def _note(ex: Exchange, rid: str | None) -> tuple[StoredResource, dict[str, Any]]:
    """The current note if the caller may read it (404 otherwise, like a read)."""
    assert rid is not None
    stored = ex.pipeline.guard.fetch_visible(ex.session, ex.ctx, NOTE, rid)
    if stored is None or stored.content is None:
        raise NotFound(f"{NOTE}/{rid} is not known")
    note = canonical_json.loads(stored.content)
    if not kinds.is_note(note):
        raise Unprocessable(f"{NOTE}/{rid} is not a note (its type has no {kinds.NOTE_KIND_SYSTEM}"
                            " coding)", code="business-rule", expression=(f"{NOTE}.type",))
    wanted = parse_etag(ex.request.header("if-match"))
    if wanted is not None and wanted != stored.version_id:
        # The signer signs the version they read, not one written since.
        raise PreconditionFailed(f"If-Match version {wanted} does not match current version "
                                 f"{stored.version_id}")
    return stored, note


def _patients(note: dict[str, Any]) -> tuple[str, ...]:
    ref = (note.get("subject") or {}).get("reference")
    return (ref.split("/")[1],) if isinstance(ref, str) and ref.startswith("Patient/") else ()


def _response(stored: StoredResource, provenance: StoredResource | None) -> FhirResponse:
    parameters: list[dict[str, Any]] = [
        {"name": "note", "resource": canonical_json.loads(stored.content or "{}")}]
    if provenance is not None:
        parameters.append({"name": "provenance",
                           "resource": canonical_json.loads(provenance.content or "{}")})
    body = {"resourceType": "Parameters", "parameter": parameters}
    return FhirResponse(200, canonical_json.dumps(body).encode())


def _record(ex: Exchange, name: str, stored: StoredResource, note: dict[str, Any],
            detail: dict[str, Any]) -> None:
    ex.pipeline.recorder.record(ex.session, ex.ctx, AccessEvent(
        f"operation:{name}", NOTE, stored.rid, stored.version_id, 200, _patients(note),
        detail=detail, protected=labels_in(stored.content)))


def sign_operation(ex: Exchange, rtype: str | None, rid: str | None) -> FhirResponse:
    """``$sign``: meaning ``authored`` (the author; the draft becomes final and locked) or
    ``reviewed`` (a physician or therapist on the care team, on a signed note)."""
    _user(ex)
    params = _parameters(ex)
    meaning = MEANINGS.get(_required(params, "meaning"))
    if meaning is None:
        raise BadRequest(f"meaning must be one of {', '.join(MEANINGS)}",
                         expression=("Parameters.meaning",))
    token = _required(params, "assertion")
    stored, note = _note(ex, rid)
    actor = ex.ctx.actor
    author = creator_of(ex.session, NOTE, stored.rid)
    if meaning.code == "authored":
        if kinds.locked(note):
            raise Conflict("The note is already signed", code="business-rule")
        if actor.id != author:
            raise Forbidden("Only the note's author signs it as author")
    else:
        if not kinds.signed(note) or note.get("status") != "current":
            raise Conflict("Only a note its author signed can be reviewed", code="business-rule")
        if not set(actor.roles) & REVIEWER_ROLES:
            raise Forbidden("A review signature is a physician's or a therapist's")
        if actor.id == author:
            raise Unprocessable("The author cannot review their own note", code="business-rule")
        patients = set(_patients(note))
        if patients - care_team_patients(ex.session, member_keys(actor), patients,
                                         ex.pipeline.clock()):
            raise Forbidden("The reviewer must be on the patient's care team")
    if ex.pipeline.assertions is None:
        raise ServiceUnavailable("Signing is not available: no re-authentication service")
    proof = ex.pipeline.assertions.verify(ex.session, token, actor.id, SIGNING_ACTION)
    signer = Signer(actor.id, proof.display_name or actor.display or actor.id, actor.practitioner)
    expect(ex.session, stored.rid, Transition("sign", actor.id))
    try:
        if meaning.code == "authored":
            written = ex.writer.update(NOTE, stored.rid, signed_form(note, signer),
                                       if_match=stored.version_id)
            assert written.stored is not None
            stored, note = written.stored, canonical_json.loads(written.stored.content or "{}")
        when = instants.instant(stored.last_updated if meaning.code == "authored"
                                else ex.pipeline.clock())
        provenance = ex.writer.create_derived("Provenance", signature_provenance(
            note, stored.rid, stored.version_id, meaning, signer, when)).stored
    finally:
        done(ex.session, stored.rid)
    _record(ex, "sign", stored, note, {"meaning": meaning.code, "provenance": (
        f"Provenance/{provenance.rid}" if provenance else None)})
    return _response(stored, provenance)


def entered_in_error_operation(ex: Exchange, rtype: str | None, rid: str | None
                               ) -> FhirResponse:
    """``$entered-in-error``: withdraw a note with a reason; its content stays readable."""
    _user(ex)
    reason = _required(_parameters(ex), "reason")
    stored, note = _note(ex, rid)
    if note.get("status") == "entered-in-error":
        raise Conflict("The note is already marked entered-in-error", code="business-rule")
    actor = ex.ctx.actor
    expect(ex.session, stored.rid, Transition("entered-in-error", actor.id, reason))
    try:
        written = ex.writer.update(NOTE, stored.rid, withdrawn_form(note, reason),
                                   if_match=stored.version_id)
        assert written.stored is not None
        stored, note = written.stored, canonical_json.loads(written.stored.content or "{}")
        signer = Signer(actor.id, actor.display or actor.id, actor.practitioner)
        provenance = ex.writer.create_derived("Provenance", withdrawal_provenance(
            note, stored.rid, stored.version_id, signer, reason,
            instants.instant(stored.last_updated))).stored
    finally:
        done(ex.session, stored.rid)
    _record(ex, "entered-in-error", stored, note, {"reason": reason[:500]})
    return _response(stored, provenance)


def _sharing(ex: Exchange, rid: str | None, name: str) -> tuple[StoredResource, dict[str, Any],
                                                                 str, dict[str, str]]:
    _user(ex)
    params = _parameters(ex)
    grantee = _required(params, "user").lower()
    stored, note = _note(ex, rid)
    if not kinds.is_psychotherapy(note):
        raise Unprocessable("Only psychotherapy notes (PSYTHPN) are shared by grant; other "
                            "notes follow the care team", code="business-rule")
    if creator_of(ex.session, NOTE, stored.rid) != ex.ctx.actor.id:
        raise Forbidden(f"Only the note's author may {name} access")
    return stored, note, grantee, params


def grant_access_operation(ex: Exchange, rtype: str | None, rid: str | None) -> FhirResponse:
    """``$grant-access``: the author names another user who may read a psychotherapy note
    (the authorization 45 CFR 164.508(a)(2) requires), with the reason."""
    stored, note, grantee, params = _sharing(ex, rid, "grant")
    reason = _required(params, "reason")
    covered = sharing.grant_note(ex.session, stored.rid, grantee=grantee,
                                 granted_by=ex.ctx.actor.id, reason=reason,
                                 now=ex.pipeline.clock())
    _record(ex, "grant-access", stored, note, {"grantee": grantee, "reason": reason[:500],
                                               "covered": covered})
    return FhirResponse(200, bundles.outcome_bytes([_info(
        f"{grantee} may read {len(covered)} record(s) of this note")]))


def revoke_access_operation(ex: Exchange, rtype: str | None, rid: str | None) -> FhirResponse:
    stored, note, grantee, _ = _sharing(ex, rid, "revoke")
    revoked = sharing.revoke_note(ex.session, stored.rid, grantee=grantee,
                                  now=ex.pipeline.clock())
    _record(ex, "revoke-access", stored, note, {"grantee": grantee, "revoked": revoked})
    return FhirResponse(200, bundles.outcome_bytes([_info(f"{revoked} grant(s) revoked")]))


def _info(text: str) -> Issue:
    return Issue("informational", text, "information")


def register_note_operations(registry: OperationRegistry) -> None:
    base = f"{CANONICAL_BASE}/OperationDefinition/"
    for name, handler, doc in (
        ("sign", sign_operation, "Sign a note (meaning authored|reviewed, assertion from "
         "/auth/reauth); writes a Provenance bound to the signed version."),
        ("entered-in-error", entered_in_error_operation,
         "Withdraw a note with a reason; the content stays readable."),
        ("grant-access", grant_access_operation,
         "The author lets another user read a psychotherapy note (user, reason)."),
        ("revoke-access", revoke_access_operation, "Revoke a psychotherapy note grant (user)."),
    ):
        registry.register(Operation(name, handler, types=(NOTE,), levels=("instance",),
                                    writes=True, definition=base + f"DocumentReference-{name}",
                                    documentation=doc))
