"""Patient list, search, break-the-glass, the chart timeline, and what every page about one
patient starts with: the clinician check and the patient read as the signed-in user."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ehr.auth.break_glass import BreakGlass
from ehr.clinical.notes.kinds import is_psychotherapy
from ehr.context import SYSTEM
from ehr.db import unit_of_work
from ehr.errors import EhrError
from ehr.web.fhir_calls import FhirCalls, FhirResult
from ehr.web.pages import Page, Pages, ShowInstead
from ehr.web.screening_summary import chart_summary

CLINICIANS = ("physician", "nurse", "therapist")
# What the chart timeline gathers, newest first: type, date element, label.
TIMELINE = (
    ("QuestionnaireResponse", "authored", "Screening"),
    ("Observation", "effectiveDateTime", "Result"),
    ("Encounter", "period", "Session"),
    ("MedicationAdministration", "effectiveDateTime", "Dose"),
    ("DocumentReference", "date", "Note"),
    ("Flag", "period", "Alert"),
)


def patient_name(patient: dict[str, Any]) -> str:
    for name in patient.get("name") or []:
        if name.get("text"):
            return str(name["text"])
        given = " ".join(name.get("given") or [])
        return f"{given} {name.get('family', '')}".strip()
    return f"Patient/{patient.get('id')}"


def identifier_of(patient: dict[str, Any]) -> str:
    for ident in patient.get("identifier") or []:
        if ident.get("value"):
            return str(ident["value"])
    return ""


def clinician(pages: Pages, request: Request) -> Page:
    return pages.page(request, *CLINICIANS, why="Patient records are for clinicians.")


def unavailable(page: Page, found: FhirResult) -> Response:
    return page.render("message.html", found.status if found.status >= 400 else 404,
                       heading="Patient not available",
                       lines=["This patient is not on your care team or does not exist. In an "
                              "emergency use break-the-glass on the patient list."],
                       back="/patients")


def readable_patient(page: Page, pid: str) -> FhirResult:
    """The patient, read through FHIR as the user; one they may not see (or that does not
    exist) ends the handler with the "not available" page."""
    found = page.fhir.get(f"Patient/{pid}")
    if not found.ok:
        raise ShowInstead(unavailable(page, found))
    return found


def patient_context(found: FhirResult) -> dict[str, Any]:
    """The patient header every patient page shows."""
    return {"patient": found.body, "name": patient_name(found.body),
            "identifier": identifier_of(found.body)}


def when(resource: dict[str, Any], element: str) -> str:
    value = resource.get(element)
    if isinstance(value, dict):
        value = value.get("start") or value.get("end")
    if value is None and element == "effectiveDateTime":
        value = (resource.get("effectivePeriod") or {}).get("start")
    return str(value or (resource.get("meta") or {}).get("lastUpdated") or "")


def describe(resource: dict[str, Any]) -> str:
    for key in ("code", "type", "medicationCodeableConcept"):
        value = resource.get(key)
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, dict):
            text = value.get("text") or next(
                (c.get("display") or c.get("code") for c in value.get("coding") or []), None)
            if text:
                return str(text)
    if resource.get("resourceType") == "QuestionnaireResponse":
        return str(resource.get("questionnaire", "")).rsplit("/", 1)[-1]
    return str(resource.get("resourceType"))


def timeline(fhir: FhirCalls, patient_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for rtype, element, label in TIMELINE:
        found = fhir.search(rtype, [("patient", patient_id), ("_count", "100")])
        for resource in found.entries() if found.ok else []:
            if resource.get("resourceType") != rtype or is_psychotherapy(resource):
                # Psychotherapy notes are kept apart (their own section on the notes pages).
                continue
            items.append({"label": label, "when": when(resource, element), "resource": resource,
                          "what": describe(resource), "status": resource.get("status", ""),
                          "ref": f"{rtype}/{resource.get('id')}"})
    items.sort(key=lambda item: item["when"], reverse=True)
    return items


def build_patient_router(pages: Pages, break_glass: BreakGlass) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/patients")
    def patient_list(request: Request, q: str = "") -> Response:
        page = clinician(pages, request)
        query = [("_count", "50"), ("_sort", "family")]
        if q.strip():
            query.append(("name", q.strip()))
        found = page.fhir.search("Patient", query)
        patients = [p for p in found.entries() if p.get("resourceType") == "Patient"]
        page.viewed("patient-list", [str(p.get("id")) for p in patients])
        return page.render("patients.html", patients=patients, q=q, name=patient_name,
                           identifier=identifier_of, problems=found.problems())

    @router.post("/patients/break-glass")
    async def request_break_glass(request: Request) -> Response:
        page = clinician(pages, request)
        form = await page.form()
        identifier, reason = form.get("identifier", "").strip(), form.get("reason", "")

        def grant() -> str:
            # Finding the record by its identifier is part of the emergency access itself,
            # so it runs as the service and is covered by the grant's own audit record.
            found = FhirCalls(pages.fhir, replace(page.ctx, actor=SYSTEM)).search(
                "Patient", [("identifier", identifier), ("_elements", "id")])
            matches = [p for p in found.entries() if p.get("resourceType") == "Patient"]
            if len(matches) != 1:
                raise LookupError
            with unit_of_work(pages.engine, write=True) as session:
                breaker = break_glass.with_recorder(pages.pipeline.recorder)
                return breaker.request(session, page.ctx, str(matches[0]["id"]),
                                       reason).patient_id

        errors: dict[str, str] = {}
        if not identifier:
            errors["identifier"] = "Enter the patient's medical record number."
        if len(reason.strip()) < 10:
            errors["reason"] = "State the emergency in at least 10 characters."
        if not errors:
            try:
                patient_id = await run_in_threadpool(grant)
                return page.redirect(f"/patients/{patient_id}")
            except LookupError:
                errors["identifier"] = "No single patient has this record number."
            except EhrError as err:
                errors["reason"] = err.diagnostics
        return page.render("patients.html", 422, patients=[], q="", name=patient_name,
                           identifier=identifier_of, problems=[], btg_errors=errors,
                           btg={"identifier": identifier, "reason": reason})

    @router.get("/patients/{patient_id}")
    def chart(request: Request, patient_id: str) -> Response:
        page = clinician(pages, request)
        found = readable_patient(page, patient_id)
        items = timeline(page.fhir, patient_id)
        page.viewed("chart", [patient_id], rtype="Patient", rid=patient_id)
        return page.render("chart.html", **patient_context(found), items=items,
                           screening=chart_summary(page.fhir, patient_id, pages.templates.zone))

    return router
