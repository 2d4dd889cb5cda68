"""Code systems and canonical URLs the service owns, and the public ones it uses.

Where no LOINC or SNOMED CT code exists for a concept we code it in a local CodeSystem under
``CANONICAL_BASE``; a public code is never invented.
"""

from __future__ import annotations

from typing import Any

# Canonical base for the Questionnaires, CodeSystems and protocol data this service ships.
CANONICAL_BASE = "https://ehr-kat.org/fhir"

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


def local_system(name: str) -> str:
    """The URL of one of our own CodeSystems, e.g. ``local_system("alert")``."""
    return f"{CANONICAL_BASE}/CodeSystem/{name}"


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str | None = None,
            text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"coding": [coding(system, code, display)]}
    if text:
        out["text"] = text
    return out
