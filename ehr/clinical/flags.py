"""Clinical alerts as FHIR ``Flag`` resources, in one shape for every rule that raises them.

The kind of alert is coded in our own ``alert`` CodeSystem (no public code system names
"PHQ-9 item 9 positive" or "ledger variance"); the category uses HL7's flag-category codes.
A rule raises a flag by ``change.derive("Flag", build_flag(...))`` so the flag is stored,
indexed and audited through the one write path, in the triggering write's transaction.
"""

from __future__ import annotations

from typing import Any

from ehr.clinical.terminology import FLAG_CATEGORY, coding, local_system

ALERT_SYSTEM = local_system("alert")
# Marks flags that stop dosing until a physician records a review (read by the dosing gate).
BLOCKS_DOSING_TAG = coding(local_system("alert-effect"), "blocks-dosing", "Blocks dosing")


def build_flag(
    patient_id: str | None,
    kind: str,
    text: str,
    *,
    category: str = "safety",
    encounter: str | None = None,
    author: str | None = None,
    start: str | None = None,
    blocks_dosing: bool = False,
    subject: str | None = None,
) -> dict[str, Any]:
    """An active Flag about ``Patient/patient_id`` (or ``subject``, e.g. ``Location/x``).

    ``kind`` is a code of our ``alert`` CodeSystem, ``text`` what a clinician reads.
    """
    flag: dict[str, Any] = {
        "resourceType": "Flag",
        "status": "active",
        "category": [{"coding": [coding(FLAG_CATEGORY, category)]}],
        "code": {"coding": [coding(ALERT_SYSTEM, kind)], "text": text},
        "subject": {"reference": subject or f"Patient/{patient_id}"},
    }
    if blocks_dosing:
        flag["meta"] = {"tag": [BLOCKS_DOSING_TAG]}
    if start:
        flag["period"] = {"start": start}
    if encounter:
        flag["encounter"] = {"reference": encounter}
    if author:
        flag["author"] = {"reference": author}
    return flag


def flag_kind(flag: dict[str, Any]) -> str | None:
    for c in (flag.get("code") or {}).get("coding") or []:
        if isinstance(c, dict) and c.get("system") == ALERT_SYSTEM:
            code = c.get("code")
            return code if isinstance(code, str) else None
    return None


def blocks_dosing(flag: dict[str, Any]) -> bool:
    tags = (flag.get("meta") or {}).get("tag") or []
    return any(isinstance(t, dict) and t.get("system") == BLOCKS_DOSING_TAG["system"]
               and t.get("code") == BLOCKS_DOSING_TAG["code"] for t in tags)
