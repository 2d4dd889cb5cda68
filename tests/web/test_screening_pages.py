"""Screening forms, outcome trends and the eligibility page (issue 8 item 2)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from ehr.clinical.instruments import by_key
from ehr.clinical.screening_checklist import ITEMS
from ehr.config import Settings
from ehr.context import SYSTEM, RequestContext
from ehr.db import unit_of_work
from ehr.fhir.definitions_loader import publish_definitions
from ehr.fhir.reader import Reader
from ehr.web.questionnaire_form import html_id
from ehr.web.screening_pages import shipped
from web.signing_in import csrf_of, make_user, sign_in
from web.test_pages import create, on_team, patient, ui_events

PHQ9 = "https://ehr-kat.org/fhir/Questionnaire/phq-9|1.0.0"
LOINC = "http://loinc.org"
FREQUENCY = ("LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9")  # 0, 1, 2, 3 points


def clinic(app: Any, role: str = "physician", username: str = "drscreen") -> str:
    publish_definitions(app.state.engine, app.state.pipeline)
    pid = patient(app, "Screened", f"MRN-{username}")
    on_team(app, pid, f"Practitioner/{username}")
    make_user(app, username, role, practitioner=f"Practitioner/{username}")
    return pid


def walk(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        out.append(item)
        out.extend(walk(item.get("item") or []))
    return out


def phq9_form(token: str, points: dict[str, int]) -> dict[str, str]:
    # The option index posted for a PHQ-9 frequency item equals its points (0..3).
    return {"csrf": token, **{f"q.{link}": str(p) for link, p in points.items()}}


def search(app: Any, rtype: str, query: list[tuple[str, str]]) -> list[dict[str, Any]]:
    with unit_of_work(app.state.engine) as session:
        page = Reader(app.state.pipeline, session, RequestContext(actor=SYSTEM)).search(
            rtype, query)
        return [json.loads(row.content or "{}") for row in page.matches]


def fieldset(html: str, link: str) -> str:
    """The markup of one item's field, to check an error sits next to it."""
    start = html.index(f'id="{html_id(link)}"')
    end = html.find('class="q-item', start + 1)
    return html[start:end if end > 0 else len(html)]


def test_every_shipped_form_renders_every_item(web_app: Any, browser: TestClient) -> None:
    pid = clinic(web_app)
    sign_in(browser, "drscreen")
    listing = browser.get(f"/patients/{pid}/screenings/new")
    assert listing.status_code == 200
    for key in shipped():
        assert f"instrument={key}" in listing.text
        page = browser.get(f"/patients/{pid}/screenings/new?instrument={key}")
        assert page.status_code == 200, key
        questionnaire = search(web_app, "Questionnaire", [("url", shipped()[key][0])])[0]
        items = walk(questionnaire["item"])
        assert items, key
        for item in items:
            prefix = "g-" if item["type"] == "group" else ""
            assert f'id="{prefix}{html_id(item["linkId"])}"' in page.text, (key, item["linkId"])
            if item["type"] in ("choice", "boolean"):
                options = len(item.get("answerOption") or []) or 2
                assert fieldset(page.text, item["linkId"]).count('type="radio"') == options
        assert 'src="/static/scoring.js"' in page.text and "<script>" not in page.text
    unknown = browser.get(f"/patients/{pid}/screenings/new?instrument=nope")
    assert unknown.status_code == 404


def test_phq9_data_attributes_carry_the_points(web_app: Any, browser: TestClient) -> None:
    pid = clinic(web_app)
    sign_in(browser, "drscreen")
    page = browser.get(f"/patients/{pid}/screenings/new?instrument=phq-9").text
    item9 = fieldset(page, "9")
    assert "data-scored" in item9
    assert re.findall(r'data-score="(\d+)"', item9) == ["0", "1", "2", "3"]
    assert "data-scored" not in fieldset(page, "10")  # the difficulty item is not summed
    assert 'data-alert-item="9"' in page and 'data-alert-above="0"' in page


def test_complete_phq9_records_the_server_score(web_app: Any, browser: TestClient) -> None:
    pid = clinic(web_app, "therapist", "thscreen")
    sign_in(browser, "thscreen")
    token = csrf_of(browser.get(f"/patients/{pid}/screenings/new?instrument=phq-9").text)
    points = {"1": 3, "2": 2, "3": 1, "4": 0, "5": 1, "6": 2, "7": 3, "8": 0, "9": 0}
    sent = browser.post(f"/patients/{pid}/screenings/new?instrument=phq-9",
                        data=phq9_form(token, points))
    assert sent.status_code == 303, sent.text
    rid = sent.headers["location"].rsplit("/", 1)[-1]
    stored = search(web_app, "QuestionnaireResponse", [("_id", rid)])[0]
    assert stored["status"] == "completed" and stored["questionnaire"] == PHQ9
    assert stored["subject"] == {"reference": f"Patient/{pid}"}
    assert [a["answer"][0]["valueCoding"]["code"] for a in stored["item"]] == \
        [FREQUENCY[points[str(n)]] for n in range(1, 10)]
    result = browser.get(sent.headers["location"])
    assert result.status_code == 200
    assert '<span class="score-value" id="recorded-score">12</span>' in result.text
    assert 'id="recorded-band">Moderate</span>' in result.text
    assert 'role="alert"' not in result.text
    obs = search(web_app, "Observation", [("patient", pid), ("code", f"{LOINC}|44261-6")])
    assert [o["valueQuantity"]["value"] for o in obs] == [12]


