"""The generic form: what the browser adds up is what the server scores (no database)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ehr.clinical.instruments import instruments
from ehr.clinical.instruments.resources import questionnaire
from ehr.clinical.instruments.response_check import check_response
from ehr.clinical.instruments.scoring import score
from ehr.web.questionnaire_form import Form, build_form, issue_link, response_items

SUMMED = sorted(k for k, i in instruments().items() if i.method == "sum")


def live_total(form: Form, posted: dict[str, str]) -> int:
    """The browser's running score (static/scoring.js), restated over the rendered data."""
    groups: dict[str, float] = {}
    total = 0.0
    for item in form.walk():
        if not item.scored:
            continue
        option = next((o for o in item.options if o.value == posted.get(item.name)), None)
        if option is None or option.score is None:
            continue
        points = float(option.score)
        if form.folds and item.group:
            fold = form.folds[item.group]
            groups[item.group] = max(groups.get(item.group, 0), points) if fold == "max" \
                else groups.get(item.group, 0) + points
        elif not form.folds:
            total += points
    return int(total + sum(groups.values()))


@st.composite
def filled(draw: Any) -> tuple[str, dict[str, str]]:
    key = draw(st.sampled_from(SUMMED))
    form = build_form(questionnaire(instruments()[key]), instruments()[key])
    posted = {item.name: draw(st.sampled_from([o.value for o in item.options]))
              for item in form.walk() if item.options}
    return key, posted


@settings(max_examples=150, deadline=None)
@given(filled())
def test_live_score_equals_the_server_score(case: tuple[str, dict[str, str]]) -> None:
    key, posted = case
    instrument = instruments()[key]
    resource = questionnaire(instrument)
    form = build_form(resource, instrument)
    response = {"resourceType": "QuestionnaireResponse", "status": "completed",
                "item": response_items(resource, posted)}
    checked = check_response(instrument, response)
    assert checked.issues == []
    assert score(instrument, checked.answers).total == live_total(form, posted)


@given(st.lists(st.sampled_from(["1", "2", "3", "4", "5", "6", "7", "8", "9"]),
                min_size=1, max_size=9, unique=True), st.data())
def test_an_issue_names_the_item_it_is_about(links: list[str], data: Any) -> None:
    items = [{"linkId": link, "answer": [{"valueInteger": 1}]} for link in links]
    index = data.draw(st.integers(0, len(links) - 1))
    assert issue_link(f"QuestionnaireResponse.item[{index}].answer[0]", items) == links[index]
    assert issue_link(f"QuestionnaireResponse.item[{index}]", items) == links[index]
    assert issue_link(f"QuestionnaireResponse.item.where(linkId='{links[index]}')",
                      []) == links[index]
    assert issue_link(f"QuestionnaireResponse.item[{len(links)}]", items) is None
    assert issue_link("QuestionnaireResponse.subject", items) is None


def test_unasked_items_are_left_out() -> None:
    instrument = instruments()["cssrs-screener"]
    resource = questionnaire(instrument)
    posted = {f"q.{i.link_id}": "true" for i in instrument.items}
    posted["q.2"] = "false"
    sent = {i["linkId"] for i in response_items(resource, posted)}
    gated = {i.link_id for i in instrument.items if i.enable_when and i.enable_when[0] == "2"}
    assert gated and not gated & sent
    assert check_response(instrument, {"item": response_items(resource, posted)}).issues == []
