"""The eligibility page: the current status for every clinician; for physicians the latest
checklist evaluation and the signed decision.

The decision is recorded by ``Patient/{id}/$eligibility-decision`` exactly as an API client
records it: the physician re-enters their password on the form, the page exchanges it for a
single-use signing assertion for the ``eligibility-decision`` action and passes it as the
operation's ``signingAssertion`` parameter. The operation, not this page, evaluates the
protocol and enforces who may decide and what may be decided.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ehr.clinical.eligibility import DECIDABLE, STATUS_DISPLAY, Evaluation, evaluate
from ehr.clinical.eligibility_decision import SIGNING_ACTION
from ehr.clinical.eligibility_protocol import HARD_STOP, NEEDS_REVIEW
from ehr.clinical.screening_checklist import CHECKLIST_ID
from ehr.db import unit_of_work
from ehr.web.pages import WRONG_PASSWORD, NotPermitted, Page, Pages
from ehr.web.patients import clinician, patient_context, readable_patient, unavailable
from ehr.web.screening_summary import eligibility_status

PHYSICIAN = "physician"


def build_eligibility_router(pages: Pages) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def latest_evaluation(pid: str) -> Evaluation:
        # The same evaluation the decision operation makes: latest completed checklist and
        # active flags, against the configured protocol. The caller has already read the
        # patient through FHIR, so the care-team check has passed.
        with unit_of_work(pages.engine) as session:
            return evaluate(session, pid)

    def show(page: Page, pid: str, status: int = 200, *, errors: dict[str, str] | None = None,
             values: dict[str, str] | None = None, notice: str | None = None) -> Response:
        patient = readable_patient(page, pid)
        current = eligibility_status(page.fhir, pid)
        physician = page.has_role(PHYSICIAN)
        evaluation = latest_evaluation(pid) if physician else None
        checklist = None
        if evaluation is not None and evaluation.checklist is not None:
            found = page.fhir.get(f"QuestionnaireResponse/{evaluation.checklist.rid}")
            checklist = found.body if found.ok else None
        page.viewed("eligibility", [pid], rtype="Patient", rid=pid)
        return page.render(
            "eligibility.html", status, **patient_context(patient), pid=pid, current=current,
            physician=physician, evaluation=evaluation, checklist=checklist,
            hard_stops=evaluation.of_kind(HARD_STOP) if evaluation else [],
            review_items=evaluation.of_kind(NEEDS_REVIEW) if evaluation else [],
            statuses=[(s, STATUS_DISPLAY[s]) for s in DECIDABLE], checklist_key=CHECKLIST_ID,
            errors=errors or {}, values=values or {}, notice=notice)

    @router.get("/patients/{pid}/eligibility")
    def eligibility_page(request: Request, pid: str, recorded: str = "",
                         checklist: str = "") -> Response:
        page = clinician(pages, request)
        notice = "Decision signed and recorded." if recorded else \
            "Checklist recorded and evaluated." if checklist else None
        return show(page, pid, notice=notice)

    @router.post("/patients/{pid}/eligibility/decision")
    async def decide(request: Request, pid: str) -> Response:
        page = clinician(pages, request)
        if not page.has_role(PHYSICIAN):
            raise NotPermitted("Only a physician may record an eligibility decision.")
        form = await page.form()
        status = form.get("status", "")
        justification = form.get("justification", "").strip()
        password = form.get("password", "")
        values = {"status": status, "justification": justification}
        errors: dict[str, str] = {}
        if status not in DECIDABLE:
            errors["status"] = "Choose the decision."
        if not password:
            errors["password"] = "Re-enter your password to sign the decision."
        if errors:
            return show(page, pid, 422, errors=errors, values=values)
        token = await run_in_threadpool(page.signing_assertion, password, SIGNING_ACTION)
        if token is None:
            return show(page, pid, 422, errors={"password": WRONG_PASSWORD}, values=values)
        params: list[dict[str, Any]] = [{"name": "status", "valueCode": status},
                                        {"name": "signingAssertion", "valueString": token}]
        if justification:
            params.append({"name": "justification", "valueString": justification})
        result = page.fhir.post(f"Patient/{pid}/$eligibility-decision",
                                {"resourceType": "Parameters", "parameter": params})
        if result.ok:
            return page.redirect(f"/patients/{pid}/eligibility?recorded=1")
        if result.status == 404:
            return unavailable(page, result)
        return show(page, pid, result.status, errors=_errors(result.status, result.problems()),
                    values=values)

    return router


def _errors(status: int, problems: list[str]) -> dict[str, str]:
    """The operation's refusals, each next to the field it is about."""
    out: dict[str, list[str]] = {}
    for problem in problems or [f"The decision was refused ({status})."]:
        if status == 403 and "assertion" in problem:
            field = "password"
        elif "justification" in problem:
            field = "justification"
        elif status == 409:
            field = "checklist"
        else:
            field = "status"
        out.setdefault(field, []).append(problem)
    return {k: " ".join(v) for k, v in out.items()}
