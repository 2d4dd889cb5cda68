"""Any Questionnaire as an HTML form, and the posted form back as a QuestionnaireResponse.

The form is generic: it reads the Questionnaire's items (groups, choice with answerOption,
boolean, integer, decimal, string, text, date, display) and nothing instrument-specific. The
points an option is worth for the live score come from the Questionnaire's ``ordinalValue``
extension or an integer option's value; a yes/no item's points, which items are summed and how
they fold, and the live alerts come from the instrument data when the Questionnaire is one of
the shipped instruments (``ehr.clinical.instruments``), so the browser adds up exactly what
the server will (the server's score is still the one recorded).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ehr.clinical.instruments import Instrument
from ehr.clinical.instruments.scoring import item_points

ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
ITEM_WEIGHT = "http://hl7.org/fhir/StructureDefinition/itemWeight"
ENTRY_FORMAT = "http://hl7.org/fhir/StructureDefinition/entryFormat"
UNIT = "http://hl7.org/fhir/StructureDefinition/questionnaire-unit"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
FIELD_PREFIX = "q."
# Types entered through a single input element, and the answer value[x] each yields.
_INPUTS = {"integer": "valueInteger", "decimal": "valueDecimal", "string": "valueString",
           "text": "valueString", "date": "valueDate"}
_WHERE_LINK = re.compile(r"where\(linkId\s*=\s*'([^']+)'\)")
_INDEX = re.compile(r"\.item\[(\d+)\]")


@dataclass
class Option:
    value: str  # what the form posts: the option's index, or "true"/"false"
    label: str
    score: str | None = None  # points for the live score, when the option has a weight


@dataclass
class FormItem:
    link_id: str
    text: str
    type: str
    required: bool
    html_id: str
    options: list[Option] = field(default_factory=list)
    children: list[FormItem] = field(default_factory=list)
    hint: str | None = None
    unit: str | None = None
    low: str | None = None
    high: str | None = None
    enable_question: str | None = None
    enable_answer: str | None = None  # the posted value that makes this item asked
    scored: bool = False
    group: str | None = None  # the instrument sub-score this item folds into

    @property
    def name(self) -> str:
        return FIELD_PREFIX + self.link_id


@dataclass
class Alert:
    """An answer that raises a safety flag on the server, shown live as the form is filled."""

    item: str
    above: int
    text: str


@dataclass
class Form:
    questionnaire: dict[str, Any]
    items: list[FormItem]
    live_score: bool = False
    max_score: int | None = None
    folds: dict[str, str] = field(default_factory=dict)  # sub-score code -> "sum" | "max"
    bands_json: str = "[]"
    alerts: list[Alert] = field(default_factory=list)

    @property
    def canonical(self) -> str:
        q = self.questionnaire
        return f"{q.get('url')}|{q['version']}" if q.get("version") else str(q.get("url"))

    @property
    def folds_json(self) -> str:
        return json.dumps(self.folds)

    def walk(self) -> list[FormItem]:
        out: list[FormItem] = []
        stack = list(reversed(self.items))
        while stack:
            item = stack.pop()
            out.append(item)
            stack.extend(reversed(item.children))
        return out


def _ext(node: dict[str, Any], url: str) -> Any:
    for ext in node.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == url:
            return next((v for k, v in ext.items() if k.startswith("value")), None)
    return None


def html_id(link_id: str) -> str:
    return "q-" + re.sub(r"[^A-Za-z0-9_-]", "-", link_id)


def _option(index: int, raw: dict[str, Any]) -> Option:
    weight = _ext(raw, ORDINAL_VALUE)
    if weight is None:
        weight = _ext(raw, ITEM_WEIGHT)
    if "valueCoding" in raw:
        c = raw["valueCoding"] or {}
        label = str(c.get("display") or c.get("code") or "")
    else:
        value = next((v for k, v in raw.items() if k.startswith("value")), "")
        label = str(value)
        if weight is None and "valueInteger" in raw:
            weight = value
    score = None if weight is None else format(Decimal(str(weight)).normalize(), "f")
    return Option(str(index), label, score)


def _posted_value(controller: dict[str, Any] | None, wanted: Any) -> str | None:
    """What the controlling item's field posts when it holds ``wanted``."""
    if isinstance(wanted, bool):
        return "true" if wanted else "false"
    if controller is None:
        return None
    if controller.get("type") == "choice":
        for index, option in enumerate(controller.get("answerOption") or []):
            value = next((v for k, v in option.items() if k.startswith("value")), None)
            if value == wanted or (isinstance(value, dict) and isinstance(wanted, dict) and
                                   value.get("code") == wanted.get("code")):
                return str(index)
        return None
    return None if wanted is None else str(wanted)


