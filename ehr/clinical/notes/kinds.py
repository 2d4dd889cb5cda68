"""Which DocumentReferences are notes, of which kind, and the codes they carry.

The codes live in this one table so a clinician can correct them. LOINC has no document code
for the HIPAA category "psychotherapy notes" (45 CFR 164.501): that category is a legal one,
carried by the ``PSYTHPN`` security label, not by the document type. Every kind therefore
uses LOINC 34904-3 "Mental health Progress note" (in the US Behavioral Health Profiles
Mental Health Clinical Note Types value set) and our local ``note-kind`` coding tells the
three apart. [verify] a clinician may prefer 11506-3 "Progress note" or 11510-5 "Psychology
Progress note"; change ``loinc`` here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ehr.clinical.terminology import ACT_CODE, LOINC, coding, local_system

NOTE_KIND_SYSTEM = local_system("note-kind")
PSYCHOTHERAPY_LABEL = "PSYTHPN"
PART2_LABELS = ("SUD", "42CFRPart2")


@dataclass(frozen=True)
class NoteKind:
    code: str  # in NOTE_KIND_SYSTEM
    display: str
    loinc: str
    loinc_display: str
    psychotherapy: bool = False  # kept apart from the record: PSYTHPN, author only


NOTE_KINDS: dict[str, NoteKind] = {k.code: k for k in (
    NoteKind("preparation", "Preparation session note", "34904-3", "Mental health Progress note"),
    NoteKind("integration", "Integration session note", "34904-3", "Mental health Progress note"),
    NoteKind("psychotherapy", "Psychotherapy note (process notes)", "34904-3",
             "Mental health Progress note", psychotherapy=True),
)}


def note_type(kind: str) -> dict[str, Any]:
    """The ``DocumentReference.type`` a note of ``kind`` carries."""
    entry = NOTE_KINDS[kind]
    return {"coding": [coding(LOINC, entry.loinc, entry.loinc_display),
                       coding(NOTE_KIND_SYSTEM, entry.code, entry.display)],
            "text": entry.display}


def psychotherapy_label() -> dict[str, Any]:
    return coding(ACT_CODE, PSYCHOTHERAPY_LABEL, "psychotherapy note information sensitivity")


def _codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    found = concept.get("coding")
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def kind_code(resource: dict[str, Any] | None) -> str | None:
    """The note-kind code of a DocumentReference (None: not one of our notes)."""
    if not resource or resource.get("resourceType") != "DocumentReference":
        return None
    for c in _codings(resource.get("type")):
        if c.get("system") == NOTE_KIND_SYSTEM and isinstance(c.get("code"), str):
            return str(c["code"])
    return None


def is_note(resource: dict[str, Any] | None) -> bool:
    return kind_code(resource) is not None


def has_loinc(resource: dict[str, Any], code: str) -> bool:
    return any(c.get("system") == LOINC and c.get("code") == code
               for c in _codings(resource.get("type")))


def security_codes(resource: dict[str, Any] | None) -> set[str]:
    if not resource:
        return set()
    labels = (resource.get("meta") or {}).get("security") or []
    return {str(s.get("code")) for s in labels if isinstance(s, dict) and s.get("code")}


def is_psychotherapy(resource: dict[str, Any] | None) -> bool:
    return PSYCHOTHERAPY_LABEL in security_codes(resource)


def appended_targets(resource: dict[str, Any] | None) -> list[str]:
    """Ids of the DocumentReferences this one ``appends`` (an addendum's targets)."""
    out: list[str] = []
    for rel in (resource or {}).get("relatesTo") or []:
        if not isinstance(rel, dict) or rel.get("code") != "appends":
            continue
        ref = (rel.get("target") or {}).get("reference")
        if isinstance(ref, str) and ref.startswith("DocumentReference/"):
            out.append(ref.split("/")[1])
    return out


def signed(resource: dict[str, Any] | None) -> bool:
    return bool(resource) and (resource or {}).get("docStatus") in ("final", "amended")


def locked(resource: dict[str, Any] | None) -> bool:
    """Signed, or withdrawn as entered-in-error: no ordinary edit any more."""
    return signed(resource) or (resource or {}).get("status") == "entered-in-error"
