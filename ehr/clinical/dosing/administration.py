"""Reading a ketamine MedicationAdministration: what was given, to whom, when, from which lot.

The dosing gate needs the facts in one typed shape; this module pulls them out of the FHIR
resource and names every element that is missing or malformed (the gate refuses all of them
in one answer). Which administrations are gated at all is decided here too: any whose
medication is one of the protocol's drugs, by RxNorm, NDC or name, so a dose coded only as
text ("Ketamine 50 mg") is gated like a coded one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from ehr.clinical.dosing.protocol import DosingProtocol, Drug, Route
from ehr.clinical.terminology import CANONICAL_BASE, NDC, RXNORM, SNOMED, UCUM

DOSE_PER_WEIGHT_URL = f"{CANONICAL_BASE}/StructureDefinition/dose-per-body-weight"
OVERRIDE_URL = f"{CANONICAL_BASE}/StructureDefinition/dosing-override"
# Statuses under which no drug reached the patient: no gate, no ledger draw.
NOT_GIVEN = frozenset({"not-done", "entered-in-error"})
MA = "MedicationAdministration"


@dataclass
class Override:
    """A physician's signed decision to dose despite failed pre-dose vitals."""

    reason: str | None
    assertion: str | None  # the signing assertion as sent; consumed, never stored
    signer: str | None  # filled by the server once the assertion verified
    index: int  # position in MedicationAdministration.extension


@dataclass
class Dose:
    """The facts of one administration (None where absent; ``problems`` say why)."""

    patient_id: str | None = None
    status: str | None = None
    effective_us: int | None = None
    effective_end_us: int | None = None
    drug: Drug | None = None
    rxnorm: str | None = None
    ndc: str | None = None
    lot: str | None = None
    mg: Decimal | None = None
    route: Route | None = None
    has_rate: bool = False
    weight_id: str | None = None
    stated_mg_per_kg: Decimal | None = None
    encounter_id: str | None = None
    request_id: str | None = None
    performers: tuple[str, ...] = ()
    override: Override | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)  # (diagnostics, path)

    def problem(self, text: str, path: str) -> None:
        self.problems.append((text, f"{MA}.{path}" if path else MA))


def parse_instant(value: Any) -> int | None:
    """Microseconds of a FHIR dateTime with time and zone (a bare date is too vague to gate)."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def decimal_of(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def local_id(ref: Any, rtype: str) -> str | None:
    """``id`` of a ``{"reference": "rtype/id"}`` (also absolute or versioned forms)."""
    text = ref.get("reference") if isinstance(ref, dict) else None
    if not isinstance(text, str):
        return None
    parts = text.split("/")
    if "_history" in parts:
        parts = parts[:parts.index("_history")]
    if len(parts) >= 2 and parts[-2] == rtype and parts[-1]:
        return parts[-1]
    return None


def _codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def _words(concept: Any) -> str:
    if not isinstance(concept, dict):
        return ""
    texts = [concept.get("text")] + [c.get("display") for c in _codings(concept)]
    return " ".join(t for t in texts if isinstance(t, str))


def medication_concept(resource: dict[str, Any]) -> tuple[Any, dict[str, Any] | None]:
    """The medication's CodeableConcept, and the contained Medication it came from if any."""
    if "medicationCodeableConcept" in resource:
        return resource["medicationCodeableConcept"], None
    ref = resource.get("medicationReference")
    text = ref.get("reference") if isinstance(ref, dict) else None
    if isinstance(text, str) and text.startswith("#"):
        for item in resource.get("contained") or []:
            if isinstance(item, dict) and item.get("resourceType") == "Medication" \
                    and item.get("id") == text[1:]:
                return item.get("code"), item
    return (ref.get("display") if isinstance(ref, dict) else None), None


def drug_of(resource: dict[str, Any], protocol: DosingProtocol) -> Drug | None:
    """The protocol drug this administration gives, if any (code first, then name)."""
    concept, _ = medication_concept(resource)
    if isinstance(concept, str):
        return protocol.drug_by_name(concept)
    for c in _codings(concept):
        system = {RXNORM: "rxnorm", NDC: "ndc"}.get(str(c.get("system")))
        if system and isinstance(c.get("code"), str):
            drug = protocol.drug_by_code(system, c["code"])
            if drug is not None:
                return drug
    return protocol.drug_by_name(_words(concept))


def gated(resource: dict[str, Any] | None, protocol: DosingProtocol) -> bool:
    return resource is not None and drug_of(resource, protocol) is not None


def read_dose(resource: dict[str, Any], protocol: DosingProtocol) -> Dose:
    dose = Dose(status=resource.get("status") if isinstance(resource.get("status"), str)
                else None)
    dose.patient_id = local_id(resource.get("subject"), "Patient")
    if dose.patient_id is None:
        dose.problem("subject must reference the Patient (Patient/<id>)", "subject")
    _read_time(resource, dose)
    _read_medication(resource, protocol, dose)
    _read_dosage(resource, protocol, dose)
    _read_links(resource, dose)
    dose.override = read_override(resource)
    return dose


def _read_time(resource: dict[str, Any], dose: Dose) -> None:
    period = resource.get("effectivePeriod")
    if isinstance(period, dict):
        dose.effective_us = parse_instant(period.get("start"))
        dose.effective_end_us = parse_instant(period.get("end"))
        path = "effectivePeriod.start"
    else:
        dose.effective_us = parse_instant(resource.get("effectiveDateTime"))
        path = "effectiveDateTime"
    if dose.effective_us is None:
        dose.problem("the administration time needs a date, a time and a time zone", path)


