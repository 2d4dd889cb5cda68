"""``Patient/{id}/$eligibility`` (current status) and ``$eligibility-decision`` (record one).

The decision operation is the only way to write an eligibility decision: the caller must be a
physician who may read the patient, and must present a single-use signing assertion from
``POST /auth/reauth``. The service evaluates the protocol from the patient's latest completed
checklist and active flags, refuses what the protocol forbids, then writes the decision
Observation and its signing Provenance through the Writer (validated, authorized, audited)
in the request's transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from ehr import instants
from ehr.audit.events import AccessEvent
from ehr.clinical.eligibility import DECIDABLE, EligibilityStatus, current_eligibility, evaluate
from ehr.clinical.eligibility_decision import (
    SIGNING_ACTION,
    DecisionRequest,
    Signer,
    build_decision,
    build_signature_provenance,
    refusals,
)
from ehr.clinical.eligibility_protocol import default_protocol
from ehr.clinical.eligibility_rules import sanctioned_decision
from ehr.errors import BadRequest, Conflict, Forbidden, Issue, NotFound, Unprocessable
from ehr.fhir import canonical_json
from ehr.fhir.http import FhirResponse
from ehr.fhir.interactions import Exchange
from ehr.fhir.operations import Operation, OperationRegistry
from ehr.store.repository import StoredResource, get_current

PHYSICIAN = "physician"
_PARAMS = ("status", "justification", "signingAssertion")


def _patient(ex: Exchange, rid: str | None) -> str:
    """The patient id, once the caller is known to be allowed to read that patient."""
    if not rid:
        raise BadRequest("the operation is invoked on a Patient instance")
    stored = get_current(ex.session, "Patient", rid)
    # The permission first: a caller who may not read patients learns nothing of this one.
    ex.pipeline.guard.authorize(ex.session, ex.ctx, "read", "Patient",
                                stored=stored if stored and not stored.deleted else None)
    if stored is None or stored.deleted:
        raise NotFound(f"Patient/{rid} is not known")
    return rid


def status_parameters(result: EligibilityStatus) -> dict[str, Any]:
    params: list[dict[str, Any]] = [{"name": "status", "valueCode": result.status}]
    params += [{"name": "reason", "valueString": r} for r in result.reasons]
    if result.decided_us is not None:
        params.append({"name": "decided", "valueInstant": instants.instant(result.decided_us)})
    if result.expires_us is not None:
        params.append({"name": "expires", "valueInstant": instants.instant(result.expires_us)})
    if result.decision:
        params.append({"name": "decision", "valueReference": {"reference": result.decision}})
    return {"resourceType": "Parameters", "parameter": params}


def eligibility(ex: Exchange, rtype: str | None, rid: str | None) -> FhirResponse:
    patient = _patient(ex, rid)
    result = current_eligibility(ex.session, patient, ex.pipeline.clock())
    ex.pipeline.recorder.record(ex.session, ex.ctx, AccessEvent(
        "operation:eligibility", "Patient", patient, patients=(patient,),
        detail={"status": result.status, "decision": result.decision}))
    return FhirResponse(200, canonical_json.dumps(status_parameters(result)).encode())


def _inputs(body: dict[str, Any]) -> dict[str, str]:
    if body.get("resourceType") != "Parameters":
        raise BadRequest("$eligibility-decision takes a Parameters resource")
    out: dict[str, str] = {}
    for param in body.get("parameter") or []:
        name = param.get("name") if isinstance(param, dict) else None
        if name not in _PARAMS:
            raise BadRequest(f"Unknown parameter {name!r}; expected {', '.join(_PARAMS)}",
                             expression=("Parameters.parameter",))
        value = next((v for k, v in param.items() if k.startswith("value")), None)
        if not isinstance(value, str) or name in out:
            raise BadRequest(f"Parameter {name!r} must be given once, as a string or code",
                             expression=(f"Parameters.parameter.where(name='{name}')",))
        out[name] = value
    return out


def eligibility_decision(ex: Exchange, rtype: str | None, rid: str | None) -> FhirResponse:
    actor = ex.ctx.actor
    if actor.kind != "user" or PHYSICIAN not in actor.roles:
        raise Forbidden("Only a physician may record an eligibility decision")
    patient = _patient(ex, rid)
    inputs = _inputs(ex.json_body())
    status = inputs.get("status")
    if status not in DECIDABLE:
        raise BadRequest(f"status must be one of {', '.join(DECIDABLE)}",
                         expression=("Parameters.parameter.where(name='status')",))
    token = inputs.get("signingAssertion")
    if not token:
        raise Forbidden("A signing assertion is required: re-enter your password at "
                        "POST /auth/reauth and send the assertion as 'signingAssertion'")
    if ex.pipeline.assertions is None:
        raise Forbidden("Signatures are not available: the identity layer is not configured")
    # Consumed in this transaction: a refused decision rolls the consumption back with it.
    assertion = ex.pipeline.assertions.verify(ex.session, token, actor.id, SIGNING_ACTION)
    request = DecisionRequest(status, inputs.get("justification"))
    protocol = default_protocol()
    evaluation = evaluate(ex.session, patient, protocol)
    refused = refusals(evaluation, request)
    if refused:
        issues = [Issue(r.code, r.message) for r in refused]
        raise (Conflict if all(r.status == 409 for r in refused) else Unprocessable)(
            issues=issues)
    signer = Signer(assertion.username, assertion.display_name or actor.display,
                    actor.practitioner, token)
    decided = ex.pipeline.clock()
    observation_id = str(uuid.uuid4())
    with sanctioned_decision(observation_id):
        decision = ex.writer.create("Observation", build_decision(
            patient, evaluation, request, signer, decided, protocol.valid_us),
            rid=observation_id)
        stored = _stored(decision.stored)
        target = f"Observation/{stored.rid}/_history/{stored.version_id}"
        provenance = _stored(ex.writer.create(
            "Provenance", build_signature_provenance(target, patient, signer, decided)).stored)
    ex.pipeline.recorder.record(ex.session, ex.ctx, AccessEvent(
        "operation:eligibility-decision", "Patient", patient, patients=(patient,),
        detail={"status": status, "decision": target,
                "provenance": f"Provenance/{provenance.rid}",
                "rules": [r.id for r in evaluation.fired]}))
    out = {"resourceType": "Parameters", "parameter": [
        {"name": "observation", "resource": canonical_json.loads(stored.content or "{}")},
        {"name": "provenance", "resource": canonical_json.loads(provenance.content or "{}")},
        *status_parameters(current_eligibility(ex.session, patient, decided))["parameter"],
    ]}
    return FhirResponse(201, canonical_json.dumps(out).encode(),
                        {"Location": f"{ex.base}/{target}"})


def _stored(stored: StoredResource | None) -> StoredResource:
    if stored is None:  # a create always stores; this guards the type, not a real path
        raise Conflict("the decision was not stored")
    return stored


def register_eligibility_operations(registry: OperationRegistry) -> None:
    registry.register(Operation(
        "eligibility", eligibility, types=("Patient",), levels=("instance",), methods=("GET",),
        documentation="Current eligibility for ketamine dosing: status (eligible, "
                      "not-eligible, needs-review, expired, none), reasons, decided, expires, "
                      "decision (see docs/eligibility.md).",
    ))
    registry.register(Operation(
        "eligibility-decision", eligibility_decision, types=("Patient",), levels=("instance",),
        methods=("POST",), writes=True,
        documentation="A physician records a signed eligibility decision: Parameters status, "
                      "justification, signingAssertion (from POST /auth/reauth).",
    ))
