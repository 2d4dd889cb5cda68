"""Screening forms with live scoring, the recorded result, and the outcome trends.

A form is any shipped Questionnaire, read through FHIR and rendered generically
(``questionnaire_form``). The filled form is posted as a completed QuestionnaireResponse
through the same FHIR write path as an API client's: the server checks, scores and flags it
in one transaction; a refusal comes back as an OperationOutcome whose issues are shown next to
the items they name. The browser's running score is a convenience; the recorded score is the
server's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ehr import instants
from ehr.clinical.instruments import Instrument, by_url, instruments
from ehr.clinical.safety_flags import derived_id
from ehr.clinical.screening_checklist import CHECKLIST_URL, CHECKLIST_VERSION
from ehr.clinical.terminology import CANONICAL_BASE
from ehr.web.fhir_calls import FhirResult
from ehr.web.pages import Page, Pages
from ehr.web.patients import clinician, patient_context, readable_patient
from ehr.web.questionnaire_form import (
    FIELD_PREFIX,
    build_form,
    field_errors,
    response_items,
)
from ehr.web.screening_summary import trends

QUESTIONNAIRES = f"{CANONICAL_BASE}/Questionnaire/"


def shipped() -> dict[str, tuple[str, str, str]]:
    """key -> (canonical URL, version, title) of every Questionnaire the service ships."""
    out = {key: (i.url, i.version, i.title) for key, i in instruments().items()}
    out[CHECKLIST_URL.rsplit("/", 1)[-1]] = (CHECKLIST_URL, CHECKLIST_VERSION,
                                             "Medical screening checklist")
    return out


def questionnaire_of(page: Page, key: str) -> dict[str, Any] | None:
    """The published Questionnaire of a shipped instrument, in the version the service scores."""
    known = shipped().get(key)
    if known is None:
        return None
    url, version, _ = known
    found = page.fhir.search("Questionnaire", [("url", url), ("version", version)])
    matches = [q for q in found.entries() if q.get("resourceType") == "Questionnaire"]
    return matches[0] if matches else None


def _alerts_on(form_items: Any, alerts: Any, values: dict[str, str]) -> set[str]:
    """The live alerts the posted answers set off (shown again when the form comes back)."""
    by_link = {i.link_id: i for i in form_items}
    on = set()
    for alert in alerts:
        item = by_link.get(alert.item)
        posted = values.get(FIELD_PREFIX + alert.item)
        option = next((o for o in item.options if o.value == posted), None) if item else None
        if option is not None and option.score is not None and \
                float(option.score) > alert.above:
            on.add(alert.item)
    return on


def build_screening_router(pages: Pages) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def form_page(page: Page, patient: FhirResult, pid: str, key: str, status: int = 200,
                  values: dict[str, str] | None = None,
                  errors: dict[str, list[str]] | None = None,
                  general: list[str] | None = None) -> Response:
        questionnaire = questionnaire_of(page, key) if key else None
        form = None
        if questionnaire is not None:
            instrument = by_url(str(questionnaire.get("url")))
            form = build_form(questionnaire, instrument, patient.body.get("gender"))
        elif key:
            general = [f"No published form {key!r}: choose one of the forms listed."]
            status = 404
        values = values or {}
        page.viewed("screening-form", [pid], rtype="Patient", rid=pid)
        return page.render(
            "screening_form.html", status, **patient_context(patient), pid=pid, key=key,
            choices=[(k, title) for k, (_, _, title) in shipped().items()], form=form,
            values=values, errors=errors or {}, general=general or [],
            alerts_on=_alerts_on(form.walk(), form.alerts, values) if form else set())

    @router.get("/patients/{pid}/screenings/new")
    def new_screening(request: Request, pid: str, instrument: str = "") -> Response:
        page = clinician(pages, request)
        patient = readable_patient(page, pid)
        return form_page(page, patient, pid, instrument.strip().lower())

    @router.post("/patients/{pid}/screenings/new")
    async def submit_screening(request: Request, pid: str, instrument: str = "") -> Response:
        page = clinician(pages, request)
        values = await page.form()
        key = instrument.strip().lower()
        patient = readable_patient(page, pid)
        questionnaire = questionnaire_of(page, key)
        if questionnaire is None:
            return form_page(page, patient, pid, key, 404, values)
        items = response_items(questionnaire, values)
        body: dict[str, Any] = {
            "resourceType": "QuestionnaireResponse", "status": "completed",
            "questionnaire": f"{questionnaire['url']}|{questionnaire['version']}",
            "subject": {"reference": f"Patient/{pid}"},
            "authored": instants.instant(pages.pipeline.clock()),
            "item": items,
        }
        if page.ctx.actor.practitioner:
            body["author"] = {"reference": page.ctx.actor.practitioner}
        saved = page.fhir.post("QuestionnaireResponse", body)
        if saved.ok:
            rid = str(saved.body.get("id"))
            if questionnaire.get("url") == CHECKLIST_URL:
                return page.redirect(f"/patients/{pid}/eligibility?checklist={rid}")
            return page.redirect(f"/patients/{pid}/screenings/{rid}")
        known = {i.link_id for i in build_form(questionnaire, None).walk()}
        errors, general = field_errors(saved.issues(), items, known)
        if not errors and not general:
            general = saved.problems() or [f"The form was refused ({saved.status})."]
        return form_page(page, patient, pid, key, saved.status, values, errors, general)

    @router.get("/patients/{pid}/screenings/{rid}")
    def screening_result(request: Request, pid: str, rid: str) -> Response:
        page = clinician(pages, request)
        patient = readable_patient(page, pid)
        response = page.fhir.get(f"QuestionnaireResponse/{rid}")
        subject = (response.body.get("subject") or {}).get("reference")
        if not response.ok or subject != f"Patient/{pid}":
            return page.render("message.html", 404, heading="Screening not found",
                               lines=["This screening is not in this patient's record."],
                               back=f"/patients/{pid}")
        instrument = by_url(str(response.body.get("questionnaire", "")).split("|")[0])
        score = page.fhir.get(f"Observation/{derived_id(rid, 'score')}")
        flags = [f.body for f in (page.fhir.get(f"Flag/{derived_id(rid, f'flag-{n}')}")
                                  for n in range(len(instrument.flags) if instrument else 0))
                 if f.ok]
        page.viewed("screening-result", [pid], rtype="QuestionnaireResponse", rid=rid)
        return page.render("screening_result.html", **patient_context(patient), pid=pid,
                           response=response.body, instrument=instrument,
                           score=score.body if score.ok else None, flags=flags,
                           answers=_answers(instrument, response.body))

    @router.get("/patients/{pid}/trends")
    def trends_page(request: Request, pid: str) -> Response:
        page = clinician(pages, request)
        patient = readable_patient(page, pid)
        series = trends(page.fhir, pid, pages.templates.zone)
        page.viewed("trends", [pid], rtype="Patient", rid=pid)
        return page.render("trends.html", **patient_context(patient), pid=pid, trends=series)

    return router


def _answers(instrument: Instrument | None, response: dict[str, Any]) -> list[tuple[str, str]]:
    """(item, answer) in plain words, for the record of what was answered."""
    out = []
    stack = list(reversed(response.get("item") or []))
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        stack.extend(reversed(node.get("item") or []))
        for answer in node.get("answer") or []:
            value = next((v for k, v in answer.items() if k.startswith("value")), None)
            if isinstance(value, dict):
                value = value.get("display") or value.get("code")
            elif isinstance(value, bool):
                value = "Yes" if value else "No"
            item = instrument.item(str(node.get("linkId"))) if instrument else None
            label = node.get("text") or (item.text if item else node.get("linkId"))
            out.append((str(label), str(value)))
    return out
