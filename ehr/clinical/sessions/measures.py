"""What a session flowsheet measures, and the Observations that hold one time point.

Vital signs follow the FHIR R4 vital-signs profiles (category ``vital-signs``, LOINC code, UCUM
unit, subject, effective time, value or ``dataAbsentReason``; blood pressure as the 85354-9
panel with 8480-6/8462-4 components). Sedation (MOAA/S) and dissociation (CADSS total) have no
LOINC code: they are survey Observations with the codes of the screening instruments' local
CodeSystem (``ehr/clinical/instruments``: ``moaas-score``, ``cadss-total``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ehr.clinical.instruments.catalog import SCREENING_SYSTEM
from ehr.clinical.terminology import (
    DATA_ABSENT_REASON,
    LOINC,
    OBSERVATION_CATEGORY,
    UCUM,
    coding,
)

PROFILE_BASE = "http://hl7.org/fhir/StructureDefinition/"
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
BP_MEASURES = ("systolic", "diastolic")
# Codes of the R4 data-absent-reason CodeSystem a nurse may give for "not obtainable".
ABSENT_REASONS = frozenset({
    "unknown", "asked-unknown", "temp-unknown", "not-asked", "asked-declined", "masked",
    "not-applicable", "unsupported", "as-text", "error", "not-a-number", "negative-infinity",
    "positive-infinity", "not-performed", "not-permitted",
})


@dataclass(frozen=True)
class Measure:
    key: str
    codes: tuple[tuple[str, str, str], ...]  # (system, code, display), primary first
    text: str
    unit: str | None  # UCUM code; None for a score
    unit_text: str | None
    category: str  # "vital-signs" | "survey"
    profile: str | None
    # Values outside this range are refused as entry errors (not clinical thresholds).
    plausible: tuple[float, float]
    integer: bool = False


MEASURES: dict[str, Measure] = {m.key: m for m in (
    Measure("systolic", ((LOINC, "8480-6", "Systolic blood pressure"),), "Systolic BP",
            "mm[Hg]", "mmHg", "vital-signs", None, (20, 350)),
    Measure("diastolic", ((LOINC, "8462-4", "Diastolic blood pressure"),), "Diastolic BP",
            "mm[Hg]", "mmHg", "vital-signs", None, (10, 250)),
    Measure("heart-rate", ((LOINC, "8867-4", "Heart rate"),), "Heart rate",
            "/min", "beats/minute", "vital-signs", PROFILE_BASE + "heartrate", (10, 300)),
    Measure("respiratory-rate", ((LOINC, "9279-1", "Respiratory rate"),), "Respiratory rate",
            "/min", "breaths/minute", "vital-signs", PROFILE_BASE + "resprate", (1, 80)),
    Measure("spo2", ((LOINC, "2708-6", "Oxygen saturation in Arterial blood"),
                     (LOINC, "59408-5",
                      "Oxygen saturation in Arterial blood by Pulse oximetry")),
            "Oxygen saturation (SpO2)", "%", "%", "vital-signs", PROFILE_BASE + "oxygensat",
            (30, 100)),
    Measure("temperature", ((LOINC, "8310-5", "Body temperature"),), "Body temperature",
            "Cel", "C", "vital-signs", PROFILE_BASE + "bodytemp", (25, 45)),
    Measure("moaas", ((SCREENING_SYSTEM, "moaas-score", "MOAA/S score"),),
            "MOAA/S", None, None, "survey", None, (0, 5), integer=True),
    Measure("cadss", ((SCREENING_SYSTEM, "cadss-total", "CADSS total score"),),
            "CADSS total", None, None, "survey", None, (0, 92), integer=True),
)}
# The keys a flowsheet row accepts, in the order their Observations are written.
ROW_KEYS = ("systolic", "diastolic", "heart-rate", "respiratory-rate", "spo2", "temperature",
            "moaas", "cadss")


@dataclass
class VitalsRow:
    """One flowsheet time point: values, and measures marked not obtainable (with a reason)."""

    effective: str  # FHIR dateTime
    values: dict[str, float] = field(default_factory=dict)
    absent: dict[str, str] = field(default_factory=dict)

    def problems(self) -> list[tuple[str, str]]:
        """(measure, problem) for every value that cannot be recorded."""
        out: list[tuple[str, str]] = []
        for key, value in self.values.items():
            measure = MEASURES[key]
            low, high = measure.plausible
            if not low <= value <= high:
                out.append((key, f"{measure.text} {value:g} is outside the plausible range "
                                 f"{low:g}-{high:g}"))
            elif measure.integer and not float(value).is_integer():
                out.append((key, f"{measure.text} must be a whole number"))
        for key, reason in self.absent.items():
            if key in self.values:
                out.append((key, f"{MEASURES[key].text} has a value and is marked not obtained"))
            elif reason not in ABSENT_REASONS:
                out.append((key, f"{reason!r} is not a data-absent-reason code"))
        return out

    def empty(self) -> bool:
        return not self.values and not self.absent


def _concept(measure: Measure) -> dict[str, Any]:
    return {"coding": [coding(s, c, d) for s, c, d in measure.codes], "text": measure.text}


def _category(code: str) -> list[dict[str, Any]]:
    display = "Vital Signs" if code == "vital-signs" else "Survey"
    return [{"coding": [coding(OBSERVATION_CATEGORY, code, display)], "text": display}]


def _absent(reason: str) -> dict[str, Any]:
    return {"coding": [coding(DATA_ABSENT_REASON, reason)]}


def _value(measure: Measure, value: float) -> dict[str, Any]:
    if measure.unit is None:
        return {"valueInteger": int(value)}
    number: int | float = int(value) if float(value).is_integer() else value
    return {"valueQuantity": {"value": number, "unit": measure.unit_text, "system": UCUM,
                              "code": measure.unit}}


def _base(code: dict[str, Any], category: str, profile: str | None, patient: str,
          encounter: str, effective: str, performer: str | None) -> dict[str, Any]:
    obs: dict[str, Any] = {"resourceType": "Observation", "status": "final",
                           "category": _category(category), "code": code,
                           "subject": {"reference": patient},
                           "encounter": {"reference": encounter},
                           "effectiveDateTime": effective}
    if profile:
        obs["meta"] = {"profile": [PROFILE_BASE + "vitalsigns", profile]}
    if performer:
        obs["performer"] = [{"reference": performer}]
    return obs


def row_observations(row: VitalsRow, *, patient: str, encounter: str,
                     performer: str | None = None) -> list[dict[str, Any]]:
    """The Observations of one flowsheet row: a measure neither given nor marked is skipped."""
    out: list[dict[str, Any]] = []
    if any(k in row.values or k in row.absent for k in BP_MEASURES):
        panel = _base({"coding": [coding(LOINC, *BP_PANEL)], "text": "Blood pressure"},
                      "vital-signs", PROFILE_BASE + "bp", patient, encounter, row.effective,
                      performer)
        panel["component"] = []
        for key in BP_MEASURES:
            measure = MEASURES[key]
            component: dict[str, Any] = {"code": _concept(measure)}
            if key in row.values:
                component.update(_value(measure, row.values[key]))
            else:
                # The bp profile requires both components: an unmeasured one says why.
                component["dataAbsentReason"] = _absent(row.absent.get(key, "not-performed"))
            panel["component"].append(component)
        out.append(panel)
    for key in ROW_KEYS:
        if key in BP_MEASURES or (key not in row.values and key not in row.absent):
            continue
        measure = MEASURES[key]
        obs = _base(_concept(measure), measure.category, measure.profile, patient, encounter,
                    row.effective, performer)
        if key in row.values:
            obs.update(_value(measure, row.values[key]))
        else:
            obs["dataAbsentReason"] = _absent(row.absent[key])
        out.append(obs)
    return out


def _codes(concept: Any) -> set[tuple[Any, Any]]:
    codings = (concept.get("coding") or []) if isinstance(concept, dict) else []
    return {(c.get("system"), c.get("code")) for c in codings if isinstance(c, dict)}


def _number(holder: dict[str, Any]) -> float | None:
    if "valueQuantity" in holder:
        value = (holder.get("valueQuantity") or {}).get("value")
    else:
        value = holder.get("valueInteger")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else None


def _measure_of(concept: Any) -> str | None:
    found = _codes(concept)
    for key, measure in MEASURES.items():
        if (measure.codes[0][0], measure.codes[0][1]) in found:
            return key
    return None


def observed_values(obs: dict[str, Any]) -> dict[str, float]:
    """The measured values (by measure key) an Observation holds; absent values are left out."""
    if obs.get("status") in ("entered-in-error", "cancelled"):
        return {}
    out: dict[str, float] = {}
    if (LOINC, BP_PANEL[0]) in _codes(obs.get("code")):
        for component in obs.get("component") or []:
            key = _measure_of(component.get("code")) if isinstance(component, dict) else None
            value = _number(component) if key else None
            if key and value is not None:
                out[key] = value
        return out
    key = _measure_of(obs.get("code"))
    value = _number(obs) if key else None
    if key and value is not None:
        out[key] = value
    return out


def blood_pressure_measured(values: dict[str, float]) -> bool:
    return all(k in values for k in BP_MEASURES)


MEASUREMENT_OF = {
    # Schedule measurement names -> the measure keys that must all be present.
    "blood-pressure": BP_MEASURES,
    "heart-rate": ("heart-rate",),
    "spo2": ("spo2",),
    "respiratory-rate": ("respiratory-rate",),
    "temperature": ("temperature",),
    "moaas": ("moaas",),
    "cadss": ("cadss",),
}
