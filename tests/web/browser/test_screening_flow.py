"""A therapist fills a PHQ-9 in Chromium: live score, the item-9 alert, the recorded score."""

from __future__ import annotations

from typing import Any

from ehr.fhir.definitions_loader import publish_definitions
from web.browser.conftest import screenshot
from web.browser.test_flows import sign_in
from web.signing_in import make_user
from web.test_pages import on_team, patient

ANSWERS = {"1": "Nearly every day", "2": "More than half the days", "3": "Several days",
           "4": "Nearly every day", "5": "Not at all", "6": "Several days",
           "7": "More than half the days", "8": "Not at all"}


def choose(page: Any, link: str, label: str) -> None:
    page.locator(f'fieldset[data-link="{link}"]').get_by_label(label).check()


def test_therapist_fills_a_phq9_with_live_scoring(web_app: Any, tablet: Any) -> None:
    publish_definitions(web_app.state.engine, web_app.state.pipeline)
    pid = patient(web_app, "Halvorsen", "MRN-PHQ")
    on_team(web_app, pid, "Practitioner/thlive")
    make_user(web_app, "thlive", "therapist", practitioner="Practitioner/thlive")
    sign_in(tablet, "thlive")
    tablet.wait_for_url("**/patients")
    tablet.goto(f"/patients/{pid}")
    tablet.get_by_role("link", name="New screening").click()
    tablet.get_by_role("link", name="Patient Health Questionnaire-9 (PHQ-9)").click()
    tablet.wait_for_url("**instrument=phq-9")
    total = tablet.locator("#live-total")
    alert = tablet.locator('[data-alert-item="9"]')
    assert total.inner_text() == "0" and alert.is_hidden()
    screenshot(tablet, "phq9", "1-empty-form")
    running = 0
    points = {"Not at all": 0, "Several days": 1, "More than half the days": 2,
              "Nearly every day": 3}
    for link, label in ANSWERS.items():
        choose(tablet, link, label)
        running += points[label]
        assert total.inner_text() == str(running)
    assert running == 12 and tablet.locator("#live-band").inner_text() == "Moderate"
    assert alert.is_hidden()
    screenshot(tablet, "phq9", "2-live-score")
    choose(tablet, "9", "Several days")
    assert total.inner_text() == "13"
    assert alert.is_visible() and alert.get_attribute("role") == "alert"
    screenshot(tablet, "phq9", "3-item9-alert")
    choose(tablet, "9", "Not at all")
    assert alert.is_hidden() and total.inner_text() == "12"
    choose(tablet, "9", "More than half the days")
    assert alert.is_visible() and total.inner_text() == "14"
    tablet.get_by_role("button", name="Record the screening").click()
    tablet.wait_for_url(f"**/patients/{pid}/screenings/*")
    assert tablet.locator("#recorded-score").inner_text() == "14"
    assert tablet.locator("#recorded-band").inner_text() == "Moderate"
    assert tablet.get_by_role("alert").first.is_visible()
    assert "item 9" in tablet.get_by_role("alert").first.inner_text()
    screenshot(tablet, "phq9", "4-recorded-score")
    tablet.get_by_role("link", name="Outcome trends").click()
    assert tablet.locator('#h-phq-9 ~ figure circle.point').count() == 1
    screenshot(tablet, "phq9", "5-trends")
    tablet.goto(f"/patients/{pid}")
    assert tablet.locator("#trends-heading ~ div circle.point").count() == 1
    screenshot(tablet, "phq9", "6-chart-summary")
