"""Screenings and eligibility as clinicians record them: questionnaire responses scored by the
service, the medical checklist, and the physician's signed eligibility decision."""

from __future__ import annotations

from typing import Any

from ehr.clinical.eligibility_decision import SIGNING_ACTION
from ehr.clinical.instruments import by_key
from ehr.clinical.instruments.resources import answer_items
from ehr.clinical.screening_checklist import CHECKLIST_URL, SECTIONS
from ehr.demo.clinic import Clinic

# C-SSRS screener answered "no" throughout (items 3-5 and 6-recent are then not asked).
CSSRS_LOW_RISK = {"1": False, "2": False, "6": False}
# Answers a story must ask for explicitly: PHQ-9 item 9 (thoughts of self-harm) stays 0.
SPARED: dict[str, dict[str, Any]] = {"phq-9": {"9": 0}}


def answers(key: str, total: int, fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """Points per item of instrument ``key`` adding up to ``total``, spread evenly over the
    required scored items not in ``fixed`` (which is merged in as given)."""
    instrument = by_key(key)
    assert instrument is not None, key
    fixed = {**SPARED.get(key, {}), **(fixed or {})}
    scored = [i for i in instrument.items if i.required and i.enable_when is None
              and i.answers.kind != "boolean" and i.link_id not in fixed]
    left = total - sum(v for v in fixed.values() if type(v) is int)
    out: dict[str, Any] = {}
    for n, item in enumerate(scored):
        top = max(o.score for o in item.answers.options)
        share = min(top, -(-left // (len(scored) - n)))
        out[item.link_id] = share
        left -= share
    if left:
        raise ValueError(f"{key}: a total of {total} does not fit the items")
    return {**out, **fixed}


def response(key: str, values: dict[str, Any], patient: str, authored: str, *,
             author: str | None = None, encounter: str | None = None) -> dict[str, Any]:
    """A completed QuestionnaireResponse to a shipped instrument (``values``: points or
    yes/no by link id)."""
    instrument = by_key(key)
    assert instrument is not None, key
    out: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse", "status": "completed",
        "questionnaire": f"{instrument.url}|{instrument.version}",
        "subject": {"reference": f"Patient/{patient}"}, "authored": authored,
        "item": answer_items(instrument, values)}
    if author:
        out["author"] = {"reference": author}
    if encounter:
        out["encounter"] = {"reference": f"Encounter/{encounter}"}
    return out


def submit_scores(clinic: Clinic, patient: str, at_us: int, totals: dict[str, int], *,
                  who: str = "therapist", encounter: str | None = None,
                  fixed: dict[str, dict[str, Any]] | None = None) -> None:
    """The patient's self-reports at ``at_us`` (``totals`` by instrument key), entered by
    ``who``; the service scores each one (and raises any safety flag)."""
    authored = clinic.at(at_us)
    author = clinic.actor(who).practitioner
    for key, total in totals.items():
        values = answers(key, total, (fixed or {}).get(key))
        clinic.create(who, response(key, values, patient, authored, author=author,
                                    encounter=encounter))


def submit_cssrs(clinic: Clinic, patient: str, at_us: int, *, who: str = "therapist") -> None:
    authored = clinic.at(at_us)
    clinic.create(who, response("cssrs-screener", CSSRS_LOW_RISK, patient, authored,
                                author=clinic.actor(who).practitioner))


def checklist(patient: str, authored: str, author: str | None, *, systolic: int,
              diastolic: int, yes: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The medical screening checklist: every contraindication answered, ``yes`` the ones
    present, and the resting blood pressure."""
    groups = []
    for group, _, items in SECTIONS:
        answered = []
        for item in items:
            if item.kind == "integer":
                value = systolic if item.link_id == "bp-systolic" else diastolic
                answer: dict[str, Any] = {"valueInteger": value}
            else:
                answer = {"valueBoolean": item.link_id in yes}
            answered.append({"linkId": item.link_id, "answer": [answer]})
        groups.append({"linkId": group, "item": answered})
    out: dict[str, Any] = {"resourceType": "QuestionnaireResponse", "status": "completed",
                           "questionnaire": CHECKLIST_URL,
                           "subject": {"reference": f"Patient/{patient}"},
                           "authored": authored, "item": groups}
    if author:
        out["author"] = {"reference": author}
    return out


def submit_checklist(clinic: Clinic, patient: str, at_us: int, *, systolic: int = 122,
                     diastolic: int = 78, yes: frozenset[str] = frozenset()) -> None:
    authored = clinic.at(at_us)
    clinic.create("physician", checklist(patient, authored, clinic.actor("physician").practitioner,
                                         systolic=systolic, diastolic=diastolic, yes=yes))


def decide(clinic: Clinic, patient: str, at_us: int, status: str,
           justification: str | None = None) -> None:
    """The physician's signed eligibility decision, taken at ``at_us``."""
    clinic.at(at_us)
    params: dict[str, Any] = {"status": ("valueCode", status)}
    if justification:
        params["justification"] = ("valueString", justification)
    params["signingAssertion"] = ("valueString", clinic.assertion("physician", SIGNING_ACTION))
    clinic.operation("physician", f"Patient/{patient}/$eligibility-decision", **params)
