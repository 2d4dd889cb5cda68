"""A small demonstration clinic, written through the one write path (``ehr demo``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from ehr.config import Settings
from ehr.context import SYSTEM, RequestContext
from ehr.db import unit_of_work
from ehr.fhir.pipeline import Pipeline
from ehr.fhir.writer import Writer
from ehr.store.repository import history_count

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
MRN = "urn:ehr:mrn"
VITALS = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                      "code": "vital-signs", "display": "Vital Signs"}]}

PATIENTS = [
    ("Rivera", "Maria", "female", "1984-03-12", 68.0, "47505003", "Posttraumatic stress disorder"),
    ("Chen", "David", "male", "1979-11-02", 81.5, "370143000", "Major depressive disorder"),
    ("Okonkwo", "Grace", "female", "1991-07-24", 59.2, "370143000", "Major depressive disorder"),
    ("Müller", "Jonas", "male", "1968-01-30", 92.3, "7200002", "Alcoholism"),
    ("Nguyen", "Linh", "female", "1995-05-18", 54.8, "47505003", "Posttraumatic stress disorder"),
    ("Brooks", "Samuel", "male", "1973-09-09", 77.1, "370143000", "Major depressive disorder"),
]
STAFF = [
    ("Moreno", "Ada", "Dr.", "1234567893"),
    ("Okafor", "Sam", None, "1245319599"),
    ("Park", "Lee", None, "1316040596"),
]


def _ref(stored_type: str, rid: str) -> dict[str, str]:
    return {"reference": f"{stored_type}/{rid}"}


def _quantity(value: float, unit: str, code: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def seed_demo(engine: Engine, settings: Settings, *, only_if_empty: bool = False) -> str:
    with unit_of_work(engine, write=False) as session:
        if only_if_empty and history_count(session) > 0:
            return "database already holds data: demo not seeded"
    ctx = RequestContext(actor=SYSTEM, user_agent="ehr demo")
    now = datetime.now(UTC).replace(microsecond=0)
    with unit_of_work(engine, write=True) as session:
        w = Writer(Pipeline(settings), session, ctx)

        def make(resource: dict[str, Any]) -> str:
            stored = w.create(resource["resourceType"], resource).stored
            assert stored is not None
            return stored.rid

        org = make({"resourceType": "Organization", "name": "Harbor Ketamine Clinic",
                    "active": True})
        make({"resourceType": "Location", "name": "Infusion suite", "status": "active",
              "managingOrganization": _ref("Organization", org)})
        staff = [make({"resourceType": "Practitioner", "active": True,
                       "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": npi}],
                       "name": [{"family": family, "given": [given],
                                 **({"prefix": [prefix]} if prefix else {})}]})
                 for family, given, prefix, npi in STAFF]
        for n, (family, given, gender, born, kg, snomed, display) in enumerate(PATIENTS, 1):
            pid = make({
                "resourceType": "Patient", "active": True,
                "identifier": [{"system": MRN, "value": f"MRN-{1000 + n}"}],
                "name": [{"use": "official", "family": family, "given": [given]}],
                "gender": gender, "birthDate": born,
                "managingOrganization": _ref("Organization", org),
                "generalPractitioner": [_ref("Practitioner", staff[0])],
            })
            subject = _ref("Patient", pid)
            make({"resourceType": "Condition", "subject": subject,
                  "clinicalStatus": {"coding": [{
                      "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                      "code": "active"}]},
                  "code": {"coding": [{"system": SNOMED, "code": snomed, "display": display}]}})
            taken = (now - timedelta(days=n)).isoformat()
            make({"resourceType": "Observation", "status": "final", "category": [VITALS],
                  "code": {"coding": [{"system": LOINC, "code": "29463-7",
                                       "display": "Body weight"}]},
                  "subject": subject, "effectiveDateTime": taken,
                  "valueQuantity": _quantity(kg, "kg", "kg")})
            make({"resourceType": "Observation", "status": "final", "category": [VITALS],
                  "code": {"coding": [{"system": LOINC, "code": "85354-9",
                                       "display": "Blood pressure panel"}]},
                  "subject": subject, "effectiveDateTime": taken,
                  "component": [
                      {"code": {"coding": [{"system": LOINC, "code": "8480-6",
                                            "display": "Systolic blood pressure"}]},
                       "valueQuantity": _quantity(118 + n * 3, "mmHg", "mm[Hg]")},
                      {"code": {"coding": [{"system": LOINC, "code": "8462-4",
                                            "display": "Diastolic blood pressure"}]},
                       "valueQuantity": _quantity(74 + n, "mmHg", "mm[Hg]")}]})
            make({"resourceType": "Observation", "status": "final", "category": [VITALS],
                  "code": {"coding": [{"system": LOINC, "code": "8867-4",
                                       "display": "Heart rate"}]},
                  "subject": subject, "effectiveDateTime": taken,
                  "valueQuantity": _quantity(64 + n * 2, "beats/minute", "/min")})
    return (f"demo clinic seeded: 1 organization, {len(STAFF)} practitioners, "
            f"{len(PATIENTS)} patients with conditions and vital signs")
