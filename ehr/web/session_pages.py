"""The session pages (issue 8 item 2): a patient's sessions, and the page a physician or nurse
keeps open at the chair for two hours.

Everything goes through the same FHIR operations an API client uses, as the signed-in user:
the session Encounter (``ehr.clinical.sessions``), ``$record-vitals``,
``$monitoring-schedule``, ``$discharge``, ``$eligibility``, ``$rems-form`` and the
MedicationAdministration write with its dosing gates. The pre-dose checklist is the gates'
own dry run of the dose the calculator proposes (``ehr.clinical.dosing.dry_run``). Signatures
(discharge, a physician's override of pre-dose vitals) are re-authentications: the user types
their password, the handler exchanges it for a single-use signing assertion.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ehr import instants
from ehr.clinical.dosing.protocol import load_protocol as dosing_protocol
from ehr.clinical.sessions.phases import phase_of, session_encounter, with_phase
from ehr.clinical.sessions.protocol import default_protocol
from ehr.fhir.http import FhirRequest
from ehr.web import session_forms
from ehr.web.dose_panel import dose_context
from ehr.web.ledger_access import ledger_operations
from ehr.web.pages import WRONG_PASSWORD, Page, Pages, ShowInstead
from ehr.web.patients import clinician, patient_context, readable_patient, unavailable
from ehr.web.session_dose import Plan, administration
from ehr.web.session_view import (
    SECTIONS,
    dose_summary,
    eligibility_of,
    flowsheet,
    gates_of,
    participants,
    phase_label,
    schedule_of,
    session_resources,
    vitals_rows,
)
from ehr.web.vitals_chart import vitals_charts

DOSING_ROLES = ("physician", "nurse")
ROLE_OF = {"physician": "prescriber", "nurse": "monitoring-nurse", "therapist": "therapist"}
NOT_CHARTED = frozenset({"entered-in-error", "not-done"})


def build_session_router(pages: Pages) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    dosing = dosing_protocol(pages.pipeline.settings.dosing_protocol_file)
    monitoring = default_protocol()
    ledger = ledger_operations(pages)
    zone = pages.templates.zone

    def now() -> str:
        return instants.instant(pages.pipeline.clock() // 1_000_000 * 1_000_000)

    def session_of(page: Page, eid: str) -> dict[str, Any]:
        """The session Encounter; anything else ends the handler with a page saying so."""
        found = page.fhir.get(f"Encounter/{eid}")
        if not found.ok:
            raise ShowInstead(unavailable(page, found))
        if phase_of(found.body) is None:
            raise ShowInstead(page.render(
                "message.html", 404, heading="Not a session",
                lines=[f"Encounter/{eid} is not a treatment session."], back="/patients"))
        return found.body

    async def posted(request: Request) -> tuple[Page, dict[str, str]]:
        page = clinician(pages, request)
        return page, await page.form()

    async def posted_to_session(request: Request, eid: str
                                ) -> tuple[Page, dict[str, str], dict[str, Any]]:
        page, form = await posted(request)
        return page, form, session_of(page, eid)

    def saved(page: Page, encounter: dict[str, Any], form: dict[str, str],
              errors: dict[str, str], done: str) -> Response:
        """The session page again with the form's errors, or on to it saying what was done."""
        if errors:
            return show(page, encounter, 422, values=form, errors=errors)
        return page.redirect(f"/sessions/{encounter.get('id')}?done={done}")

    def posted_resource(page: Page, path: str, body: dict[str, Any], refused: str,
                        then: str) -> Response:
        """POST ``body``, then on to ``then``; a refusal is a page saying ``refused`` and why."""
        result = page.fhir.post(path, body)
        if not result.ok:
            return session_forms.refusal(page, result, refused)
        return page.redirect(then)

    def show(page: Page, encounter: dict[str, Any], status: int = 200, *,
             values: dict[str, str] | None = None, refused: list[dict[str, Any]] | None = None,
             errors: dict[str, str] | None = None, notices: list[dict[str, str]] | None = None,
             discharge_reasons: list[str] | None = None) -> Response:
        eid, pid = str(encounter.get("id")), subject_id(encounter)
        patient = readable_patient(page, pid)
        found = session_resources(page.fhir, pid, eid)
        schedule_result = page.fhir.get(f"Encounter/{eid}/$monitoring-schedule")
        schedule = schedule_of(schedule_result.body) if schedule_result.ok else None
        elig = page.fhir.get(f"Patient/{pid}/$eligibility")
        phase, phase_text = phase_label(encounter)
        can_dose = page.has_role(*DOSING_ROLES)
        dose = dose_context(page, dosing, ledger, encounter, pid, values or {}, now()) \
            if can_dose and phase in ("arrived", "dosing") else None
        points = flowsheet(found["observations"], monitoring)
        route_name = (schedule or {}).get("route") or "default"
        try:
            rems = monitoring.named(str(route_name)).rems_form
        except KeyError:
            rems = False
        page.viewed("session", [pid], rtype="Encounter", rid=eid)
        return page.render(
            "session_page.html", status, **patient_context(patient), pid=pid, eid=eid,
            encounter=encounter, phase=phase, phase_text=phase_text,
            participants=participants(encounter), schedule=schedule,
            eligibility=eligibility_of(elig.body) if elig.ok else None,
            can_dose=can_dose, physician=page.has_role("physician"), dose=dose,
            gates=gates_of(dose["checklist"]) if dose else None, sections=SECTIONS,
            vitals_rows=(lambda gate: vitals_rows(dosing, gate)),
            refused=gates_of(refused) if refused else None, values=values or {},
            errors=errors or {}, notices=notices or [],
            doses=[dose_summary(d) for d in found["doses"]],
            given=[d for d in found["doses"] if d.get("status") not in NOT_CHARTED],
            points=points, charts=vitals_charts(points, monitoring, zone),
            thresholds=monitoring.thresholds, flags=found["flags"],
            adverse_events=found["adverse_events"], rems=rems,
            discharge_reasons=discharge_reasons or [], row_fields=session_forms.VITALS_FIELDS)

    @router.get("/patients/{pid}/sessions")
    def session_list(request: Request, pid: str, started: str = "") -> Response:
        page = clinician(pages, request)
        patient = readable_patient(page, pid)
        found = page.fhir.search("Encounter", [("patient", pid), ("_count", "200")])
        sessions = sorted((e for e in found.entries() if phase_of(e) is not None),
                          key=lambda e: str((e.get("period") or {}).get("start") or ""),
                          reverse=True)
        courses = page.fhir.search("EpisodeOfCare", [("patient", pid), ("status", "active")])
        page.viewed("session-list", [pid], rtype="Patient", rid=pid)
        return page.render("session_list.html", **patient_context(patient), pid=pid,
                           sessions=[(e, *phase_label(e)) for e in sessions],
                           courses=[c for c in courses.entries()
                                    if c.get("resourceType") == "EpisodeOfCare"],
                           notice="Course started." if started else None, errors={})

    @router.post("/patients/{pid}/courses")
    async def start_course(request: Request, pid: str) -> Response:
        page, _ = await posted(request)
        return posted_resource(page, "EpisodeOfCare", {
            "resourceType": "EpisodeOfCare", "status": "active",
            "type": [{"text": "Ketamine-assisted therapy course"}],
            "patient": {"reference": f"Patient/{pid}"}, "period": {"start": now()}},
            "The course was not started.", f"/patients/{pid}/sessions?started=1")

    @router.post("/patients/{pid}/sessions")
    async def start_session(request: Request, pid: str) -> Response:
        page, form = await posted(request)
        role = next((r for r in ("physician", "nurse", "therapist") if page.has_role(r)), "")
        me = page.ctx.actor.practitioner
        body = session_encounter(
            pid, form.get("course", ""), phase="arrived" if form.get("check_in") else "planned",
            participants={ROLE_OF[role]: me} if me and role else None, start=now())
        result = page.fhir.post("Encounter", body)
        if not result.ok:
            return session_forms.refusal(page, result, "The session was not started.")
        return page.redirect(f"/sessions/{result.body.get('id')}")

    @router.get("/sessions/{eid}")
    def session_page(request: Request, eid: str, done: str = "", alerts: str = "") -> Response:
        page = clinician(pages, request)
        return show(page, session_of(page, eid), notices=session_forms.notices(done, alerts))

    @router.post("/sessions/{eid}/phase")
    async def move(request: Request, eid: str) -> Response:
        page, form, encounter = await posted_to_session(request, eid)
        target = form.get("to", "")
        try:
            moved = with_phase(encounter, target)
        except KeyError:
            return show(page, encounter, 400, errors={"phase": "Unknown phase."})
        result = page.fhir.put(f"Encounter/{eid}", moved)
        if not result.ok:
            return show(page, encounter, result.status,
                        errors={"phase": " ".join(result.problems()) or "Refused."})
        return page.redirect(f"/sessions/{eid}?done=phase-{target}")

    @router.post("/sessions/{eid}/dose")
    async def chart_dose(request: Request, eid: str) -> Response:
        page, form, encounter = await posted_to_session(request, eid)
        if form.get("action") != "chart":
            return show(page, encounter, values=form)
        pid = subject_id(encounter)
        # Only what the calculator needs; the FHIR write, not this page, decides who charts.
        plan = await run_in_threadpool(
            lambda: dose_context(page, dosing, ledger, encounter, pid, form, now())["plan"]) \
            if page.has_role(*DOSING_ROLES) else None
        errors = dict(plan.errors) if plan is not None else {}
        if plan is not None and plan.order is None:
            errors["order"] = "There is no active ketamine order for this patient."
        if plan is not None and plan.mg is None and "per_kg" not in errors:
            errors.setdefault("mg", "Enter the dose.")
        override: tuple[str, str] | None = None
        if form.get("override"):
            reason = form.get("override_reason", "").strip()
            if not reason:
                errors["override_reason"] = "Type the reason for overriding the pre-dose vitals."
            token = await run_in_threadpool(page.signing_assertion, form.get("password", ""),
                                            "dosing-override")
            if token is None:
                errors["password"] = WRONG_PASSWORD
            elif reason:
                override = (reason, token)
        if errors:
            return show(page, encounter, 422, values=form, errors=errors)
        resource = administration(plan or Plan(), dosing, patient=f"Patient/{pid}",
                                  encounter=f"Encounter/{eid}",
                                  performer=page.ctx.actor.practitioner, start=now(),
                                  override=override)
        result = page.fhir.post("MedicationAdministration", resource)
        if result.status == 403:
            return page.render("message.html", 403, heading="Dose not charted",
                               lines=["Your role may not chart doses: doses are charted by "
                                      "the physician or the nurse at the chair.",
                                      *result.problems()], back=f"/sessions/{eid}")
        if not result.ok:
            return show(page, encounter, result.status, values=form, refused=result.issues())
        warnings = [i.get("diagnostics", "") for i in _outcome_header(result.headers)
                    if i.get("severity") == "warning"]
        moved = session_forms.after_dose(page, eid, infusion=bool(
            plan and plan.order and plan.order.route.infusion))
        notices = [{"kind": "ok", "text": f"Dose charted: {plan.mg if plan else ''} mg "
                                          f"(MedicationAdministration/{result.body.get('id')})."}]
        notices += [{"kind": "warning", "text": w} for w in warnings]
        notices += [{"kind": "error", "text": m} for m in moved]
        fresh = page.fhir.get(f"Encounter/{eid}")
        return show(page, fresh.body if fresh.ok else encounter, notices=notices)

    @router.post("/sessions/{eid}/infusion-end")
    async def infusion_end(request: Request, eid: str) -> Response:
        page, form = await posted(request)
        problems = session_forms.end_infusion(page, eid, form.get("dose", ""), now())
        if problems:
            return page.render("message.html", 409, heading="Infusion end not recorded",
                               lines=problems, back=f"/sessions/{eid}")
        return page.redirect(f"/sessions/{eid}?done=infusion-end")

    @router.post("/sessions/{eid}/vitals")
    async def record_vitals(request: Request, eid: str) -> Response:
        page, form, encounter = await posted_to_session(request, eid)
        params, errors = session_forms.vitals_parameters(form)
        if not errors:
            result = page.fhir.post(f"Encounter/{eid}/$record-vitals",
                                    {"resourceType": "Parameters", "parameter": params})
            if result.ok:
                alerts = sum(1 for p in result.body.get("parameter") or []
                             if p.get("name") == "alert")
                return page.redirect(f"/sessions/{eid}?done=vitals&alerts={alerts}#vitals")
            errors = session_forms.vitals_errors(result, params)
        return show(page, encounter, 422 if errors else 200, values=form, errors=errors)

    @router.post("/sessions/{eid}/weight")
    async def record_weight(request: Request, eid: str) -> Response:
        page, form, encounter = await posted_to_session(request, eid)
        error = session_forms.record_weight(page, encounter, form.get("kg", ""), now())
        return saved(page, encounter, form, {"kg": error} if error else {}, "weight")

    @router.post("/sessions/{eid}/adverse-events")
    async def adverse_event(request: Request, eid: str) -> Response:
        page, form, encounter = await posted_to_session(request, eid)
        return saved(page, encounter, form,
                     session_forms.record_adverse_event(page, encounter, form, now()),
                     "adverse-event#adverse-events")

    @router.post("/sessions/{eid}/discharge")
    async def discharge(request: Request, eid: str) -> Response:
        page, form, encounter = await posted_to_session(request, eid)
        token = await run_in_threadpool(page.signing_assertion, form.get("password", ""),
                                        "session-discharge")
        result = page.fhir.post(f"Encounter/{eid}/$discharge",
                                session_forms.discharge_parameters(form, token))
        if result.ok:
            return page.redirect(f"/sessions/{eid}?done=discharged")
        errors = {"password": WRONG_PASSWORD} \
            if form.get("password") and token is None else {}
        return show(page, encounter, result.status, values=form, errors=errors,
                    discharge_reasons=result.problems() or [f"Refused ({result.status})."])

    @router.get("/sessions/{eid}/rems-form")
    def rems_form(request: Request, eid: str) -> Response:
        page = clinician(pages, request)
        encounter = session_of(page, eid)
        answer = pages.fhir.handle(FhirRequest(
            method="GET", path=f"Encounter/{eid}/$rems-form", query=[("_format", "html")],
            headers={"accept": "text/html"}, body=b"", base_url=page.ctx.base_url), page.ctx)
        if answer.status != 200:
            return page.render("message.html", answer.status, heading="No REMS form",
                               lines=[session_forms.outcome_text(answer.body)],
                               back=f"/sessions/{eid}")
        page.viewed("rems-form", [subject_id(encounter)], rtype="Encounter", rid=eid)
        return session_forms.printable(answer.body)

    @router.post("/sessions/{eid}/rems-form")
    async def submit_rems(request: Request, eid: str) -> Response:
        page, _ = await posted(request)
        return posted_resource(page, f"Encounter/{eid}/$rems-form",
                               {"resourceType": "Parameters", "parameter": []},
                               "The REMS form was not submitted.", f"/sessions/{eid}?done=rems")

    return router


def subject_id(encounter: dict[str, Any]) -> str:
    return str((encounter.get("subject") or {}).get("reference") or "").split("/")[-1]


def _outcome_header(headers: dict[str, str]) -> list[dict[str, Any]]:
    raw = next((v for k, v in headers.items() if k.lower() == "x-fhir-outcome"), None)
    try:
        issues = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [i for i in issues if isinstance(i, dict)] if isinstance(issues, list) else []

