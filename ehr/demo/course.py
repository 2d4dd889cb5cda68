"""Treatment sessions as the team runs them at the chair: arrival, pre-dose vitals, the dose
charted through the dosing gates (drawn from the ledger), the vitals flowsheet, post-dose
monitoring and the signed discharge; plus notes, adverse events and the REMS form."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from ehr.clinical.dosing.administration import DOSE_PER_WEIGHT_URL
from ehr.clinical.notes.kinds import note_type, psychotherapy_label
from ehr.clinical.notes.signing import SIGNING_ACTION as NOTE_SIGNING
from ehr.clinical.sessions.phases import session_encounter, with_phase
from ehr.clinical.terminology import LOINC, NDC, OBSERVATION_CATEGORY, RXNORM, SNOMED, UCUM
from ehr.demo.accounts import LOCATION_ID, practitioner_of
from ehr.demo.clinic import MINUTE, Clinic
from ehr.fhir.session_operations import DISCHARGE_ACTION

IV = {"system": SNOMED, "code": "47625008", "display": "Intravenous route"}
NASAL = {"system": SNOMED, "code": "46713006", "display": "Nasal route"}
KETAMINE = {"system": RXNORM, "code": "6130", "display": "ketamine"}
SPRAVATO = {"system": RXNORM, "code": "2201625", "display": "Spravato"}
SPRAVATO_56 = {"system": NDC, "code": "50458-028-02", "display": "Spravato 56 mg kit"}
KETAMINE_LOT = "KH-2611-A"
ESKETAMINE_LOT = "SPV-2603-B"
INFUSION_MINUTES = 40


@dataclass(frozen=True)
class Course:
    """One patient's course: the EpisodeOfCare, the physician's order and the patient's
    usual readings (the flowsheet varies around them)."""

    patient: str
    episode: str
    order: str
    kg: float
    systolic: int
    diastolic: int
    heart_rate: int
    esketamine: bool = False


@dataclass(frozen=True)
class Dosed:
    encounter: str
    administration: str
    mg: float
    start_us: int
    dose_us: int


def order(clinic: Clinic, patient: str, at_us: int, *, esketamine: bool = False) -> str:
    """The physician's ketamine (or esketamine) order for the course."""
    clinic.at(at_us)
    text = ("Esketamine nasal spray 56 mg per session, twice weekly" if esketamine else
            "Ketamine 0.5 mg/kg IV over 40 minutes, twice weekly, 6 sessions")
    return clinic.create("physician", {
        "resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "medicationCodeableConcept": {"coding": [SPRAVATO if esketamine else KETAMINE]},
        "subject": {"reference": f"Patient/{patient}"},
        "authoredOn": clinic.at(at_us),
        "requester": {"reference": practitioner_of(clinic, "physician")},
        "dosageInstruction": [{"text": text,
                               "route": {"coding": [NASAL if esketamine else IV]}}]})


def _vitals(clinic: Clinic, encounter: str, at_us: int, **values: float) -> None:
    time = clinic.at(at_us)
    params: dict[str, Any] = {"time": ("valueDateTime", time)}
    for name, value in values.items():
        params[name] = ("valueInteger", value) if isinstance(value, int) else \
            ("valueDecimal", value)
    clinic.operation("nurse", f"Encounter/{encounter}/$record-vitals", **params)


def _move(clinic: Clinic, encounter: str, phase: str, at_us: int) -> None:
    clinic.at(at_us)
    current = clinic.read("nurse", f"Encounter/{encounter}")
    clinic.update("nurse", with_phase(current, phase))


def _weight(clinic: Clinic, patient: str, encounter: str, kg: float, at_us: int) -> str:
    return clinic.create("nurse", {
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Body weight"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "encounter": {"reference": f"Encounter/{encounter}"},
        "effectiveDateTime": clinic.at(at_us),
        "performer": [{"reference": practitioner_of(clinic, "nurse")}],
        "valueQuantity": {"value": kg, "unit": "kg", "system": UCUM, "code": "kg"}})


def _mg(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "mg", "system": UCUM, "code": "mg"}