def _read_medication(resource: dict[str, Any], protocol: DosingProtocol, dose: Dose) -> None:
    dose.drug = drug_of(resource, protocol)
    concept, medication = medication_concept(resource)
    for c in _codings(concept):
        if c.get("system") == RXNORM and isinstance(c.get("code"), str):
            dose.rxnorm = dose.rxnorm or c["code"]
        if c.get("system") == NDC and isinstance(c.get("code"), str):
            dose.ndc = dose.ndc or c["code"]
    if dose.drug is not None and (dose.rxnorm is None
                                  or protocol.drug_by_code("rxnorm", dose.rxnorm) != dose.drug):
        codes = ", ".join(c.code for c in dose.drug.rxnorm)
        dose.problem(f"the medication must be coded in RxNorm ({RXNORM}) as one of {codes}",
                     "medicationReference")
    if dose.ndc is not None and dose.drug is not None and dose.drug.ndc \
            and protocol.drug_by_code("ndc", dose.ndc) != dose.drug:
        dose.problem(f"NDC {dose.ndc} is not an NDC of {dose.drug.display}",
                     "medicationReference")
    batch = (medication or {}).get("batch") if medication is not None else None
    lot = batch.get("lotNumber") if isinstance(batch, dict) else None
    if isinstance(lot, str) and lot.strip():
        dose.lot = lot.strip()
    else:
        dose.problem("the lot must be given as a contained Medication's batch.lotNumber, "
                     "referenced by medicationReference", "medicationReference")


def _read_dosage(resource: dict[str, Any], protocol: DosingProtocol, dose: Dose) -> None:
    dosage = resource.get("dosage")
    dosage = dosage if isinstance(dosage, dict) else {}
    quantity = dosage.get("dose")
    if isinstance(quantity, dict) and quantity.get("system") == UCUM \
            and quantity.get("code") == "mg":
        dose.mg = decimal_of(quantity.get("value"))
    if dose.mg is None or dose.mg <= 0:
        dose.mg = None
        dose.problem(f"dosage.dose must be a positive quantity in mg (UCUM {UCUM}, code mg)",
                     "dosage.dose")
    snomed = [c.get("code") for c in _codings(dosage.get("route")) if c.get("system") == SNOMED]
    dose.route = next((protocol.route_by_snomed(str(c)) for c in snomed
                       if protocol.route_by_snomed(str(c)) is not None), None)
    if dose.route is None:
        known = ", ".join(f"{r.snomed} ({r.display})" for r in protocol.routes.values())
        dose.problem(f"dosage.route must be a SNOMED CT route of the protocol: {known}",
                     "dosage.route")
    elif dose.drug is not None and dose.drug.key not in dose.route.drugs:
        dose.problem(f"{dose.drug.display} is not given by the {dose.route.display.lower()} "
                     "in this protocol", "dosage.route")
    dose.has_rate = any(k.startswith("rate") for k in dosage)
    if dose.route is not None and dose.route.infusion:
        if not dose.has_rate:
            dose.problem("an infusion needs dosage.rateQuantity or dosage.rateRatio",
                         "dosage")
        if not isinstance(resource.get("effectivePeriod"), dict):
            dose.problem("an infusion needs effectivePeriod (start, and end once stopped)",
                         "effectivePeriod")
    for ext in resource.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == DOSE_PER_WEIGHT_URL:
            value = ext.get("valueQuantity") or {}
            if value.get("code") == "mg/kg" and value.get("system") == UCUM:
                dose.stated_mg_per_kg = decimal_of(value.get("value"))
            if dose.stated_mg_per_kg is None:
                dose.problem(f"the {DOSE_PER_WEIGHT_URL} extension needs a valueQuantity in "
                             "UCUM mg/kg", "extension")


def _read_links(resource: dict[str, Any], dose: Dose) -> None:
    dose.encounter_id = local_id(resource.get("context"), "Encounter")
    if dose.encounter_id is None:
        dose.problem("context must reference the session Encounter", "context")
    dose.request_id = local_id(resource.get("request"), "MedicationRequest")
    if dose.request_id is None:
        dose.problem("request must reference the MedicationRequest (the order)", "request")
    dose.performers = tuple(
        str(p["actor"]["reference"]) for p in resource.get("performer") or []
        if isinstance(p, dict) and isinstance(p.get("actor"), dict)
        and isinstance(p["actor"].get("reference"), str))
    if not dose.performers:
        dose.problem("performer.actor must name who gave the dose", "performer")
    for info in resource.get("supportingInformation") or []:
        weight = local_id(info, "Observation")
        if weight is not None:
            dose.weight_id = weight


def read_override(resource: dict[str, Any]) -> Override | None:
    for index, ext in enumerate(resource.get("extension") or []):
        if not isinstance(ext, dict) or ext.get("url") != OVERRIDE_URL:
            continue
        parts = {e.get("url"): e for e in ext.get("extension") or [] if isinstance(e, dict)}

        def text(name: str, parts: dict[Any, Any] = parts) -> str | None:
            value = (parts.get(name) or {}).get("valueString")
            return value.strip() if isinstance(value, str) and value.strip() else None

        return Override(text("reason"), text("assertion"), text("signer"), index)
    return None