def test_incomplete_phq9_shows_errors_next_to_missing_items(web_app: Any,
                                                            browser: TestClient) -> None:
    pid = clinic(web_app)
    sign_in(browser, "drscreen")
    token = csrf_of(browser.get(f"/patients/{pid}/screenings/new?instrument=phq-9").text)
    points = {"1": 1, "2": 1, "3": 1, "5": 1, "6": 1, "8": 1, "9": 0}  # 4 and 7 missing
    sent = browser.post(f"/patients/{pid}/screenings/new?instrument=phq-9",
                        data=phq9_form(token, points))
    assert sent.status_code == 422
    for missing in ("4", "7"):
        field = fieldset(sent.text, missing)
        assert f'id="q-{missing}-error"' in field and "missing" in field
        assert f'aria-describedby="q-{missing}-error"' in field
    assert "q-1-error" not in sent.text
    # What was answered stays chosen.
    assert re.search(r'name="q\.1" value="1"\s*data-score="1"\s*checked', sent.text)
    assert search(web_app, "QuestionnaireResponse", [("patient", pid)]) == []


def test_item9_above_zero_shows_the_alert(web_app: Any, browser: TestClient) -> None:
    pid = clinic(web_app)
    sign_in(browser, "drscreen")
    form = browser.get(f"/patients/{pid}/screenings/new?instrument=phq-9").text
    assert re.search(r'role="alert" data-alert-item="9"[^>]*\s+hidden', form)
    token = csrf_of(form)
    refused = browser.post(f"/patients/{pid}/screenings/new?instrument=phq-9",
                           data=phq9_form(token, {"9": 2}))
    assert refused.status_code == 422
    alert = re.search(r'<div class="notice danger safety-alert" role="alert" '
                      r'data-alert-item="9"[^>]*>', refused.text)
    assert alert and "hidden" not in alert.group(0)
    points = {str(n): 0 for n in range(1, 9)} | {"9": 1}
    sent = browser.post(f"/patients/{pid}/screenings/new?instrument=phq-9",
                        data=phq9_form(token, points))
    assert sent.status_code == 303
    result = browser.get(sent.headers["location"]).text
    assert 'class="notice danger safety-alert" role="alert"' in result
    assert "item 9" in result and 'id="recorded-score">1<' in result


def phq9_response(pid: str, authored: str, points: list[int]) -> dict[str, Any]:
    return {"resourceType": "QuestionnaireResponse", "status": "completed",
            "questionnaire": PHQ9, "subject": {"reference": f"Patient/{pid}"},
            "authored": authored,
            "item": [{"linkId": str(n), "answer": [{"valueCoding": {
                "system": LOINC, "code": FREQUENCY[p]}}]} for n, p in enumerate(points, 1)]}


def test_trends_chart_one_point_per_score_with_bands(web_app: Any, browser: TestClient,
                                                    settings: Settings) -> None:
    pid = clinic(web_app)
    # 03:00 UTC is the evening before in the clinic's zone (America/New_York).
    dates = ["2026-01-10T03:00:00Z", "2026-02-07T15:00:00Z", "2026-03-07T15:00:00Z"]
    totals = [[3] * 8 + [0], [2] * 7 + [0, 0], [1] * 3 + [0] * 6]
    for authored, points in zip(dates, totals, strict=True):
        create(web_app, phq9_response(pid, authored, points))
    sign_in(browser, "drscreen")
    page = browser.get(f"/patients/{pid}/trends")
    assert page.status_code == 200
    sections = page.text.split('<section class="card trend"')
    phq9 = next(s for s in sections if 'id="h-phq-9"' in s)
    assert phq9.count('<circle class="point"') == 3
    bands = by_key("phq-9").bands  # type: ignore[union-attr]
    assert phq9.count('<rect class="band tone-') == len(bands)
    for band in bands:
        assert f"{band.display}: {band.low}-{band.high}" in phq9
    assert phq9.count('<tr class="score-row">') == 3
    zone = ZoneInfo(settings.clinic_timezone)
    first_day = datetime(2026, 1, 10, 3, tzinfo=UTC).astimezone(zone).strftime("%Y-%m-%d")
    assert first_day == "2026-01-09" and f">{first_day}</text>" in phq9
    for total in (24, 14, 3):
        assert f"<td>{total} <span" in phq9
    gad7 = next(s for s in sections if 'id="h-gad-7"' in s)
    assert '<circle class="point"' not in gad7 and "No Patient Health" not in gad7
    chart = browser.get(f"/patients/{pid}").text
    compact = chart.split('id="trends-heading"')[1]
    assert compact.count('<circle class="point"') == 3
    assert "Latest 3 of 27 (Minimal)" in compact