def _dose(c: Course, encounter: str, mg: float, start: str, end: str | None,
          weight: str | None, performer: str) -> dict[str, Any]:
    medication = {"resourceType": "Medication", "id": "med",
                  "code": {"coding": [SPRAVATO, SPRAVATO_56] if c.esketamine else [KETAMINE]},
                  "batch": {"lotNumber": ESKETAMINE_LOT if c.esketamine else KETAMINE_LOT}}
    dose: dict[str, Any] = {
        "resourceType": "MedicationAdministration", "status": "completed",
        "contained": [medication], "medicationReference": {"reference": "#med"},
        "subject": {"reference": f"Patient/{c.patient}"},
        "context": {"reference": f"Encounter/{encounter}"},
        "request": {"reference": f"MedicationRequest/{c.order}"},
        "performer": [{"actor": {"reference": performer}}],
        "dosage": {"route": {"coding": [NASAL if c.esketamine else IV]}, "dose": _mg(mg)}}
    if end is None:
        dose["effectiveDateTime"] = start
        return dose
    dose["effectivePeriod"] = {"start": start, "end": end}
    dose["dosage"]["rateQuantity"] = {"value": round(mg * 60 / INFUSION_MINUTES, 2),
                                      "unit": "mg/h", "system": UCUM, "code": "mg/h"}
    dose["supportingInformation"] = [{"reference": f"Observation/{weight}"}]
    dose["extension"] = [{"url": DOSE_PER_WEIGHT_URL, "valueQuantity": {
        "value": round(mg / c.kg, 3), "unit": "mg/kg", "system": UCUM, "code": "mg/kg"}}]
    return dose


def run_session(clinic: Clinic, c: Course, start_us: int, *, mg_per_kg: float = 0.5,
                spravato_mg: int = 56) -> Dosed:
    """A whole session from check-in to the signed discharge, ``start_us`` the arrival."""
    def t(minutes: float) -> int:
        return start_us + int(minutes * MINUTE)

    clinic.at(start_us)
    body = session_encounter(c.patient, c.episode, phase="arrived", start=clinic.at(start_us),
                             participants={"prescriber": practitioner_of(clinic, "physician"),
                                           "monitoring-nurse": practitioner_of(clinic, "nurse"),
                                           "therapist": practitioner_of(clinic, "therapist")})
    body["location"] = [{"location": {"reference": f"Location/{LOCATION_ID}"}}]
    encounter = clinic.create("nurse", body)
    weight = _weight(clinic, c.patient, encounter, c.kg, t(2))
    sbp, dbp, hr = c.systolic, c.diastolic, c.heart_rate
    _vitals(clinic, encounter, t(5), systolic=sbp, diastolic=dbp, heart_rate=hr, spo2=98,
            respiratory_rate=14, moaas=5, cadss=0)
    _move(clinic, encounter, "dosing", t(10))
    nurse = practitioner_of(clinic, "nurse")
    if c.esketamine:
        mg = float(spravato_mg)
        dose_at = t(12)
        clinic.at(dose_at)
        given = clinic.create("nurse", _dose(c, encounter, mg, clinic.at(dose_at), None, None,
                                             nurse))
        _move(clinic, encounter, "monitoring", t(14))
        # Esketamine: BP at about 40 minutes and before discharge, two hours at least.
        post = [(52, 14, 8, 6, 4, 9), (82, 8, 5, 3, 5, 2), (112, 4, 2, 1, 5, 0),
                (134, 2, 1, 0, 5, 0)]
        end_us = dose_at
    else:
        mg = round(c.kg * mg_per_kg, 1)
        dose_at = t(12)
        # Every 10 minutes during the 40-minute infusion.
        for minute, rise, moaas, cadss in ((22, 12, 5, 8), (32, 18, 4, 16), (42, 16, 4, 12),
                                           (52, 10, 5, 6)):
            _vitals(clinic, encounter, t(minute), systolic=sbp + rise,
                    diastolic=dbp + rise // 2, heart_rate=hr + rise // 3, spo2=97,
                    respiratory_rate=15, moaas=moaas, cadss=cadss)
        end_us = t(12 + INFUSION_MINUTES)
        clinic.at(end_us)
        given = clinic.create("nurse", _dose(c, encounter, mg, clinic.at(dose_at),
                                             clinic.at(end_us), weight, nurse))
        _move(clinic, encounter, "monitoring", end_us)
        # Every 15 minutes after the infusion until discharge (60 minutes at least).
        post = [(67, 6, 3, 2, 5, 2), (82, 4, 2, 1, 5, 0), (97, 2, 1, 1, 5, 0),
                (112, 1, 0, 0, 5, 0)]
    for minute, rise, drise, hrise, moaas, cadss in post:
        _vitals(clinic, encounter, t(minute), systolic=sbp + rise, diastolic=dbp + drise,
                heart_rate=hr + hrise, spo2=98, respiratory_rate=14, moaas=moaas, cadss=cadss)
    clinic.at(t(post[-1][0]))
    clinic.operation("nurse", f"Encounter/{encounter}/$discharge",
                     alert_oriented=("valueBoolean", True),
                     escort_confirmed=("valueBoolean", True),
                     no_driving=("valueBoolean", True),
                     escort_name=("valueString", "Family member"),
                     signature=("valueString", clinic.assertion("nurse", DISCHARGE_ACTION)))
    return Dosed(encounter, given, mg, start_us, dose_at)


