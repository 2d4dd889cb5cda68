"""What one audited action did: the input of the audit trail, independent of any web layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Sensitivity labels whose disclosure the trail flags (psychotherapy notes, 42 CFR Part 2).
PROTECTED_LABELS = ("PSYTHPN", "SUD", "42CFRPart2")


@dataclass
class AccessEvent:
    """One audited action.

    ``interaction`` is a FHIR interaction (read, vread, search-type, history-instance, create,
    update, delete, transaction, batch, operation) or a security event (token-issued,
    token-refused, login-failed, lockout, break-glass, user-admin, client-admin, denied, ...).
    """

    interaction: str
    rtype: str | None = None
    rid: str | None = None
    version_id: int | None = None
    status: int = 200
    patients: tuple[str, ...] = ()
    query: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    protected: tuple[str, ...] = ()
    category: str = "rest"  # "rest" | "security" | "ui"

    @property
    def outcome(self) -> str:
        if self.status < 400:
            return "success"
        return "denied" if self.status in (401, 403) or self.detail.get("denied") else "error"


def patients_referenced(resource: dict[str, Any]) -> list[str]:
    """Patient ids a resource's compartment elements (patient, subject, beneficiary) name."""
    found: list[str] = []
    for key in ("patient", "subject", "beneficiary"):
        ref = resource.get(key)
        if isinstance(ref, dict):
            text = ref.get("reference")
            if isinstance(text, str) and text.startswith("Patient/"):
                found.append(text.split("/")[1])
    return found


def labels_in(text: str | None) -> tuple[str, ...]:
    """Protected labels present in a stored resource's text (a cheap scan, no parsing)."""
    if not text or '"security"' not in text:
        return ()
    return tuple(label for label in PROTECTED_LABELS if f'"code":"{label}"' in text)