def _enable(raw: dict[str, Any], by_link: dict[str, dict[str, Any]]) -> tuple[str | None,
                                                                              str | None]:
    """A single "=" condition, which the browser mirrors; the server applies them all."""
    conditions = [c for c in raw.get("enableWhen") or [] if isinstance(c, dict)]
    if len(conditions) != 1 or conditions[0].get("operator") != "=":
        return None, None
    question = str(conditions[0].get("question"))
    posted = _posted_value(by_link.get(question), _wanted(conditions[0]))
    return (question, posted) if posted is not None else (None, None)


def _item(raw: dict[str, Any], instrument: Instrument | None,
          by_link: dict[str, dict[str, Any]]) -> FormItem:
    link = str(raw.get("linkId"))
    kind = str(raw.get("type"))
    # Groups get ids of their own: a group may share its linkId with one of its items.
    item = FormItem(link, str(raw.get("text") or ""), kind, bool(raw.get("required")),
                    ("g-" if kind == "group" else "") + html_id(link),
                    hint=_ext(raw, ENTRY_FORMAT))
    unit = _ext(raw, UNIT)
    item.unit = str(unit.get("display") or unit.get("code")) if isinstance(unit, dict) else None
    low, high = _ext(raw, MIN_VALUE), _ext(raw, MAX_VALUE)
    item.low = None if low is None else str(low)
    item.high = None if high is None else str(high)
    item.enable_question, item.enable_answer = _enable(raw, by_link)
    if item.type == "choice":
        item.options = [_option(i, o) for i, o in enumerate(raw.get("answerOption") or [])
                        if isinstance(o, dict)]
    elif item.type == "boolean":
        item.options = [Option("true", "Yes"), Option("false", "No")]
        if instrument is not None and instrument.item(link) is not None:
            for option in item.options:
                option.score = str(item_points(instrument, link, option.value == "true"))
    item.children = [_item(c, instrument, by_link) for c in raw.get("item") or []
                     if isinstance(c, dict)]
    return item


