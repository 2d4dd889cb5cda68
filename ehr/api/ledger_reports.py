"""``/api/ledger/reports/*``: the ledger's "readily retrievable" records as CSV or JSON.

The format is ``?format=csv|json``, else the Accept header (``text/csv`` gives CSV), else
JSON. Readable by physicians and compliance; each report is audited with the patients it
names, and that record commits before the response leaves. CSV cells a spreadsheet would run
as a formula are prefixed with an apostrophe (names and circumstances are typed by people).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from sqlmodel import Session

from ehr.api.ledger_service import Done, LedgerService
from ehr.clinical.ledger import reports
from ehr.clinical.ledger.exports import as_csv
from ehr.clinical.ledger.reports import Report
from ehr.context import RequestContext
from ehr.instants import instant, now_us, to_datetime

CSV = "text/csv; charset=utf-8"
JSON = "application/json"
Format = Literal["csv", "json"]


FormatQ = Annotated[Format | None, Query(alias="format", description="csv or json "
                                         "(default: from Accept, else json)")]
LocationQ = Annotated[str | None, Query(description="Location id (default: all)")]
FromQ = Annotated[str | None, Query(alias="from", description="YYYY-MM-DD or ISO "
                                    "date-time with zone; inclusive")]
ToQ = Annotated[str | None, Query(description="YYYY-MM-DD (the whole day) or ISO "
                                  "date-time with zone; inclusive")]



class ReportOut(BaseModel):
    report: str
    generated: str
    parameters: dict[str, Any]
    fields: list[str]
    rows: list[dict[str, Any]]


def render(report: Report, fmt: str, parameters: dict[str, Any]) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="ledger-{report.name}.{fmt}"'}
    if fmt == "csv":
        return Response(as_csv(report), media_type=CSV, headers=headers)
    body = ReportOut(report=report.name, generated=instant(now_us()), parameters=parameters,
                     fields=list(report.fields), rows=report.rows)
    return Response(body.model_dump_json(), media_type=JSON, headers=headers)


def negotiate(request: Request, fmt: str | None) -> str:
    if fmt:
        return fmt
    accept = request.headers.get("accept", "")
    return "csv" if "text/csv" in accept and JSON not in accept else "json"


def add_report_routes(router: APIRouter, svc: LedgerService) -> None:
    ok = {200: {"description": "The report", "content": {
        JSON: {"schema": ReportOut.model_json_schema()},
        "text/csv": {"schema": {"type": "string"}}}}}
    def run(request: Request, fmt: str | None, params: dict[str, Any],
            build: Any) -> Response:
        chosen = negotiate(request, fmt)

        def work(session: Session, ctx: RequestContext) -> Done[Response]:
            report: Report = build(session)
            return Done(render(report, chosen, params), params.get("location"),
                        tuple(sorted(report.patients)),
                        {"report": report.name, "rows": len(report.rows), "format": chosen})
        return svc.run(request, "report", work)

    @router.get("/reports/dispensing", responses=ok, response_class=Response,  # type: ignore[arg-type]
                summary="Schedule III dispensing log by date range and location",
                description="Administrations and waste (and their corrections) with patient "
                            "name and address, who administered, witness. Fields: "
                            + ", ".join(reports.DISPENSING_FIELDS))
    def dispensing(request: Request, start: FromQ = None, to: ToQ = None,
                   location: LocationQ = None, fmt: FormatQ = None) -> Response:
        return run(request, fmt, {"from": start, "to": to, "location": location},
                   lambda s: reports.dispensing_log(
                       s, location, *reports.period(start, to, svc.protocol.zone)))

    @router.get("/reports/balances", responses=ok, response_class=Response,  # type: ignore[arg-type]
                summary="Per-lot running balances: every entry with the balance after it",
                description="Fields: " + ", ".join(reports.BALANCE_FIELDS))
    def balances(request: Request, location: LocationQ = None,
                 lot: Annotated[str | None, Query(description="Lot number")] = None,
                 fmt: FormatQ = None) -> Response:
        return run(request, fmt, {"location": location, "lot": lot},
                   lambda s: reports.running_balances(s, location, lot))

    @router.get("/reports/inventory", responses=ok, response_class=Response,  # type: ignore[arg-type]
                summary="Current inventory per lot with totals by kind",
                description="Fields: " + ", ".join(reports.INVENTORY_FIELDS))
    def inventory(request: Request, location: LocationQ = None,
                  fmt: FormatQ = None) -> Response:
        today = to_datetime(now_us()).astimezone(svc.protocol.zone).date()
        return run(request, fmt, {"location": location},
                   lambda s: reports.inventory(s, location, today))

    @router.get("/reports/discrepancies", responses=ok, response_class=Response,  # type: ignore[arg-type]
                summary="Count lines that differed from the books",
                description="Fields: " + ", ".join(reports.DISCREPANCY_FIELDS))
    def discrepancies(request: Request, start: FromQ = None, to: ToQ = None,
                      location: LocationQ = None, fmt: FormatQ = None) -> Response:
        return run(request, fmt, {"from": start, "to": to, "location": location},
                   lambda s: reports.discrepancies(
                       s, location, *reports.period(start, to, svc.protocol.zone)))
