"""The FHIR Questionnaire and CodeSystem resources published for the instrument data, and the
items of a QuestionnaireResponse answering an instrument (as the demo records them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ehr.clinical.instruments.catalog import (
    Instrument,
    Item,
    codesystem_data,
    instruments,
)
from ehr.clinical.terminology import local_system

PUBLISHER = "ehr (ketamine-assisted therapy record service)"
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
ENTRY_FORMAT = "http://hl7.org/fhir/StructureDefinition/entryFormat"


def _answer_options(item: Item) -> list[dict[str, Any]]:
    answers = item.answers
    if answers.kind == "coding":
        return [{"valueCoding": {"system": o.system, "code": o.code, "display": o.display},
                 "extension": [{"url": ORDINAL_VALUE, "valueDecimal": o.score}]}
                for o in answers.options]
    return [{"valueInteger": o.score} for o in answers.options]


def _item(item: Item, instrument: Instrument) -> dict[str, Any]:
    out: dict[str, Any] = {
        "linkId": item.link_id,
        "text": item.text,
        "type": "boolean" if item.answers.kind == "boolean" else "choice",
        "required": item.required,
    }
    if item.code:
        out["code"] = [item.code]
    if item.answers.kind != "boolean":
        out["answerOption"] = _answer_options(item)
    labelled = [o for o in item.answers.options if o.display]
    if item.answers.kind == "integer" and labelled and instrument.wording:
        # valueInteger options carry no display: the anchors ride along as entry guidance.
        out["extension"] = [{"url": ENTRY_FORMAT, "valueString": "; ".join(
            f"{o.score} = {o.display}" for o in labelled)}]
    if item.enable_when:
        question, answer = item.enable_when
        key = "answerBoolean" if isinstance(answer, bool) else "answerInteger"
        out["enableWhen"] = [{"question": question, "operator": "=", key: answer}]
    return out


def questionnaire(instrument: Instrument) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Questionnaire",
        "id": instrument.key,
        "url": instrument.url,
        "version": instrument.version,
        "name": instrument.name,
        "title": instrument.title,
        "status": "active",
        "subjectType": ["Patient"],
        "publisher": PUBLISHER,
        "description": instrument.source,
        "copyright": instrument.copyright,
        "code": [instrument.panel],
        "item": [_item(i, instrument) for i in instrument.items],
    }
    if instrument.prompt:
        resource["item"].insert(0, {"linkId": "instructions", "type": "display",
                                    "text": instrument.prompt})
    return resource


def answer_items(instrument: Instrument, values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Response items for ``values``: link id -> an answer's points (a coded item gets the
    option scoring them) or yes/no."""
    items = []
    for link, value in values.items():
        item = instrument.item(link)
        if item is None:
            raise KeyError(f"{instrument.key} has no item {link!r}")
        if item.answers.kind == "boolean":
            answer: dict[str, Any] = {"valueBoolean": value}
        elif item.answers.kind == "coding":
            option = next((o for o in item.answers.options if o.score == value), None)
            if option is None:
                raise ValueError(f"{instrument.key} item {link}: no answer scores {value}")
            answer = {"valueCoding": {"system": option.system, "code": option.code,
                                      "display": option.display}}
        else:
            answer = {"valueInteger": value}
        items.append({"linkId": link, "answer": [answer]})
    return items


def codesystem(data: dict[str, Any]) -> dict[str, Any]:
    name = data["name"]
    return {
        "resourceType": "CodeSystem",
        "id": name,
        "url": local_system(name),
        "version": data["version"],
        "name": "".join(part.capitalize() for part in name.split("-")),
        "title": data["title"],
        "status": "active",
        "publisher": PUBLISHER,
        "description": data["description"],
        "caseSensitive": True,
        "content": "complete",
        "count": len(data["concepts"]),
        "concept": [{"code": c["code"], "display": c["display"]} for c in data["concepts"]],
    }


def definition_resources() -> list[dict[str, Any]]:
    """Every resource ``ehr db upgrade`` publishes: CodeSystems first, then Questionnaires."""
    return [*(codesystem(d) for d in codesystem_data()),
            *(questionnaire(i) for i in instruments().values())]

