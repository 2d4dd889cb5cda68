"""The demo patients (made-up names) and their intake: the physician registers the referral,
the administrator puts the team on the care team, the physician records the diagnosis and
opens the course (an EpisodeOfCare)."""

from __future__ import annotations

from dataclasses import dataclass

from ehr.clinical.terminology import SNOMED
from ehr.demo.accounts import CLINICIANS, join_care_team, practitioner_of
from ehr.demo.clinic import Clinic

MRN = "urn:ehr:mrn"
MDD = ("370143000", "Major depressive disorder")
PTSD = ("47505003", "Posttraumatic stress disorder")
GAD = ("21897009", "Generalized anxiety disorder")

# Stages of a course, in the order a patient goes through them.
REFERRED = "referred"
NEEDS_REVIEW = "needs-review"
NOT_ELIGIBLE = "not-eligible"
ITEM9 = "item-9-flag"
ELIGIBLE = "eligible"
MID_COURSE = "mid-course"
COMPLETED = "completed"
ESKETAMINE = "esketamine"
STAGES = (REFERRED, NEEDS_REVIEW, NOT_ELIGIBLE, ITEM9, ELIGIBLE, MID_COURSE, COMPLETED,
          ESKETAMINE)


@dataclass(frozen=True)
class Person:
    family: str
    given: str
    gender: str
    born: str
    kg: float
    diagnosis: tuple[str, str]
    systolic: int
    diastolic: int
    heart_rate: int
    stage: str
    city: str = "Springfield"


ROSTER = (
    Person("Quillfeather", "Avery", "female", "1988-04-17", 63.5, MDD, 118, 76, 70, REFERRED),
    Person("Thornbury", "Milo", "male", "1975-10-02", 84.0, MDD, 126, 82, 66, REFERRED),
    Person("Vasquez-Lindqvist", "Rosa", "female", "1969-06-23", 71.2, MDD, 148, 88, 74,
           NEEDS_REVIEW),
    Person("Halloway", "Jonah", "male", "1982-01-30", 90.4, MDD, 124, 80, 72, NOT_ELIGIBLE),
    Person("Ibarrondo", "Tess", "female", "1997-09-11", 58.9, MDD, 114, 72, 78, ITEM9),
    Person("Ferreirinha", "Nina", "female", "1990-12-05", 61.0, GAD, 116, 74, 68, ELIGIBLE),
    Person("Kowalczuk", "Theo", "male", "1979-03-19", 79.3, MDD, 128, 80, 64, ELIGIBLE),
    Person("Brightwater", "Iris", "female", "1986-07-28", 66.0, MDD, 120, 78, 72, MID_COURSE),
    Person("Mendelsohn-Ray", "Oscar", "male", "1971-05-14", 88.2, PTSD, 132, 84, 70,
           MID_COURSE),
    Person("Achterwald", "Lena", "female", "1984-02-08", 68.0, PTSD, 122, 76, 74, COMPLETED),
    Person("Sorenby", "Paul", "male", "1966-11-21", 82.5, MDD, 130, 82, 62, COMPLETED),
    Person("Nakamori-Reyes", "Eli", "male", "1993-08-03", 74.6, MDD, 124, 78, 76, ESKETAMINE),
)


def intake(clinic: Clinic, person: Person, mrn: str, at_us: int) -> tuple[str, str]:
    """Register the referral; returns (Patient id, EpisodeOfCare id)."""
    clinic.at(at_us)
    physician = practitioner_of(clinic, "physician")
    patient = clinic.create("physician", {
        "resourceType": "Patient", "active": True,
        "identifier": [{"use": "usual", "system": MRN, "value": mrn}],
        "name": [{"use": "official", "family": person.family, "given": [person.given]}],
        "gender": person.gender, "birthDate": person.born,
        "address": [{"use": "home", "line": [f"{10 + len(person.family)} Elm Street"],
                     "city": person.city, "state": "IL", "postalCode": "62704"}],
        "generalPractitioner": [{"reference": physician}]})
    join_care_team(clinic, patient, CLINICIANS)
    subject = {"reference": f"Patient/{patient}"}
    code, display = person.diagnosis
    condition = clinic.create("physician", {
        "resourceType": "Condition", "subject": subject, "recordedDate": clinic.at(at_us),
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active"}]},
        "verificationStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
            "code": "confirmed"}]},
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
            "code": "problem-list-item"}]}],
        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}],
                 "text": display},
        "recorder": {"reference": physician}})
    episode = clinic.create("physician", {
        "resourceType": "EpisodeOfCare", "status": "planned", "patient": subject,
        "type": [{"text": "Ketamine-assisted therapy course"}],
        "diagnosis": [{"condition": {"reference": f"Condition/{condition}"}}],
        "period": {"start": clinic.at(at_us)},
        "careManager": {"reference": physician}})
    return patient, episode


def set_episode(clinic: Clinic, episode: str, status: str, at_us: int) -> None:
    clinic.at(at_us)
    current = clinic.read("physician", f"EpisodeOfCare/{episode}")
    current["status"] = status
    if status in ("finished", "cancelled"):
        current["period"] = {**(current.get("period") or {}), "end": clinic.at(at_us)}
    clinic.update("physician", current)
