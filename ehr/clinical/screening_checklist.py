"""The medical screening (contraindication) checklist: its Questionnaire and its answers.

The checklist asks one question per contraindication of the eligibility protocol
(``protocols/eligibility.json``) plus the resting blood pressure as two numbers, so the
protocol's thresholds are applied to measurements rather than to a yes/no "hypertension".
Each item is coded in our ``screening-checklist`` CodeSystem; where a public code exists and
was checked (SNOMED CT for four conditions, LOINC for the two pressures) it is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ehr.clinical.terminology import CANONICAL_BASE, LOINC, SNOMED, UCUM, coding, local_system

CHECKLIST_URL = f"{CANONICAL_BASE}/Questionnaire/medical-screening-checklist"
CHECKLIST_VERSION = "1.0.0"
CHECKLIST_ID = "medical-screening-checklist"
ITEM_SYSTEM = local_system("screening-checklist")
_UNIT_EXT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
_MIN_EXT = "http://hl7.org/fhir/StructureDefinition/minValue"
_MAX_EXT = "http://hl7.org/fhir/StructureDefinition/maxValue"


@dataclass(frozen=True)
class ChecklistItem:
    link_id: str
    text: str
    kind: str = "boolean"  # "boolean" | "integer"
    public: tuple[tuple[str, str, str], ...] = ()  # (system, code, display) checked codes
    low: int | None = None  # plausible range of a measurement
    high: int | None = None


# (group linkId, group title, items). Texts are what the clinician filling it in reads.
SECTIONS: tuple[tuple[str, str, tuple[ChecklistItem, ...]], ...] = (
    ("allergy", "Allergy", (
        ChecklistItem("ketamine-hypersensitivity", "Known hypersensitivity to ketamine"),
    )),
    ("cardiovascular", "Conditions where a blood-pressure rise is hazardous", (
        ChecklistItem("aneurysmal-vascular-disease",
                      "Aneurysmal vascular disease (aortic, intracranial or peripheral)"),
        ChecklistItem("arteriovenous-malformation", "Arteriovenous malformation"),
        ChecklistItem("intracerebral-haemorrhage", "History of intracerebral haemorrhage"),
        ChecklistItem("recent-stroke", "Recent stroke"),
        ChecklistItem("unstable-ischaemic-heart-disease", "Unstable ischaemic heart disease"),
    )),
    ("blood-pressure", "Resting blood pressure", (
        ChecklistItem("bp-systolic", "Systolic blood pressure at rest (mm Hg)", "integer",
                      ((LOINC, "8480-6", "Systolic blood pressure"),), 40, 300),
        ChecklistItem("bp-diastolic", "Diastolic blood pressure at rest (mm Hg)", "integer",
                      ((LOINC, "8462-4", "Diastolic blood pressure"),), 20, 200),
    )),
    ("psychiatric", "Psychiatric history", (
        ChecklistItem("current-psychosis", "Current psychosis"),
        ChecklistItem("schizophrenia-history", "History of schizophrenia",
                      public=((SNOMED, "58214004", "Schizophrenia"),)),
        ChecklistItem("schizoaffective-history", "History of schizoaffective disorder",
                      public=((SNOMED, "68890003", "Schizoaffective disorder"),)),
        ChecklistItem("bipolar-psychotic-history",
                      "History of bipolar disorder with psychotic features"),
        ChecklistItem("suicide-risk-high", "High suicide risk on clinical assessment"),
    )),
    ("pregnancy-lactation", "Pregnancy and lactation", (
        ChecklistItem("pregnancy", "Currently pregnant",
                      public=((SNOMED, "77386006", "Pregnancy"),)),
        ChecklistItem("breastfeeding", "Currently breastfeeding",
                      public=((SNOMED, "413712001", "Breastfeeding (mother)"),)),
    )),
    ("substance-use", "Substance use", (
        ChecklistItem("substance-use-disorder-history", "History of substance use disorder"),
        ChecklistItem("recreational-ketamine-pcp", "Prior recreational ketamine or PCP use"),
    )),
    ("hepatic", "Liver function", (
        ChecklistItem("hepatic-impairment-moderate", "Moderate hepatic impairment"),
    )),
    ("medications", "Current interacting medications", (
        ChecklistItem("med-benzodiazepine", "Takes a benzodiazepine"),
        ChecklistItem("med-sedative-hypnotic", "Takes a sedative-hypnotic"),
        ChecklistItem("med-stimulant", "Takes a stimulant"),
        ChecklistItem("med-maoi", "Takes a monoamine oxidase inhibitor (MAOI)"),
        ChecklistItem("med-opioid", "Takes an opioid"),
    )),
)

ITEMS: dict[str, ChecklistItem] = {i.link_id: i for _, _, items in SECTIONS for i in items}

Answer = bool | Decimal


def checklist_questionnaire() -> dict[str, Any]:
    """The Questionnaire resource the service ships (loaded by ``ehr db upgrade``)."""
    return {
        "resourceType": "Questionnaire",
        "id": CHECKLIST_ID,
        "url": CHECKLIST_URL,
        "version": CHECKLIST_VERSION,
        "name": "MedicalScreeningChecklist",
        "title": "Medical screening checklist for ketamine-assisted therapy",
        "status": "active",
        "subjectType": ["Patient"],
        "description": "Contraindications (hard stops and items needing physician review) "
                       "and resting blood pressure, evaluated by the eligibility protocol.",
        "item": [{"linkId": group, "text": title, "type": "group", "required": True,
                  "item": [_item(i) for i in items]} for group, title, items in SECTIONS],
    }


def _item(item: ChecklistItem) -> dict[str, Any]:
    codes = [coding(ITEM_SYSTEM, item.link_id, item.text),
             *(coding(s, c, d) for s, c, d in item.public)]
    out: dict[str, Any] = {"linkId": item.link_id, "text": item.text, "type": item.kind,
                           "required": True, "code": codes}
    if item.kind == "integer":
        out["extension"] = [
            {"url": _UNIT_EXT, "valueCoding": coding(UCUM, "mm[Hg]", "mm Hg")},
            {"url": _MIN_EXT, "valueInteger": item.low},
            {"url": _MAX_EXT, "valueInteger": item.high},
        ]
    return out


def is_checklist_response(resource: dict[str, Any] | None) -> bool:
    if not resource:
        return False
    questionnaire = resource.get("questionnaire")
    return isinstance(questionnaire, str) and questionnaire.split("|", 1)[0] == CHECKLIST_URL


def answers_of(response: dict[str, Any]) -> dict[str, Answer]:
    """linkId -> answer of every checklist item answered in ``response`` (nested groups)."""
    out: dict[str, Answer] = {}
    stack = list(response.get("item") or [])
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        stack.extend(node.get("item") or [])
        link = node.get("linkId")
        for answer in node.get("answer") or []:
            if not isinstance(answer, dict):
                continue
            stack.extend(answer.get("item") or [])
            value = _value(answer)
            if isinstance(link, str) and link in ITEMS and value is not None:
                out[link] = value
    return out


def _value(answer: dict[str, Any]) -> Answer | None:
    if isinstance(answer.get("valueBoolean"), bool):
        return bool(answer["valueBoolean"])
    for key in ("valueInteger", "valueDecimal"):
        raw = answer.get(key)
        if isinstance(raw, int | Decimal | float) and not isinstance(raw, bool):
            return Decimal(str(raw))
    quantity = answer.get("valueQuantity")
    if isinstance(quantity, dict) and isinstance(quantity.get("value"), int | Decimal | float):
        return Decimal(str(quantity["value"]))
    return None


def answer_problems(response: dict[str, Any]) -> list[tuple[str, str]]:
    """(linkId, problem) for every item a *completed* checklist lacks or answers wrongly."""
    answers = answers_of(response)
    problems: list[tuple[str, str]] = []
    for link, item in ITEMS.items():
        value = answers.get(link)
        if value is None:
            problems.append((link, f"item {link!r} ({item.text}) is not answered"))
        elif item.kind == "boolean" and not isinstance(value, bool):
            problems.append((link, f"item {link!r} needs a yes/no (valueBoolean) answer"))
        elif item.kind == "integer":
            if isinstance(value, bool):
                problems.append((link, f"item {link!r} needs a number in mm Hg"))
            elif item.low is not None and item.high is not None and \
                    not item.low <= value <= item.high:
                problems.append((link, f"item {link!r}: {value} mm Hg is outside the "
                                       f"plausible range {item.low}-{item.high}"))
    return problems
