"""A small demonstration clinic, written through the one write path (``ehr demo``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from ehr.app import build_pipeline
from ehr.auth.users import Users
from ehr.config import Settings
from ehr.context import SYSTEM, RequestContext
from ehr.db import unit_of_work
from ehr.fhir.care_team_admin import add_to_care_team
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
# Demo accounts (username, role, display name, index into STAFF or None). Passwords are printed
# by ``ehr demo``: they exist for trying the service out, never for a deployment.
ACCOUNTS = [
    ("physician", "physician", "Dr. Ada Moreno", 0),
    ("nurse", "nurse", "Sam Okafor, RN", 1),
    ("therapist", "therapist", "Lee Park, LMFT", 2),
    ("compliance", "compliance", "Chris Vega", None),
    ("admin", "admin", "Robin Admin", None),
]


def demo_password(username: str) -> str:
    return f"{username}-demo-2026"


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
        pipeline = build_pipeline(settings)
        w = Writer(pipeline, session, ctx)
        patient_ids: list[str] = []

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
            patient_ids.append(pid)
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
        users = Users()
        for username, role, display, staff_index in ACCOUNTS:
            practitioner = None if staff_index is None else f"Practitioner/{staff[staff_index]}"
            npi = STAFF[staff_index][3] if role == "physician" and staff_index is not None else None
            if users.get(session, username) is not None:
                continue  # seeded before: a second demo clinic shares the accounts
            users.create(session, username=username, password=demo_password(username),
                         roles=[role], display_name=display, practitioner=practitioner, npi=npi)
        for patient_id in patient_ids:
            for username, role, *_ in ACCOUNTS:
                if role in ("physician", "nurse", "therapist"):
                    add_to_care_team(pipeline, session, ctx, users, patient_id, username)
    lines = [f"demo clinic seeded: 1 organization, {len(STAFF)} practitioners, "
             f"{len(PATIENTS)} patients with conditions and vital signs", "demo accounts:"]
    lines += [f"  {u:<11} {demo_password(u):<24} ({r})" for u, r, *_ in ACCOUNTS]
    return "\n".join(lines)
