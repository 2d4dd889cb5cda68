"""The controlled-substance ledger pages (issue 8 item 4): balances, receipts, counts and
reconciliation, witnessed waste, and the Schedule III dispensing log with its CSV export.

Every page runs through the ledger's own operations (``LedgerOperations``): the same role
matrix as ``/api/ledger`` (``ehr.clinical.ledger.permissions``), one transaction per read or
write, and the same ``operation:ledger-<action>`` audit records. Pages that show patients
(waste, the dispensing log) are also recorded as page views with those patients.

The waste witness types their own user name and password into the performer's form; the
handler exchanges them for a single-use signing assertion (action ``ledger-witness``), which
the ledger verifies and consumes in the waste entry's transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from ehr.clinical.ledger import entries, reports
from ehr.clinical.ledger.exports import as_csv
from ehr.clinical.ledger.operations import Done
from ehr.context import RequestContext
from ehr.errors import EhrError
from ehr.instants import now_us
from ehr.web import ledger_forms, ledger_views
from ehr.web.ledger_access import LedgerAccess, recording
from ehr.web.ledger_forms import FormErrors, refusal
from ehr.web.ledger_witness import signed_in_witnesses
from ehr.web.pages import Page, Pages

LOG_FILTERS = ("from", "to", "location")
ROLE_WORDS = {
    "lot-read": "The ledger is kept by physicians, nurses and compliance officers.",
    "receipt": "Receipts are recorded by physicians and nurses.",
    "waste": "Waste is recorded by physicians and nurses.",
    "count": "Counts are recorded by physicians, nurses and compliance officers.",
    "report": "The Schedule III log is for physicians and compliance officers.",
}


def build_ledger_router(pages: Pages) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    ledger = LedgerAccess(pages, ROLE_WORDS)
    ops, zone, may, allowed, run = ledger.ops, ledger.zone, ledger.may, ledger.allowed, ledger.run

    def today() -> dt.date:
        return dt.datetime.now(zone).date()

    def default_place(places: list[dict[str, str]], chosen: str | None) -> str:
        return chosen or (places[0]["id"] if len(places) == 1 else "")

    # -- overview ------------------------------------------------------------------------

    @router.get("/ledger")
    def overview(request: Request) -> Response:
        page = allowed(request, "lot-read")
        data = run(page, "lot-read", ledger_views.overview(today()))
        return page.render("ledger_overview.html", **data)

    # -- receipts ------------------------------------------------------------------------

    def receipts_page(page: Page, status: int = 200, form: dict[str, str] | None = None,
                      errors: FormErrors | None = None, recorded: str | None = None
                      ) -> Response:
        places = ledger.places(page)
        rows = run(page, "report", ledger_views.entries_of("receipt")) \
            if may(page, "report") else None
        form = dict(form or {})
        form.setdefault("location_id", default_place(places, None))
        form.setdefault("received", today().isoformat())
        return page.render("ledger_receipts.html", status, rows=rows, places=places,
                           form=form, errors=errors or FormErrors(),
                           can_record=may(page, "receipt"), recorded=recorded)

    @router.get("/ledger/receipts")
    def receipts(request: Request, recorded: str | None = None) -> Response:
        page = allowed(request, "receipt", "report")
        return receipts_page(page, recorded=recorded)

    @router.post("/ledger/receipts")
    async def receive(request: Request) -> Response:
        page = allowed(request, "receipt")
        form = await page.form()
        parsed, errors = ledger_forms.receipt(form)
        if parsed is not None:
            receipt = parsed
            entry_id = await ledger.record(page, "receipt", recording(
                lambda s, c: entries.record_receipt(s, c, ops.protocol, receipt),
                receipt.location_id),
                lambda err: refusal(err, ledger_forms.RECEIPT_NAMES, errors))
            if entry_id is not None:
                return page.redirect(f"/ledger/receipts?recorded={entry_id}")
        return await run_in_threadpool(receipts_page, page, 422, form, errors)

    # -- counts and reconciliation ---------------------------------------------------------

    def counts_page(page: Page, status: int = 200, form: dict[str, str] | None = None,
                    errors: FormErrors | None = None,
                    result: dict[str, Any] | None = None) -> Response:
        places = ledger.places(page)
        form = dict(form or {})
        chosen = default_place(places, form.get("location_id") or
                               page.request.query_params.get("location"))
        form["location_id"] = chosen
        lots = run(page, "lot-read", lambda s, c: Done(ledger_views.lot_options(s, chosen),
                                                       chosen or None)) if chosen else []
        recent = run(page, "report", ledger_views.recent_counts) \
            if may(page, "report") else None
        return page.render("ledger_counts.html", status, places=places, lots=lots, form=form,
                           errors=errors or FormErrors(), recent=recent, result=result,
                           can_record=may(page, "count"))

    @router.get("/ledger/counts")
    def count_list(request: Request) -> Response:
        page = allowed(request, "count", "report")
        return counts_page(page)

    @router.post("/ledger/counts")
    async def count(request: Request) -> Response:
        page = allowed(request, "count")
        form = await page.form()
        location = form.get("location_id", "")
        lots = await run_in_threadpool(
            run, page, "lot-read",
            lambda s, c: Done(ledger_views.lot_options(s, location), location or None))
        parsed, errors = ledger_forms.count(form, lots, zone, now_us())
        if parsed is not None:
            physical = parsed

            def work(session: Session, ctx: RequestContext) -> Done[dict[str, Any]]:
                row, _lines = ops.count(session, ctx, physical)
                return Done(ledger_views.count_view(session, row), physical.location_id,
                            detail={"count": row.id, "variance": row.variance,
                                    "flag": row.flag})

            names = {**ledger_forms.COUNT_NAMES, **ledger_forms.count_line_names(lots)}
            result = await ledger.record(page, "count", work,
                                         lambda err: refusal(err, names, errors))
            if result is not None:
                return await run_in_threadpool(counts_page, page, 200, None, None, result)
        return await run_in_threadpool(counts_page, page, 422, form, errors)

    # -- waste with a witness --------------------------------------------------------------

    def waste_page(page: Page, status: int = 200, form: dict[str, str] | None = None,
                   errors: FormErrors | None = None, recorded: str | None = None) -> Response:
        places = ledger.places(page)
        rows = None
        if may(page, "report"):
            rows = run(page, "report", ledger_views.entries_of("waste"))
            page.viewed("ledger-waste", [r["patient"].split("/", 1)[1] for r in rows
                                         if r["patient"]])
        form = {k: v for k, v in (form or {}).items() if k != "witness_password"}
        form["location_id"] = default_place(places, form.get("location_id"))
        return page.render("ledger_waste.html", status, rows=rows, places=places, form=form,
                           errors=errors or FormErrors(), can_record=may(page, "waste"),
                           recorded=recorded)

    @router.get("/ledger/waste")
    def waste_list(request: Request, recorded: str | None = None) -> Response:
        page = allowed(request, "waste", "report")
        return waste_page(page, recorded=recorded)

    @router.post("/ledger/waste")
    async def waste(request: Request) -> Response:
        page = allowed(request, "waste")
        form = await page.form()
        parsed, errors = ledger_forms.waste(form, zone)
        if parsed is not None:
            proofs = await signed_in_witnesses(pages, page, [
                ("witness", parsed.witness_username, parsed.witness_password)], errors)
            if proofs is not None:
                waste_request = parsed.request(proofs[0].assertion, now_us())

                def refused(err: EhrError) -> None:
                    # A refused re-authentication (403) concerns the witness.
                    if err.status == 403:
                        errors.add("witness_username", ledger_forms.sentence(err.diagnostics))
                    else:
                        refusal(err, ledger_forms.WASTE_NAMES, errors)

                entry_id = await ledger.record(page, "waste", recording(
                    lambda s, c: entries.record_waste(s, c, ops.protocol, ops.witnesses,
                                                      waste_request),
                    waste_request.location_id), refused)
                if entry_id is not None:
                    return page.redirect(f"/ledger/waste?recorded={entry_id}")
        return await run_in_threadpool(waste_page, page, 422, form, errors)

    # -- Schedule III dispensing log -------------------------------------------------------

    def dispensing(values: dict[str, str]) -> Callable[[Session, RequestContext],
                                                       Done[reports.Report]]:
        def work(session: Session, ctx: RequestContext) -> Done[reports.Report]:
            location = values.get("location") or None
            report = reports.dispensing_log(session, location, *reports.period(
                values.get("from") or None, values.get("to") or None, ops.protocol.zone))
            return Done(report, location, tuple(sorted(report.patients)),
                        {"report": report.name, "rows": len(report.rows), "via": "web"})
        return work

    def filters(request: Request) -> dict[str, str]:
        return {k: request.query_params.get(k, "").strip() for k in LOG_FILTERS}

    @router.get("/ledger/log")
    def log(request: Request) -> Response:
        page = allowed(request, "report")
        values = filters(request)
        places = ledger.places(page)
        query = str(request.url.query) or None
        try:
            report = run(page, "report", dispensing(values), query)
        except EhrError as err:
            if err.status >= 500:
                raise
            return page.render("ledger_log.html", 400, rows=[], values=values,
                               places=places, error=err.diagnostics, export_query="")
        page.viewed("ledger-dispensing-log", sorted(report.patients))
        export = "&".join(f"{k}={v}" for k, v in values.items() if v)
        return page.render("ledger_log.html", rows=report.rows, values=values, places=places,
                           error=None, export_query=export)

    @router.get("/ledger/log.csv")
    def log_csv(request: Request) -> Response:
        page = allowed(request, "report")
        values = filters(request)
        try:
            report = run(page, "report", dispensing({**values, "format": "csv"}),
                         str(request.url.query) or None)
        except EhrError as err:
            if err.status >= 500:
                raise
            return page.render("message.html", 400, heading="Export refused",
                               lines=[err.diagnostics], back="/ledger/log")
        return Response(as_csv(report), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": 'attachment; filename="schedule-iii-log.csv"',
            "Cache-Control": "no-store"})

    return router
