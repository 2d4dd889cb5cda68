"""A physician's eligibility decision: what may be decided, and the signed resources recording it.

The service, not the client, evaluates the protocol (``eligibility.evaluate``); the physician
chooses a status and, where the protocol asks for it, justifies it. A hard stop can only ever be
recorded as ``not-eligible``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from ehr import instants
from ehr.clinical.eligibility import (
    DECIDABLE,
    DECISION_CODE,
    ELIGIBILITY_SYSTEM,
    RULE_KIND_SYSTEM,
    RULE_SYSTEM,
    STATUS_DISPLAY,
    STATUS_SYSTEM,
    Evaluation,
)
from ehr.clinical.eligibility_protocol import HARD_STOP, NEEDS_REVIEW
from ehr.clinical.terminology import coding, concept, local_system

# ASTM E1762-95 signature types, as FHIR's signature-type value set names them.
SIGNATURE_SYSTEM = "urn:iso-astm:E1762-95:2013"
AUTHOR_SIGNATURE = "1.2.840.10065.1.12.1.1"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
USER_SYSTEM = local_system("user")
SIGNING_ACTION = "eligibility-decision"


@dataclass(frozen=True)
class DecisionRequest:
    status: str
    justification: str | None = None


@dataclass(frozen=True)
class Signer:
    """The physician who re-entered their password, and the proof the service issued."""

    username: str
    display: str
    practitioner: str | None
    assertion: str  # the consumed signing assertion (a JWS of the server)

    def who(self) -> dict[str, Any]:
        if self.practitioner:
            return {"reference": self.practitioner, "display": self.display or self.username}
        return {"identifier": {"system": USER_SYSTEM, "value": self.username},
                "display": self.display or self.username}


@dataclass(frozen=True)
class Refusal:
    code: str  # OperationOutcome issue code
    status: int  # 409: the record does not allow a decision yet; 422: this decision breaks a rule
    message: str


def refusals(evaluation: Evaluation, request: DecisionRequest) -> list[Refusal]:
    """Every reason the service refuses to record ``request`` (empty: it may be recorded)."""
    if evaluation.checklist is None:
        return [Refusal("business-rule", 409, "No completed medical screening checklist for "
                        "this patient: complete the checklist before deciding eligibility")]
    if evaluation.problems:
        return [Refusal("business-rule", 409, f"The latest checklist is incomplete: {p}")
                for p in evaluation.problems]
    out: list[Refusal] = []
    stops = evaluation.of_kind(HARD_STOP)
    items = evaluation.of_kind(NEEDS_REVIEW)
    justified = bool(request.justification and request.justification.strip())
    if stops and request.status != "not-eligible":
        out.extend(Refusal("business-rule", 422,
                           f"Hard stop '{r.id}' ({r.text}) cannot be overridden: the only "
                           "possible decision is not-eligible") for r in stops)
    if request.status == "eligible" and items and not justified:
        out.append(Refusal("required", 422, "A justification is required to decide eligible "
                           "despite review items: " + "; ".join(r.text for r in items)))
    if request.status == "not-eligible" and not stops and not justified:
        out.append(Refusal("required", 422, "A justification is required to decide "
                           "not-eligible when no hard stop fired"))
    return out


def build_decision(patient_id: str, evaluation: Evaluation, request: DecisionRequest,
                   signer: Signer, decided_us: int, valid_us: int) -> dict[str, Any]:
    """The decision Observation (see ``eligibility`` for its layout)."""
    assert request.status in DECIDABLE
    derived = [ref for ref in (evaluation.checklist_ref, *evaluation.flag_refs) if ref]
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": concept(ELIGIBILITY_SYSTEM, DECISION_CODE,
                        "Eligibility for ketamine-assisted therapy"),
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectivePeriod": {"start": instants.instant(decided_us),
                            "end": instants.instant(decided_us + valid_us)},
        "issued": instants.instant(decided_us),
        "performer": [signer.who()],
        "valueCodeableConcept": concept(STATUS_SYSTEM, request.status,
                                        STATUS_DISPLAY[request.status]),
        "derivedFrom": [{"reference": ref} for ref in derived],
        "component": [{
            "code": {"coding": [coding(RULE_SYSTEM, r.id)], "text": r.text},
            "valueCodeableConcept": concept(RULE_KIND_SYSTEM, r.kind),
        } for r in evaluation.fired],
    }
    if request.justification and request.justification.strip():
        resource["note"] = [{"text": request.justification.strip(),
                             "time": instants.instant(decided_us)}]
    if not resource["component"]:
        del resource["component"]
    return resource


def build_signature_provenance(target: str, patient_id: str, signer: Signer,
                               decided_us: int) -> dict[str, Any]:
    """The Provenance that signs ``target`` (a version-specific reference) for ``signer``."""
    who = signer.who()
    return {
        "resourceType": "Provenance",
        # The patient as a second target puts the signature in the patient's compartment,
        # so the care team that reads the decision can read its signature too.
        "target": [{"reference": target}, {"reference": f"Patient/{patient_id}"}],
        "occurredDateTime": instants.instant(decided_us),
        "recorded": instants.instant(decided_us),
        "reason": [concept("http://terminology.hl7.org/CodeSystem/v3-ActReason", "TREAT")],
        "agent": [{"type": concept(PARTICIPANT_TYPE, "author", "Author"), "who": who}],
        "signature": [{
            "type": [coding(SIGNATURE_SYSTEM, AUTHOR_SIGNATURE, "Author's Signature")],
            "when": instants.instant(decided_us),
            "who": who,
            # The service's single-use re-authentication assertion: verifiable with the
            # server's published key, it shows the signer typed their password to sign.
            "sigFormat": "application/jose",
            "data": base64.b64encode(signer.assertion.encode("ascii")).decode("ascii"),
        }],
    }