def adverse_event(clinic: Clinic, s: Dosed, patient: str, at_us: int, snomed: str,
                  display: str) -> str:
    """A non-serious adverse event the nurse records during the session."""
    return clinic.create("nurse", {
        "resourceType": "AdverseEvent", "actuality": "actual",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/adverse-event-category",
            "code": "medication-mishap", "display": "Medication Mishap"}]}],
        "event": {"coding": [{"system": SNOMED, "code": snomed, "display": display}],
                  "text": display},
        "subject": {"reference": f"Patient/{patient}"},
        "encounter": {"reference": f"Encounter/{s.encounter}"},
        "date": clinic.at(at_us),
        "recorder": {"reference": practitioner_of(clinic, "nurse")},
        "seriousness": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness",
            "code": "non-serious", "display": "Non-serious"}]},
        "severity": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/adverse-event-severity",
            "code": "mild", "display": "Mild"}]},
        "outcome": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/adverse-event-outcome",
            "code": "resolved", "display": "Resolved"}]},
        "suspectEntity": [{"instance": {
            "reference": f"MedicationAdministration/{s.administration}"}}]})


def rems_form(clinic: Clinic, s: Dosed, at_us: int) -> None:
    """The physician submits the esketamine REMS Patient Monitoring Form of the session."""
    clinic.at(at_us)
    clinic.call("physician", "POST", f"Encounter/{s.encounter}/$rems-form",
                {"resourceType": "Parameters"})


def note(clinic: Clinic, patient: str, kind: str, text: str, at_us: int, *,
         encounter: str | None = None, appends: str | None = None, sign: bool = True,
         who: str = "therapist") -> str:
    """A note drafted by ``who`` and, unless ``sign`` is false, signed with their password."""
    body: dict[str, Any] = {
        "resourceType": "DocumentReference", "status": "current", "docStatus": "preliminary",
        "type": note_type(kind), "subject": {"reference": f"Patient/{patient}"},
        "date": clinic.at(at_us),
        "content": [{"attachment": {"contentType": "text/plain",
                                    "data": base64.b64encode(text.encode()).decode()}}]}
    if kind == "psychotherapy":
        body["meta"] = {"security": [psychotherapy_label()]}
    if encounter:
        body["context"] = {"encounter": [{"reference": f"Encounter/{encounter}"}]}
    if appends:
        body["relatesTo"] = [{"code": "appends",
                              "target": {"reference": f"DocumentReference/{appends}"}}]
    rid = clinic.create(who, body)
    if sign:
        sign_note(clinic, rid, who, "authored")
    return rid


def sign_note(clinic: Clinic, rid: str, who: str, meaning: str) -> None:
    clinic.operation(who, f"DocumentReference/{rid}/$sign", meaning=("valueCode", meaning),
                     assertion=("valueString", clinic.assertion(who, NOTE_SIGNING)))


def complete_order(clinic: Clinic, c: Course, at_us: int) -> None:
    """The course is over: the physician marks the order completed."""
    clinic.at(at_us)
    current = clinic.read("physician", f"MedicationRequest/{c.order}")
    current["status"] = "completed"
    clinic.update("physician", current)
