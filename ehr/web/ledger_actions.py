"""Ledger pages for destruction (DEA Form 41, two witnesses who sign in on the form), theft and
loss reports with their DEA follow-up tasks, and corrections.

Like the other ledger pages, each read and write runs through ``LedgerOperations`` (the
ledger's role matrix, one transaction, the ``operation:ledger-<action>`` audit record).
Witnesses sign in with the shared code of ``ledger_witness``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from ehr.clinical.ledger import entries, losses, repository
from ehr.clinical.ledger.operations import Done, entry_done
from ehr.clinical.ledger.reports import entry_row
from ehr.context import RequestContext
from ehr.errors import EhrError
from ehr.instants import now_us
from ehr.web import ledger_action_forms as forms
from ehr.web.ledger_access import LedgerAccess, recording
from ehr.web.ledger_forms import FormErrors, refusal, sentence
from ehr.web.ledger_witness import signed_in_witnesses
from ehr.web.pages import Page, Pages

ROLE_WORDS = {
    "destruction": "Destruction is recorded by physicians, nurses and compliance officers.",
    "loss": "Theft and loss are reported by physicians, nurses and compliance officers.",
    "task-close": "Theft and loss follow-ups are closed by physicians and compliance officers.",
    "correction": "Ledger entries are corrected by physicians and compliance officers only.",
}
TASK_LABELS = {losses.DEA_NOTICE: "DEA notice", losses.FORM_106: "DEA Form 106"}


def _tasks(session: Session, ctx: RequestContext) -> Done[list[dict[str, Any]]]:
    now = now_us()
    found = repository.tasks(session)[-100:][::-1]
    return Done([{"id": t.task.id, "entry": t.task.entry_pk, "kind": t.task.kind,
                  "label": TASK_LABELS.get(t.task.kind, t.task.kind),
                  "description": t.task.description, "due_us": t.task.due_us,
                  "status": losses.task_status(t, now),
                  "reference": t.closure.reference if t.closure else None,
                  "closed_us": t.closure.closed_us if t.closure else None,
                  "closed_by": t.closure.actor_display if t.closure else None}
                 for t in found], detail={"page": "tasks", "rows": len(found)})


def _entry(entry_id: int) -> Callable[[Session, RequestContext], Done[dict[str, Any] | None]]:
    def work(session: Session, ctx: RequestContext) -> Done[dict[str, Any] | None]:
        found = repository.entry(session, entry_id)
        if found is None:
            return Done(None, detail={"entry": entry_id, "found": False})
        place = repository.location_by_pk(session, found.location_pk)
        lot = repository.lots_by_pk(session, [found.lot_pk])[found.lot_pk]
        assert place is not None
        row = entry_row(found, place, lot)
        corrected = repository.correction_of(session, entry_id)
        row["corrected_by"] = corrected.id if corrected else None
        return entry_done(found, row, place.location_id)
    return work


def build_ledger_actions_router(pages: Pages) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    ledger = LedgerAccess(pages, ROLE_WORDS)
    ops, zone, may, allowed, run = ledger.ops, ledger.zone, ledger.may, ledger.allowed, ledger.run
    places, recorded = ledger.places, ledger.recorded

    def with_place(found: list[dict[str, str]], form: dict[str, str] | None) -> dict[str, str]:
        out = dict(form or {})
        if not out.get("location_id") and len(found) == 1:
            out["location_id"] = found[0]["id"]
        return out

    # -- destruction -----------------------------------------------------------------------

    def destruction_page(page: Page, status: int = 200, form: dict[str, str] | None = None,
                         errors: FormErrors | None = None, done: str | None = None
                         ) -> Response:
        found = places(page)
        form = {k: v for k, v in with_place(found, form).items() if not k.endswith("password")}
        return page.render("ledger_destruction.html", status, places=found, form=form,
                           errors=errors or FormErrors(), rows=recorded(page, "destruction"),
                           can_record=may(page, "destruction"),
                           can_correct=may(page, "correction"), recorded=done)

    @router.get("/ledger/destruction")
    def destruction_list(request: Request, recorded: str | None = None) -> Response:
        return destruction_page(allowed(request, "destruction", "report"), done=recorded)

    @router.post("/ledger/destruction")
    async def destroy(request: Request) -> Response:
        page = allowed(request, "destruction")
        form = await page.form()
        parsed, errors = forms.destruction(form, zone)
        if parsed is not None:
            typed = parsed.witnesses
            proofs = await signed_in_witnesses(pages, page, typed, errors)
            if proofs is not None:
                destruction_request = parsed.request(proofs, now_us())

                def refused(err: EhrError) -> None:
                    witness_issues = [i for i in err.issues if "witnesses" in i.expression]
                    if err.status == 403 or witness_issues:
                        for issue in witness_issues or err.issues:
                            errors.add(forms.witness_refusal(issue.diagnostics, typed),
                                       sentence(issue.diagnostics))
                    else:
                        refusal(err, forms.DESTRUCTION_NAMES, errors)

                entry_id = await ledger.record(page, "destruction", recording(
                    lambda s, c: entries.record_destruction(s, c, ops.protocol, ops.witnesses,
                                                            destruction_request),
                    destruction_request.location_id), refused)
                if entry_id is not None:
                    return page.redirect(f"/ledger/destruction?recorded={entry_id}")
        return await run_in_threadpool(destruction_page, page, 422, form, errors)

    # -- theft and loss, and their follow-up tasks -----------------------------------------

    def losses_page(page: Page, status: int = 200, form: dict[str, str] | None = None,
                    errors: FormErrors | None = None, done: str | None = None,
                    task_errors: dict[int, str] | None = None) -> Response:
        found = places(page)
        tasks = run(page, "task-read", _tasks) if may(page, "task-read") else None
        return page.render("ledger_losses.html", status, places=found,
                           form=with_place(found, form), errors=errors or FormErrors(),
                           rows=recorded(page, "loss"), tasks=tasks,
                           can_record=may(page, "loss"), can_close=may(page, "task-close"),
                           can_correct=may(page, "correction"), recorded=done,
                           task_errors=task_errors or {})

    @router.get("/ledger/losses")
    def loss_list(request: Request, recorded: str | None = None) -> Response:
        return losses_page(allowed(request, "loss", "task-read"), done=recorded)

    @router.post("/ledger/losses")
    async def report_loss(request: Request) -> Response:
        page = allowed(request, "loss")
        form = await page.form()
        parsed, errors = forms.loss(form, zone)
        if parsed is not None:
            reported = parsed
            entry_id = await ledger.record(page, "loss", recording(
                lambda s, c: losses.record_loss(s, c, ops.protocol, reported)[0],
                reported.location_id), lambda err: refusal(err, forms.LOSS_NAMES, errors))
            if entry_id is not None:
                return page.redirect(f"/ledger/losses?recorded={entry_id}")
        return await run_in_threadpool(losses_page, page, 422, form, errors)

    @router.post("/ledger/tasks/{task_id}/close")
    async def close_task(request: Request, task_id: int) -> Response:
        page = allowed(request, "task-close")
        form = await page.form()
        reference = form.get("reference", "").strip()
        if not reference:
            return await run_in_threadpool(losses_page, page, 422, task_errors={
                task_id: "Enter the reference (the DEA confirmation or Form 106 number)."})

        def work(session: Session, ctx: RequestContext) -> Done[None]:
            state = losses.close_task(session, ctx, task_id, reference,
                                      form.get("note", "").strip() or None)
            place = repository.location_by_pk(session, state.task.location_pk)
            return Done(None, place.location_id if place else None,
                        detail={"task": task_id, "reference": reference})

        try:
            await run_in_threadpool(run, page, "task-close", work)
        except EhrError as err:
            if err.status >= 500:
                raise
            return await run_in_threadpool(losses_page, page, err.status,
                                           task_errors={task_id: sentence(err.diagnostics)})
        return page.redirect(f"/ledger/losses#task-{task_id}")

    # -- corrections -----------------------------------------------------------------------

    def corrections_page(page: Page, status: int = 200, form: dict[str, str] | None = None,
                         errors: FormErrors | None = None, done: str | None = None
                         ) -> Response:
        form = dict(form or {})
        entry = None
        wanted = form.get("entry_id", "").strip()
        if wanted.isdigit() and int(wanted) > 0:
            entry = run(page, "report", _entry(int(wanted)))
            if entry and entry["patient"]:
                page.viewed("ledger-entry", [entry["patient"].split("/", 1)[1]])
        return page.render("ledger_corrections.html", status, form=form, entry=entry,
                           errors=errors or FormErrors(), rows=recorded(page, "correction"),
                           recorded=done)

    @router.get("/ledger/corrections")
    def correction_form(request: Request, entry: str = "",
                        recorded: str | None = None) -> Response:
        page = allowed(request, "correction")
        return corrections_page(page, form={"entry_id": entry}, done=recorded)

    @router.post("/ledger/corrections")
    async def correct(request: Request) -> Response:
        page = allowed(request, "correction")
        form = await page.form()
        parsed, errors = forms.correction(form)
        if parsed is not None:
            entry_id, reason = parsed

            def work(session: Session, ctx: RequestContext) -> Done[int]:
                entry = entries.record_correction(session, ctx, entry_id, reason)
                place = repository.location_by_pk(session, entry.location_pk)
                assert entry.id is not None and place is not None
                return entry_done(entry, entry.id, place.location_id)

            def refused(err: EhrError) -> None:
                if err.status in (404, 409):  # no such entry, or it cannot be corrected
                    errors.add("entry_id", sentence(err.diagnostics))
                else:
                    refusal(err, forms.CORRECTION_NAMES, errors)

            made = await ledger.record(page, "correction", work, refused)
            if made is not None:
                return page.redirect(f"/ledger/corrections?recorded={made}")
        return await run_in_threadpool(corrections_page, page, 422, form, errors)

    return router
