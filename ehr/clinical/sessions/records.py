"""The stored records of one session, read through the store's index (no SQL here).

These reads serve rules and operations that already decided the caller may act on the
session; they do not re-check access per record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from ehr.clinical.terminology import ACT_CODE
from ehr.store import repository
from ehr.store.criteria import ReferenceMatch, TokenMatch
from ehr.store.search_sql import matching_pks

# A session has tens of records; this bound only stops a runaway read.
_MAX_ROWS = 5000


def load(session: Session, rtype: str, rid: str) -> dict[str, Any] | None:
    """The current, live resource ``rtype/rid`` (None when missing or deleted)."""
    stored = repository.get_current(session, rtype, rid)
    if stored is None or stored.deleted or not stored.content:
        return None
    resource = json.loads(stored.content)
    return resource if isinstance(resource, dict) else None


def load_reference(session: Session, reference: str | None,
                   rtype: str | None = None) -> dict[str, Any] | None:
    """The resource a relative reference ``Type/id`` names (None when it does not resolve)."""
    if not reference or reference.count("/") != 1:
        return None
    ref_type, rid = reference.split("/")
    if rtype is not None and ref_type != rtype:
        return None
    return load(session, ref_type, rid)


def referencing(session: Session, rtype: str, param: str, target_type: str,
                target_id: str) -> list[dict[str, Any]]:
    """Current ``rtype`` resources whose reference search parameter ``param`` names the target."""
    pks = matching_pks(session, rtype,
                       [ReferenceMatch(param, target_id, (target_type,))], _MAX_ROWS)
    out: list[dict[str, Any]] = []
    for stored in repository.get_current_by_pks(session, pks):
        if stored.content and not stored.deleted:
            loaded = json.loads(stored.content)
            if isinstance(loaded, dict):
                out.append(loaded)
    return out


@dataclass(frozen=True)
class SessionRecords:
    encounter: dict[str, Any]
    administrations: list[dict[str, Any]]
    observations: list[dict[str, Any]]

    @property
    def rid(self) -> str:
        return str(self.encounter["id"])

    @property
    def patient(self) -> str | None:
        ref = (self.encounter.get("subject") or {}).get("reference")
        return ref if isinstance(ref, str) and ref.startswith("Patient/") else None


def session_records(session: Session, encounter: dict[str, Any]) -> SessionRecords:
    rid = str(encounter["id"])
    administrations = referencing(session, "MedicationAdministration", "context", "Encounter",
                                  rid)
    observations = referencing(session, "Observation", "encounter", "Encounter", rid)
    return SessionRecords(encounter, administrations, observations)


def subject_of(resource: dict[str, Any] | None) -> str | None:
    if not resource:
        return None
    for key in ("subject", "patient"):
        ref = (resource.get(key) or {}).get("reference")
        if isinstance(ref, str):
            return ref
    return None


def ambulatory_encounters(session: Session) -> list[dict[str, Any]]:
    """Every current Encounter of class AMB (sessions are among them)."""
    pks = matching_pks(session, "Encounter", [TokenMatch("class", "AMB", ACT_CODE)], 1_000_000)
    out: list[dict[str, Any]] = []
    for start in range(0, len(pks), 500):
        for stored in repository.get_current_by_pks(session, pks[start:start + 500]):
            if stored.content and not stored.deleted:
                loaded = json.loads(stored.content)
                if isinstance(loaded, dict):
                    out.append(loaded)
    return out
