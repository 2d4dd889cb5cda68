"""Check a QuestionnaireResponse against its instrument; report every faulty item at once.

A completed response is scored only when every asked item has exactly one answer from its
answer set, no unknown or duplicated item is present, and no item is answered that its
``enableWhen`` condition left unasked (C-SSRS items 3-5 after "no" to item 2). Each issue names
the item and a FHIRPath expression to it, so a form can mark every faulty field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ehr.clinical.instruments.catalog import Instrument, Item
from ehr.clinical.instruments.scoring import Answer
from ehr.errors import Issue

ROOT = "QuestionnaireResponse"
# Display-only items of the published Questionnaire (instructions): never answered.
DISPLAY_ITEMS = frozenset({"instructions"})


@dataclass
class Checked:
    answers: dict[str, Answer] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)  # link id -> FHIRPath of its item
    issues: list[Issue] = field(default_factory=list)

    def error(self, diagnostics: str, expression: str, code: str = "invalid") -> None:
        self.issues.append(Issue(code, diagnostics, "error", (expression,)))


def _walk(items: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(items, list):
        return
    for index, node in enumerate(items):
        if isinstance(node, dict):
            here = f"{path}.item[{index}]"
            yield here, node
            yield from _walk(node.get("item"), here)


def _expected(item: Item) -> str:
    answers = item.answers
    if answers.kind == "boolean":
        return "valueBoolean true or false"
    if answers.kind == "coding":
        return "valueCoding " + ", ".join(f"{o.code} ({o.display})" for o in answers.options)
    return "valueInteger " + ", ".join(str(o.score) for o in answers.options)


def _value(item: Item, answer: Any) -> Answer | None:
    """The answer's score (or yes/no), or None when it is not in the item's answer set."""
    if not isinstance(answer, dict):
        return None
    kind = item.answers.kind
    if kind == "boolean":
        value = answer.get("valueBoolean")
        return value if isinstance(value, bool) else None
    if kind == "coding":
        given = answer.get("valueCoding")
        if not isinstance(given, dict):
            return None
        for option in item.answers.options:
            if given.get("system") == option.system and given.get("code") == option.code:
                return option.score
        return None
    number = answer.get("valueInteger")
    if isinstance(number, bool) or not isinstance(number, int):
        return None
    return number if any(o.score == number for o in item.answers.options) else None


def _label(instrument: Instrument, link_id: str) -> str:
    return f"{instrument.title.split(' (')[0]} item {link_id}"


def check_response(instrument: Instrument, response: dict[str, Any]) -> Checked:
    checked = Checked()
    seen: set[str] = set()
    reported: set[str] = set()  # items already named by an issue
    for path, node in _walk(response.get("item"), ROOT):
        link = node.get("linkId")
        answers = node.get("answer") or []
        if link in DISPLAY_ITEMS and not answers:
            continue
        item = instrument.item(link) if isinstance(link, str) else None
        if item is None:
            checked.error(f"linkId {link!r} is not an item of {instrument.title} "
                          f"version {instrument.version}", f"{path}.linkId")
            continue
        if item.link_id in seen:
            checked.error(f"{_label(instrument, item.link_id)} appears more than once",
                          path, "duplicate")
            reported.add(item.link_id)
            continue
        seen.add(item.link_id)
        checked.paths[item.link_id] = path
        if not isinstance(answers, list) or not answers:
            continue  # reported below as missing when the item was asked
        if len(answers) > 1:
            checked.error(f"{_label(instrument, item.link_id)} takes one answer, "
                          f"{len(answers)} given", f"{path}.answer")
            reported.add(item.link_id)
            continue
        value = _value(item, answers[0])
        if value is None:
            checked.error(f"{_label(instrument, item.link_id)}: answer outside the answer "
                          f"set; expected {_expected(item)}", f"{path}.answer[0]", "code-invalid")
            reported.add(item.link_id)
            continue
        checked.answers[item.link_id] = value
    for item in instrument.items:
        link = item.link_id
        asked = True
        if item.enable_when is not None:
            controller, wanted = item.enable_when
            if controller not in checked.answers:
                continue  # the controlling item is itself missing or faulty: reported there
            asked = checked.answers[controller] == wanted
        where = checked.paths.get(link, f"{ROOT}.item.where(linkId='{link}')")
        if asked and item.required and link not in checked.answers and link not in reported:
            checked.error(f"{_label(instrument, link)} is missing (required)", where,
                          "required")
        elif not asked and link in checked.answers and item.enable_when is not None:
            controller, wanted = item.enable_when
            checked.error(f"{_label(instrument, link)} is answered but not asked: it is asked "
                          f"only when item {controller} is answered {_shown(wanted)}",
                          where, "business-rule")
            del checked.answers[link]
    return checked


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
