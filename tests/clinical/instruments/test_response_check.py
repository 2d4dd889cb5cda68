"""A faulty response is refused naming every faulty item, with a FHIRPath to each."""

from __future__ import annotations

from typing import Any

from ehr.clinical.instruments import by_key
from ehr.clinical.instruments.response_check import check_response

LOINC = "http://loinc.org"
PHQ_ANSWERS = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]


def phq9(values: dict[str, Any]) -> dict[str, Any]:
    items = []
    for link, value in values.items():
        answer = ({"valueCoding": {"system": LOINC, "code": PHQ_ANSWERS[value]}}
                  if isinstance(value, int) else value)
        items.append({"linkId": link, "answer": [answer] if answer is not None else []})
    return {"resourceType": "QuestionnaireResponse", "status": "completed", "item": items}


def test_valid_response_maps_codes_to_points() -> None:
    checked = check_response(by_key("phq-9"), phq9({str(i): i % 4 for i in range(1, 10)}))  # type: ignore
    assert checked.issues == []
    assert checked.answers == {str(i): i % 4 for i in range(1, 10)}


def test_every_faulty_item_is_named() -> None:
    values: dict[str, Any] = {str(i): 1 for i in range(1, 10)}
    del values["4"]  # missing
    del values["7"]  # missing
    values["2"] = {"valueCoding": {"system": LOINC, "code": "LA9999-9"}}  # not in the set
    values["5"] = {"valueInteger": 2}  # wrong type for a coded item
    values["12"] = 0  # no such item
    checked = check_response(by_key("phq-9"), phq9(values))  # type: ignore[arg-type]
    by_path = {i.expression[0]: i for i in checked.issues}
    assert len(checked.issues) == 5, [i.diagnostics for i in checked.issues]
    assert "QuestionnaireResponse.item.where(linkId='4')" in by_path
    assert "QuestionnaireResponse.item.where(linkId='7')" in by_path
    assert "QuestionnaireResponse.item[1].answer[0]" in by_path  # item 2
    assert "QuestionnaireResponse.item[3].answer[0]" in by_path  # item 5 (4 is absent)
    assert by_path["QuestionnaireResponse.item[7].linkId"].code == "invalid"
    missing = by_path["QuestionnaireResponse.item.where(linkId='4')"]
    assert "item 4 is missing" in missing.diagnostics
    assert all(i.severity == "error" for i in checked.issues)


def test_item_with_two_answers_and_duplicates_are_faulty() -> None:
    response = phq9({str(i): 0 for i in range(1, 10)})
    response["item"][0]["answer"].append({"valueCoding": {"system": LOINC, "code": "LA6569-3"}})
    response["item"].append({"linkId": "3", "answer": [
        {"valueCoding": {"system": LOINC, "code": "LA6569-3"}}]})
    checked = check_response(by_key("phq-9"), response)  # type: ignore[arg-type]
    codes = sorted(i.code for i in checked.issues)
    assert codes == ["duplicate", "invalid"], [i.diagnostics for i in checked.issues]


def test_optional_item_may_be_left_out() -> None:
    checked = check_response(by_key("phq-9"), phq9({str(i): 0 for i in range(1, 10)}))  # type: ignore
    assert checked.issues == []  # item 10 (difficulty) is not required


def cssrs(**answers: bool) -> dict[str, Any]:
    return {"resourceType": "QuestionnaireResponse", "status": "completed", "item": [
        {"linkId": k.replace("_", "-").removeprefix("i"), "answer": [{"valueBoolean": v}]}
        for k, v in answers.items()]}


def test_cssrs_skip_logic() -> None:
    instrument = by_key("cssrs-screener")
    # "no" to item 2: items 3-5 are not asked; "yes" to 6: 6-recent is.
    ok = check_response(instrument, cssrs(i1=True, i2=False, i6=True, i6_recent=False))  # type: ignore
    assert ok.issues == []
    # "yes" to item 2 makes 3-5 required; "no" to 6 forbids 6-recent.
    bad = check_response(instrument, cssrs(i1=True, i2=True, i3=False, i6=False,  # type: ignore
                                           i6_recent=True))
    messages = sorted(i.diagnostics for i in bad.issues)
    assert len(messages) == 3, messages
    assert any("item 4 is missing" in m for m in messages)
    assert any("item 5 is missing" in m for m in messages)
    assert any("item 6-recent is answered but not asked" in m for m in messages)


def test_yes_no_items_take_booleans_only() -> None:
    response = cssrs(i1=True, i2=False, i6=False)
    response["item"][0]["answer"] = [{"valueInteger": 1}]
    checked = check_response(by_key("cssrs-screener"), response)  # type: ignore[arg-type]
    assert [i.expression for i in checked.issues] == [("QuestionnaireResponse.item[0].answer[0]",)]


def test_audit_items_9_and_10_take_0_2_4() -> None:
    items = [{"linkId": str(i), "answer": [{"valueInteger": 1}]} for i in range(1, 11)]
    checked = check_response(by_key("audit"), {"item": items})  # type: ignore[arg-type]
    assert sorted(i.expression[0] for i in checked.issues) == [
        "QuestionnaireResponse.item[8].answer[0]", "QuestionnaireResponse.item[9].answer[0]"]
