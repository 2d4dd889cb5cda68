"""Signatures on notes: the two meanings, their codes, and the Provenance that records them.

A note changes state (draft -> final, anything -> entered-in-error) only through the
``$sign`` and ``$entered-in-error`` operations. The operation announces the transition it
is about to write with ``expect``; the note rules accept a locked or finalising change only
when it matches, so a PUT, a transaction entry or a conditional update can never do it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from ehr.clinical.terminology import CANONICAL_BASE, coding

SIGNATURE_TYPE_SYSTEM = "urn:iso-astm:E1762-95:2013"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
DOCUMENT_COMPLETION = "http://terminology.hl7.org/CodeSystem/v3-DocumentCompletion"
DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
USER_IDENTIFIER_SYSTEM = f"{CANONICAL_BASE}/sid/user"
ENTERED_IN_ERROR_REASON = f"{CANONICAL_BASE}/StructureDefinition/entered-in-error-reason"
SIGNING_ACTION = "note-signing"


@dataclass(frozen=True)
class Meaning:
    """What a signature means (21 CFR 11.50), as the ASTM E1762 signature type and the
    Provenance agent type and activity that go with it."""

    code: str
    signature_type: str
    signature_display: str
    agent_type: str
    activity: tuple[str, str, str]


MEANINGS: dict[str, Meaning] = {
    "authored": Meaning("authored", "1.2.840.10065.1.12.1.1", "Author's Signature", "author",
                        (DOCUMENT_COMPLETION, "LA", "legally authenticated")),
    "reviewed": Meaning("reviewed", "1.2.840.10065.1.12.1.13", "Review Signature", "verifier",
                        (DOCUMENT_COMPLETION, "AU", "authenticated")),
}
REVIEWER_ROLES = frozenset({"physician", "therapist"})
CORRECTOR_ROLES = frozenset({"physician"})  # besides the author, who may withdraw a signed note

_KEY = "ehr_note_transitions"


@dataclass(frozen=True)
class Signer:
    username: str
    printed_name: str
    practitioner: str | None

    def reference(self) -> dict[str, Any]:
        if self.practitioner:
            return {"reference": self.practitioner, "display": self.printed_name}
        return {"identifier": {"system": USER_IDENTIFIER_SYSTEM, "value": self.username},
                "display": self.printed_name}


@dataclass(frozen=True)
class Transition:
    """A state change an operation is about to write to one note."""

    kind: str  # "sign" | "entered-in-error"
    actor: str
    reason: str = ""


def expect(session: Session, rid: str, transition: Transition) -> None:
    session.info.setdefault(_KEY, {})[rid] = transition


def expected(session: Session, rid: str) -> Transition | None:
    found = session.info.get(_KEY, {}).get(rid)
    return found if isinstance(found, Transition) else None


def done(session: Session, rid: str) -> None:
    session.info.get(_KEY, {}).pop(rid, None)


def signed_form(note: dict[str, Any], signer: Signer) -> dict[str, Any]:
    """The note as the author's signature leaves it: final, authenticated by the signer."""
    out = {k: v for k, v in note.items() if k != "meta"}
    out["meta"] = {k: v for k, v in (note.get("meta") or {}).items()
                   if k not in ("versionId", "lastUpdated")}
    out["docStatus"] = "final"
    out["authenticator"] = signer.reference()
    return out


def withdrawn_form(note: dict[str, Any], reason: str) -> dict[str, Any]:
    """The note marked entered-in-error: the content stays, the reason is added."""
    out = {k: v for k, v in note.items() if k != "meta"}
    out["meta"] = {k: v for k, v in (note.get("meta") or {}).items()
                   if k not in ("versionId", "lastUpdated")}
    out["status"] = "entered-in-error"
    out["extension"] = [*[e for e in note.get("extension") or []
                          if not (isinstance(e, dict) and e.get("url") == ENTERED_IN_ERROR_REASON)],
                        {"url": ENTERED_IN_ERROR_REASON, "valueString": reason}]
    return out


def _provenance_base(note: dict[str, Any], rid: str, version: int, when: str,
                     ) -> dict[str, Any]:
    targets: list[dict[str, Any]] = [{"reference": f"DocumentReference/{rid}/_history/{version}"}]
    subject = (note.get("subject") or {}).get("reference")
    if isinstance(subject, str) and subject.startswith("Patient/"):
        # The patient as a second target puts the Provenance in the patient's compartment,
        # so the care team that reads the note can read its signatures too.
        targets.append({"reference": subject})
    out: dict[str, Any] = {"resourceType": "Provenance", "target": targets, "recorded": when}
    labels = (note.get("meta") or {}).get("security")
    if labels:
        # A signature on a psychotherapy note is as sensitive as the note.
        out["meta"] = {"security": labels}
    return out


def signature_provenance(note: dict[str, Any], rid: str, version: int, meaning: Meaning,
                         signer: Signer, when: str) -> dict[str, Any]:
    """Provenance of one signature, bound to the exact version signed."""
    out = _provenance_base(note, rid, version, when)
    out["activity"] = {"coding": [coding(*meaning.activity)]}
    out["agent"] = [{"type": {"coding": [coding(PARTICIPANT_TYPE, meaning.agent_type)]},
                     "who": signer.reference()}]
    out["signature"] = [{
        "type": [coding(SIGNATURE_TYPE_SYSTEM, meaning.signature_type,
                        meaning.signature_display)],
        "when": when, "who": signer.reference(), "targetFormat": "application/fhir+json"}]
    return out


def withdrawal_provenance(note: dict[str, Any], rid: str, version: int, actor: Signer,
                          reason: str, when: str) -> dict[str, Any]:
    """Provenance of marking a note entered-in-error, with the reason given."""
    out = _provenance_base(note, rid, version, when)
    out["activity"] = {"coding": [coding(DATA_OPERATION, "NULLIFY", "nullify")]}
    out["reason"] = [{"text": reason}]
    out["agent"] = [{"type": {"coding": [coding(PARTICIPANT_TYPE, "performer")]},
                     "who": actor.reference()}]
    return out
