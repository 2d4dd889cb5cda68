"""The eligibility protocol as data: every rule on both sides, the blood-pressure thresholds
at their boundaries, the flag-fed rule, and refusal of a malformed protocol file."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinical.eligibility_clinic import HARD_BP, REVIEW_BP, YES_NO_RULES
from ehr.clinical.eligibility_protocol import (
    DEFAULT_FILE,
    ProtocolError,
    default_protocol,
    load_protocol,
    parse_protocol,
)
from ehr.clinical.flags import build_flag
from ehr.clinical.screening_checklist import ITEMS, answer_problems, checklist_questionnaire
from ehr.clinical.terminology import CANONICAL_BASE


def answers(systolic: int = 120, diastolic: int = 80, **yes: bool) -> dict[str, Any]:
    out: dict[str, Any] = {link: False for link, item in ITEMS.items() if item.kind == "boolean"}
    out.update({k.replace("_", "-"): v for k, v in yes.items()})
    out["bp-systolic"], out["bp-diastolic"] = Decimal(systolic), Decimal(diastolic)
    return out


def fired(values: dict[str, Any], flags: list[dict[str, Any]] | None = None) -> dict[str, str]:
    return {r.id: r.kind for r in default_protocol().evaluate(values, flags or [])}


def test_every_reference_item_has_a_rule_and_a_checklist_question() -> None:
    protocol = default_protocol()
    assert {r.id for r in protocol.rules} == \
        {rule for rule, _ in YES_NO_RULES.values()} | {HARD_BP, REVIEW_BP}
    assert set(YES_NO_RULES) | {"bp-systolic", "bp-diastolic"} == set(ITEMS)
    assert protocol.decision_valid_days == 90
    assert protocol.checklist == checklist_questionnaire()["url"]
    assert protocol.checklist.startswith(CANONICAL_BASE)


def test_nothing_fires_on_a_clean_checklist() -> None:
    assert fired(answers()) == {}


@pytest.mark.parametrize("item", sorted(YES_NO_RULES))
def test_each_yes_no_rule_on_both_sides(item: str) -> None:
    rule, kind = YES_NO_RULES[item]
    assert fired(answers(**{item: True})) == {rule: kind}
    assert fired(answers(**{item: False})) == {}


@pytest.mark.parametrize(("systolic", "diastolic", "expected"), [
    (180, 100, {REVIEW_BP: "needs-review"}),  # at 180/100: not above, so no hard stop
    (181, 80, {HARD_BP: "hard-stop", REVIEW_BP: "needs-review"}),
    (120, 101, {HARD_BP: "hard-stop", REVIEW_BP: "needs-review"}),
    (181, 101, {HARD_BP: "hard-stop", REVIEW_BP: "needs-review"}),
    (140, 90, {}),  # at 140/90: not above, so no review
    (141, 80, {REVIEW_BP: "needs-review"}),
    (120, 91, {REVIEW_BP: "needs-review"}),
    (140, 91, {REVIEW_BP: "needs-review"}),
    (139, 89, {}),
])
def test_blood_pressure_boundaries(systolic: int, diastolic: int,
                                   expected: dict[str, str]) -> None:
    assert fired(answers(systolic, diastolic)) == expected


@given(st.integers(40, 300), st.integers(20, 200))
def test_blood_pressure_thresholds_hold_everywhere(systolic: int, diastolic: int) -> None:
    result = fired(answers(systolic, diastolic))
    assert (HARD_BP in result) == (systolic > 180 or diastolic > 100)
    assert (REVIEW_BP in result) == (systolic > 140 or diastolic > 90)
    assert set(result) <= {HARD_BP, REVIEW_BP}


def test_hard_stops_are_listed_first() -> None:
    kinds = [r.kind for r in default_protocol().evaluate(
        answers(150, 80, med_opioid=True, pregnancy=True))]
    assert kinds == ["hard-stop", "needs-review", "needs-review"]


def test_high_suicide_risk_from_an_active_flag() -> None:
    high = build_flag("p", "cssrs-high-risk", "C-SSRS high risk")
    blocking = build_flag("p", "some-other-kind", "blocks dosing", blocks_dosing=True)
    other = build_flag("p", "phq9-item9", "PHQ-9 item 9 positive")
    assert fired(answers(), [high]) == {"high-suicide-risk": "needs-review"}
    assert fired(answers(), [blocking]) == {"high-suicide-risk": "needs-review"}
    assert fired(answers(), [other]) == {}
    assert fired(answers(), [{**high, "status": "inactive"}]) == {}
    protocol = default_protocol()
    rule = protocol.rule("high-suicide-risk")
    assert rule is not None
    assert protocol.fired_by_flag(rule, [other, high]) == [high]


def test_missing_answers_fire_nothing_but_are_reported() -> None:
    assert fired({}) == {}
    response = {"resourceType": "QuestionnaireResponse", "status": "completed", "item": [
        {"linkId": "pregnancy", "answer": [{"valueInteger": 1}]},
        {"linkId": "bp-systolic", "answer": [{"valueInteger": 301}]},
        {"linkId": "bp-diastolic", "answer": [{"valueBoolean": True}]}]}
    problems = dict(answer_problems(response))
    assert "yes/no" in problems["pregnancy"]
    assert "plausible range 40-300" in problems["bp-systolic"]
    assert "number" in problems["bp-diastolic"]
    assert "not answered" in problems["breastfeeding"]
    assert len(problems) == len(ITEMS)


def _shipped() -> dict[str, Any]:
    return dict(json.loads(DEFAULT_FILE.read_text()))


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: d.update(decision_valid_days=0), "decision_valid_days"),
    (lambda d: d.update(rules=[]), "non-empty"),
    (lambda d: d["rules"][0].update(kind="maybe"), "kind"),
    (lambda d: d["rules"][0].update(when=[{"item": "no-such-item", "equals": True}]),
     "unknown checklist item"),
    (lambda d: d["rules"][0].update(when=[{"item": "pregnancy"}]), "equals"),
    (lambda d: d["rules"][1].update(id=d["rules"][0]["id"]), "unique"),
    (lambda d: d["rules"][0].update(when=[{"active_flag": {"kinds": "x"}}]), "kinds"),
])
def test_a_malformed_protocol_is_refused(change: Any, message: str) -> None:
    data = copy.deepcopy(_shipped())
    change(data)
    with pytest.raises(ProtocolError, match=message):
        parse_protocol(data)


def test_a_site_protocol_changes_thresholds_and_expiry(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    data = _shipped()
    data["decision_valid_days"] = 30
    for rule in data["rules"]:
        if rule["id"] == HARD_BP:
            rule["when"] = [{"item": "bp-systolic", "above": 170}]
    site = tmp_path / "eligibility.json"
    site.write_text(json.dumps(data))
    monkeypatch.setenv("EHR_ELIGIBILITY_PROTOCOL_FILE", str(site))
    protocol = load_protocol()
    assert protocol.decision_valid_days == 30
    assert {r.id for r in protocol.evaluate(answers(171, 80))} == {HARD_BP, REVIEW_BP}
    assert {r.id for r in protocol.evaluate(answers(120, 105))} == {REVIEW_BP}