def _raw_items(node: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for raw in node.get("item") or []:
        if isinstance(raw, dict):
            out.append(raw)
            out.extend(_raw_items(raw))
    return out


def build_form(questionnaire: dict[str, Any], instrument: Instrument | None,
               sex: str | None = None) -> Form:
    """The form of ``questionnaire``; ``instrument`` (when it is one of ours) adds live scoring."""
    by_link = {str(raw.get("linkId")): raw for raw in _raw_items(questionnaire)}
    form = Form(questionnaire, [_item(i, instrument, by_link)
                                for i in questionnaire.get("item") or [] if isinstance(i, dict)])
    if instrument is None:
        return form
    for rule in instrument.flags:
        when = rule.get("when") or {}
        if "item" in when:
            form.alerts.append(Alert(str(when["item"]), int(when.get("above", 0)),
                                     str(rule.get("text"))))
    if instrument.method != "sum":
        return form  # a risk level, never a sum: the server reports it
    scored = set(instrument.scoring["items"])
    groups = {link: g.code for g in instrument.groups for link in g.items}
    form.folds = {g.code: g.fold for g in instrument.groups}
    for item in form.walk():
        item.scored = item.link_id in scored
        item.group = groups.get(item.link_id)
    form.live_score = True
    form.max_score = int(instrument.scoring.get("max", 0)) or None
    form.bands_json = json.dumps([{"low": b.low, "high": b.high, "display": b.display}
                                  for b in instrument.bands_for(sex)])
    return form


# -- the posted form as a QuestionnaireResponse ------------------------------------------


def _answer(raw: dict[str, Any], posted: str) -> dict[str, Any] | None:
    kind = raw.get("type")
    if kind == "boolean":
        return {"valueBoolean": posted == "true"} if posted in ("true", "false") else None
    if kind == "choice":
        options = [o for o in raw.get("answerOption") or [] if isinstance(o, dict)]
        if not posted.isdigit() or int(posted) >= len(options):
            return None
        chosen = options[int(posted)]
        return {k: v for k, v in chosen.items() if k.startswith("value")}
    key = _INPUTS.get(str(kind))
    if key is None:
        return None
    if key == "valueInteger":
        try:
            return {key: int(posted)}
        except ValueError:
            return {"valueString": posted}  # refused by the server, shown next to the item
    if key == "valueDecimal":
        try:
            return {key: float(Decimal(posted))}
        except InvalidOperation:
            return {"valueString": posted}
    return {key: posted}


def _wanted(condition: dict[str, Any]) -> Any:
    return next((v for k, v in condition.items() if k.startswith("answer")), None)


def _holds(condition: dict[str, Any], given: dict[str, Any] | None) -> bool:
    operator = condition.get("operator")
    if operator == "exists":
        return (given is not None) == bool(condition.get("answerBoolean"))
    value = None if given is None else next(iter(given.values()))
    wanted = _wanted(condition)
    if isinstance(wanted, dict) and isinstance(value, dict):
        same = (wanted.get("system"), wanted.get("code")) == \
            (value.get("system"), value.get("code"))
    else:
        same = given is not None and value == wanted
    if operator == "=":
        return same
    if operator == "!=":
        return given is not None and not same
    return True


def response_items(questionnaire: dict[str, Any], posted: dict[str, str]) -> list[dict[str, Any]]:
    """The answered items, nested as the Questionnaire nests them; unasked items left out."""
    answers: dict[str, dict[str, Any]] = {}

    def collect(items: list[Any]) -> None:
        for raw in items:
            if not isinstance(raw, dict):
                continue
            value = posted.get(FIELD_PREFIX + str(raw.get("linkId")), "").strip()
            answer = _answer(raw, value) if value else None
            if answer is not None:
                answers[str(raw.get("linkId"))] = answer
            collect(raw.get("item") or [])

    def enabled(raw: dict[str, Any]) -> bool:
        conditions = [c for c in raw.get("enableWhen") or [] if isinstance(c, dict)]
        if not conditions:
            return True
        results = [_holds(c, answers.get(str(c.get("question")))) for c in conditions]
        return all(results) if raw.get("enableBehavior") == "all" else any(results)

    def build(items: list[Any]) -> list[dict[str, Any]]:
        out = []
        for raw in items:
            if not isinstance(raw, dict) or raw.get("type") == "display" or not enabled(raw):
                continue
            link = str(raw.get("linkId"))
            node: dict[str, Any] = {"linkId": link}
            if raw.get("text"):
                node["text"] = raw["text"]
            if link in answers and raw.get("type") != "group":
                node["answer"] = [answers[link]]
            children = build(raw.get("item") or [])
            if children:
                node["item"] = children
            if "answer" in node or children:
                out.append(node)
        return out

    collect(questionnaire.get("item") or [])
    return build(questionnaire.get("item") or [])


def issue_link(expression: str, posted_items: list[dict[str, Any]]) -> str | None:
    """The linkId an OperationOutcome expression names, in the response that was posted."""
    named = _WHERE_LINK.findall(expression)
    if named:
        return str(named[-1])
    head = expression.split(".answer", 1)[0]
    indexes = [int(i) for i in _INDEX.findall(head)]
    node: dict[str, Any] | None = None
    items: Any = posted_items
    for index in indexes:
        if not isinstance(items, list) or index >= len(items):
            return None
        node = items[index]
        items = node.get("item") if isinstance(node, dict) else None
    return str(node.get("linkId")) if isinstance(node, dict) else None


def field_errors(issues: list[dict[str, Any]], posted_items: list[dict[str, Any]],
                 known: set[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Errors by linkId (shown next to the item) and those naming no item (shown on top)."""
    by_item: dict[str, list[str]] = {}
    general: list[str] = []
    for issue in issues:
        if issue.get("severity") not in ("error", "fatal"):
            continue
        text = str(issue.get("diagnostics") or issue.get("code") or "")
        links = {issue_link(str(e), posted_items) for e in issue.get("expression") or []}
        links = {link for link in links if link in known}
        if not links:
            general.append(text)
        for link in links:
            by_item.setdefault(str(link), []).append(text)
    return by_item, general
