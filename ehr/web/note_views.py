"""What the note pages show and send: note bodies as the notes feature expects them, and
plain-words summaries of notes, their signatures and withdrawals.

The rules about notes (who edits, what signing locks) live in ``ehr.clinical.notes`` and are
enforced by the FHIR write path; this module only builds requests and reads answers.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from ehr.clinical.notes import kinds
from ehr.clinical.notes.signing import (
    DATA_OPERATION,
    ENTERED_IN_ERROR_REASON,
    MEANINGS,
    SIGNATURE_TYPE_SYSTEM,
)
from ehr.context import Actor

TEXT = "text/plain; charset=utf-8"
# Kinds offered from a chart, in the order clinicians write them in a course.
OFFERED_KINDS = ("preparation", "integration", "psychotherapy")
_MEANING_OF_TYPE = {m.signature_type: m.code for m in MEANINGS.values()}


def kind_label(kind: str | None) -> str:
    entry = kinds.NOTE_KINDS.get(kind or "")
    return entry.display if entry else "Note"


def note_body(kind: str, patient_id: str, author: Actor, text: str, date: str, *,
              appends: str | None = None) -> dict[str, Any]:
    """A new draft note (or addendum) of ``kind`` about the patient, by ``author``."""
    who: dict[str, Any] = {"display": author.display or author.id}
    if author.practitioner:
        who["reference"] = author.practitioner
    body: dict[str, Any] = {
        "resourceType": "DocumentReference", "status": "current", "docStatus": "preliminary",
        "type": kinds.note_type(kind), "subject": {"reference": f"Patient/{patient_id}"},
        "date": date, "author": [who], "content": [attachment(text)]}
    if kinds.NOTE_KINDS[kind].psychotherapy:
        body["meta"] = {"security": [kinds.psychotherapy_label()]}
    if appends:
        body["relatesTo"] = [{"code": "appends",
                              "target": {"reference": f"DocumentReference/{appends}"}}]
    return body


def attachment(text: str) -> dict[str, Any]:
    return {"attachment": {"contentType": TEXT,
                           "data": base64.b64encode(text.encode("utf-8")).decode("ascii")}}


def edited_body(note: dict[str, Any], text: str) -> dict[str, Any]:
    """The draft with new text; everything else (kind, labels, relations) as it was."""
    out = {k: v for k, v in note.items() if k != "meta"}
    meta = {k: v for k, v in (note.get("meta") or {}).items()
            if k not in ("versionId", "lastUpdated")}
    if meta:
        out["meta"] = meta
    out["content"] = [attachment(text)]
    return out


def note_text(note: dict[str, Any]) -> str:
    """The note's text: its first attachment's data, decoded."""
    for content in note.get("content") or []:
        att = (content or {}).get("attachment") or {}
        data = att.get("data")
        if isinstance(data, str):
            try:
                return base64.b64decode(data).decode("utf-8", errors="replace")
            except (binascii.Error, ValueError):
                return ""
        if att.get("url"):
            return f"(content at {att['url']})"
    return ""


def subject_id(note: dict[str, Any]) -> str | None:
    ref = (note.get("subject") or {}).get("reference")
    return ref.split("/")[1] if isinstance(ref, str) and ref.startswith("Patient/") else None


def withdrawal_reason(note: dict[str, Any]) -> str:
    for ext in note.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == ENTERED_IN_ERROR_REASON:
            return str(ext.get("valueString") or "")
    return ""


def state(note: dict[str, Any]) -> str:
    """draft | signed | entered-in-error, as the pages name a note's state."""
    if note.get("status") == "entered-in-error":
        return "entered-in-error"
    return "signed" if kinds.signed(note) else "draft"


STATE_LABELS = {"draft": "Draft", "signed": "Signed", "entered-in-error": "Entered in error"}


def summary(note: dict[str, Any]) -> dict[str, Any]:
    """One note as a list row or a page heading shows it."""
    code = kinds.kind_code(note)
    text = note_text(note)
    appends = kinds.appended_targets(note)
    current = state(note)
    return {"id": str(note.get("id")), "kind": code, "kind_label": kind_label(code),
            "psychotherapy": kinds.is_psychotherapy(note), "state": current,
            "state_label": STATE_LABELS[current], "date": note.get("date") or (
                note.get("meta") or {}).get("lastUpdated"),
            "version": str((note.get("meta") or {}).get("versionId") or ""),
            "patient": subject_id(note), "appends": appends[0] if appends else None,
            "author": ", ".join(str(a.get("display") or a.get("reference") or "")
                                for a in note.get("author") or [] if isinstance(a, dict)),
            "text": text, "excerpt": text[:140] + ("…" if len(text) > 140 else ""),
            "reason": withdrawal_reason(note)}


def _version_of(provenance: dict[str, Any], rid: str) -> str:
    for target in provenance.get("target") or []:
        ref = str((target or {}).get("reference") or "")
        if ref.startswith(f"DocumentReference/{rid}/_history/"):
            return ref.rsplit("/", 1)[-1]
    return ""


def _targets(provenance: dict[str, Any], rid: str) -> bool:
    return any(str((t or {}).get("reference") or "").split("/_history/")[0]
               == f"DocumentReference/{rid}" for t in provenance.get("target") or [])


def signatures(provenances: list[dict[str, Any]], rid: str) -> list[dict[str, str]]:
    """The signatures on note ``rid``: printed name, time and meaning, oldest first."""
    out: list[dict[str, str]] = []
    for provenance in provenances:
        if not _targets(provenance, rid):
            continue
        for signature in provenance.get("signature") or []:
            codes = [c.get("code") for c in signature.get("type") or []
                     if c.get("system") == SIGNATURE_TYPE_SYSTEM]
            meaning = next((_MEANING_OF_TYPE[c] for c in codes if c in _MEANING_OF_TYPE), "")
            out.append({"name": str((signature.get("who") or {}).get("display") or ""),
                        "when": str(signature.get("when") or ""), "meaning": meaning,
                        "version": _version_of(provenance, rid)})
    return sorted(out, key=lambda s: s["when"])


def withdrawals(provenances: list[dict[str, Any]], rid: str) -> list[dict[str, str]]:
    """Who marked note ``rid`` entered-in-error, when and why."""
    out: list[dict[str, str]] = []
    for provenance in provenances:
        activity = (provenance.get("activity") or {}).get("coding") or []
        if not _targets(provenance, rid) or not any(
                c.get("system") == DATA_OPERATION and c.get("code") == "NULLIFY"
                for c in activity):
            continue
        agents = provenance.get("agent") or [{}]
        out.append({"name": str(((agents[0] or {}).get("who") or {}).get("display") or ""),
                    "when": str(provenance.get("recorded") or ""),
                    "reason": "; ".join(str(r.get("text") or "")
                                        for r in provenance.get("reason") or [])})
    return out


def split_notes(notes: list[dict[str, Any]]) -> tuple[list[dict[str, Any]],
                                                      list[dict[str, Any]]]:
    """Ordinary notes and psychotherapy notes, never in one list."""
    ordinary = [n for n in notes if not n["psychotherapy"]]
    return ordinary, [n for n in notes if n["psychotherapy"]]
