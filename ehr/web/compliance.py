"""Compliance pages: audit search and CSV export, chain status, break-the-glass review."""

from __future__ import annotations

import json
from itertools import islice
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ehr.audit import repository
from ehr.audit.checkpoints import stored_checkpoints
from ehr.audit.events import AccessEvent
from ehr.audit.repository import AuditFilter, SortKey
from ehr.audit.verify import verify_chain
from ehr.auth.break_glass import BreakGlass
from ehr.auth.checkpoint_signing import checkpoint_verifier
from ehr.db import unit_of_work
from ehr.errors import EhrError
from ehr.fhir.audit_report import MEDIA, build_filter, record_export, report_row, stream_report
from ehr.fhir.audit_search import audit_scope
from ehr.web.pages import Page, Pages

FILTERS = ("from", "to", "user", "patient", "action", "outcome")
PAGE_ROWS = 200


def _filter_of(values: dict[str, str]) -> AuditFilter:
    return build_filter(start=values.get("from") or None, end=values.get("to") or None,
                        user=values.get("user") or None, patient=values.get("patient") or None,
                        action=values.get("action") or None, interaction=None,
                        outcome=values.get("outcome") or None, kind=None)


def build_compliance_router(pages: Pages, break_glass: BreakGlass) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def officer(request: Request) -> Page:
        return pages.page(request, "compliance",
                          why="The audit trail is for compliance officers.")

    def search(page: Page, values: dict[str, str]) -> list[dict[str, Any]]:
        with unit_of_work(pages.engine, write=True) as session:
            scope = audit_scope(pages.pipeline, session, page.ctx, "search-type")
            flt = AuditFilter(scope.clauses + _filter_of(values).clauses)
            rows = [report_row(r) for r in islice(
                repository.stream(session, flt, [SortKey("time", True)]), PAGE_ROWS)]
            pages.pipeline.recorder.record(session, page.ctx, AccessEvent(
                "ui-view", "AuditEvent", category="ui",
                patients=tuple(dict.fromkeys(p for r in rows for p in r["patients"])),
                detail={"page": "audit-search", "filters": values, "rows": len(rows),
                        "seqs": [r["seq"] for r in rows]}))
        return rows

    @router.get("/compliance/audit")
    async def audit_page(request: Request) -> Response:
        page = officer(request)
        values = {k: request.query_params.get(k, "").strip() for k in FILTERS}
        error, rows = None, []
        try:
            rows = await run_in_threadpool(search, page, values)
        except EhrError as err:
            error = err.diagnostics
        export = "&".join(f"{k}={v}" for k, v in request.query_params.multi_items()
                          if k in FILTERS and v)
        return page.render("audit.html", 400 if error else 200, rows=rows, values=values,
                           error=error, export_query=export, limit=PAGE_ROWS)

    @router.get("/compliance/audit.csv")
    async def audit_csv(request: Request) -> Response:
        page = officer(request)
        values = {k: request.query_params.get(k, "").strip() for k in FILTERS}
        try:
            flt = _filter_of(values)
        except EhrError as err:
            return page.render("message.html", 400, heading="Export refused",
                               lines=[err.diagnostics], back="/compliance/audit")
        full = await run_in_threadpool(record_export, pages.engine, pages.pipeline, page.ctx,
                                       flt, {"format": "csv", "via": "web"},
                                       str(request.url.query))
        return StreamingResponse(
            stream_report(pages.engine, full, [SortKey("time", False)], "csv"),
            media_type=MEDIA["csv"],
            headers={"Content-Disposition": 'attachment; filename="audit-report.csv"',
                     "Cache-Control": "no-store"})

    @router.get("/compliance/chain")
    def chain(request: Request) -> Response:
        page = officer(request)
        with pages.engine.connect() as conn:
            checkpoints = list(stored_checkpoints(conn))
        return page.render("chain.html", last=checkpoints[-1] if checkpoints else None,
                           count=len(checkpoints), report=None)

    @router.post("/compliance/chain/verify")
    async def verify(request: Request) -> Response:
        page = officer(request)
        await page.form()
        verifier = checkpoint_verifier(pages.auth.key)
        report = await run_in_threadpool(verify_chain, pages.engine, verifier, workers=0)
        with unit_of_work(pages.engine, write=True) as session:
            pages.pipeline.recorder.record(session, page.ctx, AccessEvent(
                "audit-verify", "AuditEvent", category="security",
                detail={"records": report.records, "intact": report.intact,
                        "damage": report.damage.describe() if report.damage else None}))
        with pages.engine.connect() as conn:
            checkpoints = list(stored_checkpoints(conn))
        return page.render("chain.html", last=checkpoints[-1] if checkpoints else None,
                           count=len(checkpoints), report=report)

    @router.get("/compliance/break-glass")
    def queue(request: Request, show: str = "open") -> Response:
        page = officer(request)
        with unit_of_work(pages.engine, write=True) as session:
            rows = break_glass.with_recorder(pages.pipeline.recorder).queue(
                session, page.ctx, open_only=show != "all")
            grants = [json.loads(json.dumps(r.model_dump())) for r in rows]
        return page.render("break_glass.html", grants=grants, show=show)

    @router.post("/compliance/break-glass/{grant_id}/review")
    async def review(request: Request, grant_id: int) -> Response:
        page = officer(request)
        form = await page.form()

        def run() -> None:
            with unit_of_work(pages.engine, write=True) as session:
                break_glass.with_recorder(pages.pipeline.recorder).review(
                    session, page.ctx, grant_id, form.get("note", ""))

        try:
            await run_in_threadpool(run)
        except EhrError as err:
            return page.render("message.html", err.status, heading="Review not recorded",
                               lines=[err.diagnostics], back="/compliance/break-glass")
        return page.redirect("/compliance/break-glass")

    return router