def answer_checklist(browser: TestClient, pid: str, overrides: dict[str, str]) -> Any:
    page = browser.get(f"/patients/{pid}/screenings/new?instrument=medical-screening-checklist")
    assert page.status_code == 200
    data = {"csrf": csrf_of(page.text)}
    for link, item in ITEMS.items():
        data[f"q.{link}"] = "false" if item.kind == "boolean" else "120"
    data["q.bp-diastolic"] = "80"
    data.update(overrides)
    return browser.post(f"/patients/{pid}/screenings/new?instrument=medical-screening-checklist",
                        data=data)


def test_physician_signs_an_eligibility_decision(web_app: Any, browser: TestClient) -> None:
    pid = clinic(web_app)
    sign_in(browser, "drscreen")
    before = browser.get(f"/patients/{pid}/eligibility")
    assert before.status_code == 200 and ">No decision<" in before.text
    incomplete = answer_checklist(browser, pid, {"q.pregnancy": ""})
    assert incomplete.status_code == 422
    assert 'id="q-pregnancy-error"' in fieldset(incomplete.text, "pregnancy")
    sent = answer_checklist(browser, pid, {"q.bp-systolic": "150"})
    assert sent.status_code == 303 and "/eligibility?checklist=" in sent.headers["location"]
    page = browser.get(sent.headers["location"]).text
    assert "needs review" in page and "Checklist recorded" in page
    token = csrf_of(page)
    wrong = browser.post(f"/patients/{pid}/eligibility/decision", data={
        "csrf": token, "status": "eligible", "justification": "BP rechecked",
        "password": "not my password"})
    assert wrong.status_code == 422
    assert re.search(r'id="password"[^>]*aria-invalid="true" aria-describedby="password-error"',
                     wrong.text)
    assert 'id="password-error"' in wrong.text
    unjustified = browser.post(f"/patients/{pid}/eligibility/decision", data={
        "csrf": token, "status": "eligible", "justification": "",
        "password": "correct horse battery"})
    assert unjustified.status_code == 422
    assert re.search(r'id="justification-error">A justification is required', unjustified.text)
    done = browser.post(f"/patients/{pid}/eligibility/decision", data={
        "csrf": token, "status": "eligible", "justification": "BP 150 rechecked: 132/84",
        "password": "correct horse battery"})
    assert done.status_code == 303
    after = browser.get(done.headers["location"]).text
    assert 'id="eligibility-status">Eligible<' in after and "Decision signed" in after
    assert "BP 150 rechecked" in after
    assert 'id="eligibility-status">Eligible<' in browser.get(f"/patients/{pid}").text
    provenance = search(web_app, "Provenance", [("patient", pid)])
    assert len(provenance) == 1 and provenance[0]["signature"]


def test_a_therapist_sees_the_status_but_may_not_decide(web_app: Any,
                                                       browser: TestClient) -> None:
    pid = clinic(web_app, "therapist", "thelig")
    sign_in(browser, "thelig")
    page = browser.get(f"/patients/{pid}/eligibility")
    assert page.status_code == 200 and 'id="eligibility-status"' in page.text
    assert 'name="password"' not in page.text and "Latest checklist" not in page.text
    refused = browser.post(f"/patients/{pid}/eligibility/decision", data={
        "csrf": csrf_of(page.text), "status": "eligible", "password": "correct horse battery"})
    assert refused.status_code == 403
    assert search(web_app, "Provenance", [("patient", pid)]) == []


def test_page_views_are_audited(web_app: Any, browser: TestClient) -> None:
    pid = clinic(web_app)
    create(web_app, phq9_response(pid, "2026-01-10T15:00:00Z", [1] * 9))
    sign_in(browser, "drscreen")
    token = csrf_of(browser.get(f"/patients/{pid}/screenings/new?instrument=phq-9").text)
    sent = browser.post(f"/patients/{pid}/screenings/new?instrument=phq-9",
                        data=phq9_form(token, {str(n): 1 for n in range(1, 10)}))
    browser.get(sent.headers["location"])
    browser.get(f"/patients/{pid}/trends")
    browser.get(f"/patients/{pid}/eligibility")
    seen = {json.loads(r.body).get("detail", {}).get("page") for r in ui_events(web_app)
            if pid in r.body and r.actor_id == "drscreen"}
    assert {"screening-form", "screening-result", "trends", "eligibility"} <= seen


def test_outside_the_care_team_no_form(web_app: Any, browser: TestClient) -> None:
    publish_definitions(web_app.state.engine, web_app.state.pipeline)
    pid = patient(web_app, "Elsewhere", "MRN-OUT")
    make_user(web_app, "droutside", "physician", practitioner="Practitioner/droutside")
    sign_in(browser, "droutside")
    for url in (f"/patients/{pid}/screenings/new?instrument=phq-9", f"/patients/{pid}/trends",
                f"/patients/{pid}/eligibility"):
        page = browser.get(url)
        assert page.status_code == 404 and "Screened" not in page.text, url
